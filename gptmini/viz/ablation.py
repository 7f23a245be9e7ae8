"""The ablation explorer: switch attention heads off and watch the loss and the next-token guess change.

A head that looks busy in the gallery may not matter; one that looks dull may carry the prediction. Each
toggle ablates one head (zero or mean ablation, :mod:`gptmini.inspect.ablation`); the table shows the loss
on the text and the most likely next tokens with all heads and with the chosen heads switched off.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import torch

from ..inspect.ablation import AblationResult, ablation_effect, head_means
from ._render import HIGHLIGHT
from ._text import TextInput

GREEN = "#2ca02c"
CELL = "padding:2px 12px;border-bottom:1px solid #ddd;text-align:left"


def _token_label(tokenizer, token_id: int) -> str:
    return html.escape(repr(tokenizer.token_strings([token_id])[0]))


class AblationExplorer(TextInput, widgets.VBox):
    """A grid of head toggles (rows: layers), zero / mean mode, and a before / after table.

    Public state: ``toggles[(layer, head)]`` (ToggleButtons), ``mode``, ``reset_button``, ``text_box``;
    ``result`` (the latest :class:`~gptmini.inspect.ablation.AblationResult`), :meth:`ablated` and ``table``.
    """

    def __init__(self, model, tokenizer, text: str, top: int = 5, max_tokens: int | None = None) -> None:
        self.model, self.tokenizer, self.top, self.max_tokens = model, tokenizer, top, max_tokens
        cfg = model.config
        self.ids: list[int] = []
        self.result: AblationResult | None = None
        self._means: list[torch.Tensor] | None = None
        self._quiet = False

        self.text_box = widgets.Text(
            value=text, description="text", continuous_update=False, layout=widgets.Layout(width="95%")
        )
        self.mode = widgets.ToggleButtons(
            options=[("zero", "zero"), ("mean", "mean")], value="zero", description="ablation"
        )
        self.reset_button = widgets.Button(description="all heads on")
        self.toggles: dict[tuple[int, int], widgets.ToggleButton] = {}
        cells = []
        for layer in range(cfg.n_layer):
            for head in range(cfg.n_head):
                toggle = widgets.ToggleButton(
                    value=False, description=f"L{layer}H{head}", tooltip=f"switch off layer {layer}, head {head}",
                    layout=widgets.Layout(width="auto"),
                )  # fmt: skip
                toggle.observe(lambda _change: self.update(), names="value")
                self.toggles[(layer, head)] = toggle
                cells.append(toggle)
        self.grid = widgets.GridBox(
            cells, layout=widgets.Layout(grid_template_columns=f"repeat({cfg.n_head}, minmax(3.2em, 4.5em))")
        )
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        note = widgets.HTML("<i>pressed = switched off · rows: layers, columns: heads (L1H2 = layer 1, head 2)</i>")
        super().__init__([self.text_box, widgets.HBox([self.mode, self.reset_button]), note, self.grid,
                          self.status, self.table])  # fmt: skip

        self.mode.observe(lambda _change: self.update(), names="value")
        self.reset_button.on_click(lambda _button: self.reset())
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        self.set_text(text)
        self._require_first_text("ablation_explorer", text)

    # ------------------------------------------------------------------ state
    def ablated(self) -> list[tuple[int, int]]:
        """The (layer, head) pairs switched off now."""
        return [pair for pair, toggle in self.toggles.items() if toggle.value]

    def set_text(self, text: str) -> None:
        """Use a new text: its loss, its next token, and (for mean ablation) the heads' means over it."""
        encoded = self._encode(text, self.max_tokens, min_tokens=2)
        if encoded is None:
            return
        self.ids = encoded[0]
        self._means = head_means(self.model, self._idx())
        if self.text_box.value != text:
            self.text_box.value = text
        self.update()

    def reset(self) -> None:
        """Switch every head back on (redrawn once)."""
        self._quiet = True
        try:
            for toggle in self.toggles.values():
                toggle.value = False
        finally:
            self._quiet = False
        self.update()

    def _idx(self) -> torch.Tensor:
        return torch.tensor([self.ids], dtype=torch.long, device=self.model.device)

    # ------------------------------------------------------------------ drawing
    def update(self) -> None:
        if self._quiet or not self.ids:
            return
        heads = self.ablated()
        self.result = ablation_effect(self.model, self._idx(), heads, self.mode.value, self._means)
        r = self.result
        change = r.loss_change
        color = HIGHLIGHT if change > 0 else GREEN
        off = ", ".join(f"L{layer}H{head}" for layer, head in heads) or "none"
        self.status.value = (
            f"{len(self.ids)} tokens · heads off ({self.mode.value} ablation): <b>{off}</b> · loss "
            f"{r.loss_before:.3f} → {r.loss_after:.3f} nats/token "
            f"(<span style='color:{color}'><b>{change:+.3f}</b></span>)"
        )
        before, after = r.top(self.top, after=False), r.top(self.top, after=True)
        rows = []
        for (id_b, p_b), (id_a, p_a) in zip(before, after, strict=True):
            cells = (_token_label(self.tokenizer, id_b), f"{p_b:.3f}", _token_label(self.tokenizer, id_a), f"{p_a:.3f}")
            rows.append("<tr>" + "".join(f"<td style='{CELL}'>{c}</td>" for c in cells) + "</tr>")
        tail = html.escape(repr(self.tokenizer.decode(self.ids[-12:])))
        pair = f"<th style='{CELL}'>token</th><th style='{CELL}'>prob.</th>"
        self.table.value = (
            f"<p>next token after …{tail}</p>"
            "<table style='border-collapse:collapse;font-family:monospace'>"
            f"<tr><th colspan=2 style='{CELL}'>all heads</th><th colspan=2 style='{CELL}'>heads off</th></tr>"
            f"<tr>{pair}{pair}</tr>{''.join(rows)}</table>"
        )


def ablation_explorer(model, tokenizer, text: str, top: int = 5, max_tokens: int | None = None) -> AblationExplorer:
    """Toggle ``model``'s heads off on ``text`` and compare loss and top-``top`` next tokens before and after."""
    return AblationExplorer(model, tokenizer, text, top=top, max_tokens=max_tokens)
