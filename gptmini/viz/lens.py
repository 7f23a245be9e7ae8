"""The logit-lens table: what every layer would predict at every position, if it were the last layer.

Rows are depths (the embedding, then each block), columns are positions of the text; each cell holds the
top tokens the unembedding reads from the residual stream there (:func:`gptmini.inspect.lens.logit_lens`).
A green cell already predicts the text's real next token. Watching a column from top to bottom shows at
which depth the model makes up its mind.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import torch

from ..inspect.lens import lens_top_tokens
from ._text import TextInput

MAX_K = 5
DEFAULT_MAX_TOKENS = 16


class LogitLensTable(TextInput, widgets.VBox):
    """A depth x position HTML table of top-k tokens, with a text box and a k slider.

    Public state: ``text_box``, ``top_k``, ``show_probs``; :meth:`cell` (what one cell shows), ``table``.
    """

    def __init__(self, model, tokenizer, text: str, top_k: int = 1, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        self.ids: list[int] = []
        self.top_ids = torch.empty(0)
        self.top_probs = torch.empty(0)
        self.text_box = widgets.Text(
            value=text, description="text", continuous_update=False, layout=widgets.Layout(width="95%")
        )
        self.top_k = widgets.IntSlider(top_k, min=1, max=MAX_K, description="top k", continuous_update=False)
        self.show_probs = widgets.Checkbox(value=True, description="probabilities")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        super().__init__([self.text_box, widgets.HBox([self.top_k, self.show_probs]), self.status, self.table])
        for control in (self.top_k, self.show_probs):
            control.observe(lambda _change: self.render(), names="value")
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        self.set_text(text)
        self._require_first_text("logit_lens_table", text)

    def set_text(self, text: str) -> None:
        encoded = self._encode(text, self.max_tokens)
        if encoded is None:
            return
        ids, total = encoded
        self.ids = ids
        idx = torch.tensor(ids, dtype=torch.long, device=self.model.device)
        self.top_ids, self.top_probs = (t.cpu() for t in lens_top_tokens(self.model, idx, k=MAX_K))
        if self.text_box.value != text:
            self.text_box.value = text
        cut = f" (the first {len(ids)} of {total})" if total > len(ids) else ""
        self.status.value = (
            f"{len(ids)} tokens{cut} · rows: the residual stream after each block, read through "
            f"{'the final LayerNorm and ' if 'ln_f' in self.model.transformer else ''}the unembedding · "
            "<span style='background:#d8f0d8'>green</span>: the text's real next token"
        )
        self.render()

    def depth_names(self) -> list[str]:
        n = self.model.config.n_layer
        return ["embedding"] + [f"block {i}" + (" (output)" if i == n - 1 else "") for i in range(n)]

    def cell(self, depth: int, position: int) -> list[tuple[str, float]]:
        """The (token, probability) pairs shown at ``depth`` (0 = embedding) and ``position``, best first."""
        k = self.top_k.value
        ids = self.top_ids[depth, position, :k].tolist()
        probs = self.top_probs[depth, position, :k].tolist()
        return list(zip(self.tokenizer.token_strings(ids), probs, strict=True))

    def render(self) -> None:
        if not self.ids:
            return
        tokens = self.tokenizer.token_strings(self.ids)
        head = "".join(f"<th>{html.escape(repr(t))}</th>" for t in tokens)
        rows = [f"<tr><th>input →</th>{head}</tr>"]
        for depth, name in enumerate(self.depth_names()):
            cells = []
            for pos in range(len(self.ids)):
                shown = self.cell(depth, pos)
                hit = pos + 1 < len(self.ids) and int(self.top_ids[depth, pos, 0]) == self.ids[pos + 1]
                lines = [
                    html.escape(repr(tok)) + (f" <small>{p:.2f}</small>" if self.show_probs.value else "")
                    for tok, p in shown
                ]
                style = "background:#d8f0d8;" if hit else ""
                cells.append(f"<td style='{style}padding:2px 4px'>{'<br>'.join(lines)}</td>")
            rows.append(f"<tr><th style='text-align:left'>{name}</th>{''.join(cells)}</tr>")
        nxt = "".join(f"<td><i>{html.escape(repr(t))}</i></td>" for t in tokens[1:]) + "<td>?</td>"
        rows.append(f"<tr><th style='text-align:left'>real next</th>{nxt}</tr>")
        self.table.value = (
            "<div style='overflow-x:auto'><table style='border-collapse:collapse;font-family:monospace;"
            "font-size:12px'>" + "".join(rows) + "</table></div>"
        )


def logit_lens_table(
    model, tokenizer, text: str, top_k: int = 1, max_tokens: int = DEFAULT_MAX_TOKENS
) -> LogitLensTable:
    """The logit lens of ``model`` on ``text`` as a table (depth x position), top ``top_k`` tokens per cell."""
    return LogitLensTable(model, tokenizer, text, top_k=top_k, max_tokens=max_tokens)
