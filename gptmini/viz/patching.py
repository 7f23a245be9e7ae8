"""The patching explorer: which head (or which position of the residual stream) carries the clean behaviour?

Type a clean text and a corrupted one of the same length (e.g. a repeated text, and the same with its first
half changed), pick a metric, and see the recovered fraction of every (layer, head) or every (depth,
position) as a heat map (:mod:`gptmini.inspect.patching`). Pick a head to open it in the attention explorer.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import torch

from ..inspect.patching import Patching, logit_diff_metric, negative_loss_metric, patch_heads, patch_residual
from ._render import FONT, error_html, image_widget, new_figure, show_labels, to_png, token_ticks
from ._text import TextInput
from .attention import AttentionExplorer

METRICS = {
    "logit difference: clean's top next token − corrupted's, last position": "logit_diff",
    "loss on the clean text's second half (minus)": "loss",
}
KINDS = {"each head's output (layer × head)": "heads", "residual stream (depth × position)": "residual"}
CMAP = "RdBu"


class PatchingExplorer(TextInput, widgets.VBox):
    """Two text boxes, a metric and a kind of patch; a heat map of the recovered fraction; a head picker.

    Public state: ``clean_box``, ``corrupted_box``, ``metric``, ``kind``, ``head_picker``, ``open_button``;
    ``result`` (the latest :class:`~gptmini.inspect.patching.Patching`), ``explorer`` once a head was opened.
    """

    def __init__(self, model, tokenizer, clean: str, corrupted: str, max_tokens: int = 48) -> None:
        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        self.clean_ids: list[int] = []
        self.corrupted_ids: list[int] = []
        self.ids = self.clean_ids  # what TextInput's first-text check looks at
        self.result: Patching | None = None
        self.explorer: AttentionExplorer | None = None
        wide = widgets.Layout(width="95%")
        self.clean_box = widgets.Text(value=clean, description="clean", continuous_update=False, layout=wide)
        self.corrupted_box = widgets.Text(value=corrupted, description="corrupted", continuous_update=False,
                                          layout=wide)  # fmt: skip
        self.metric = widgets.Dropdown(options=list(METRICS.items()), value="logit_diff", description="metric",
                                       layout=widgets.Layout(width="95%"))  # fmt: skip
        self.kind = widgets.ToggleButtons(options=list(KINDS.items()), value="heads", description="patch")
        cfg = model.config
        heads = [(f"L{layer}H{head}", (layer, head)) for layer in range(cfg.n_layer) for head in range(cfg.n_head)]
        self.head_picker = widgets.Dropdown(options=heads, value=(0, 0), description="head")
        self.open_button = widgets.Button(description="open in attention explorer", icon="search",
                                          layout=widgets.Layout(width="auto"))  # fmt: skip
        self.status = widgets.HTML()
        self.image = image_widget()
        self.explorer_box = widgets.VBox()
        picker = widgets.HBox([self.head_picker, self.open_button])
        super().__init__([self.clean_box, self.corrupted_box, self.metric, self.kind, picker, self.status,
                          self.image, self.explorer_box])  # fmt: skip
        for control in (self.metric, self.kind):
            control.observe(lambda _change: self.update(), names="value")
        for box in (self.clean_box, self.corrupted_box):
            box.observe(lambda _change: self.set_texts(self.clean_box.value, self.corrupted_box.value), names="value")
        self.head_picker.observe(lambda _change: self.render(), names="value")
        self.open_button.on_click(lambda _button: self.open_head(*self.head_picker.value))
        self.set_texts(clean, corrupted)
        if not self.clean_ids:
            raise ValueError(f"patching_explorer could not use the texts {clean!r} / {corrupted!r}: {self._last_error}")

    # ------------------------------------------------------------------ state
    def set_texts(self, clean: str, corrupted: str) -> None:
        """Use a new pair of texts (same number of tokens); a bad pair is reported on the status line."""
        a = self._encode(clean, self.max_tokens, min_tokens=2)
        b = self._encode(corrupted, self.max_tokens, min_tokens=2)
        if a is None or b is None:
            return
        if len(a[0]) != len(b[0]):
            self._last_error = (
                f"the clean text has {len(a[0])} tokens and the corrupted one {len(b[0])}: patching swaps "
                "activations position by position, so make them the same length"
            )
            self.status.value = error_html(self._last_error)
            return
        self.clean_ids, self.corrupted_ids = a[0], b[0]
        self.ids = self.clean_ids
        for box, text in ((self.clean_box, clean), (self.corrupted_box, corrupted)):
            if box.value != text:
                box.value = text
        self.explorer = None
        self.explorer_box.children = ()
        self.update()

    def _idx(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.model.device)

    def _metric(self, clean: torch.Tensor, corrupted: torch.Tensor):
        if self.metric.value == "loss":
            return negative_loss_metric(clean, start=clean.shape[1] // 2)
        with torch.no_grad():
            right = int(self.model(clean)[0][0, -1].argmax())
            wrong = int(self.model(corrupted)[0][0, -1].argmax())
        self.tokens_compared = (right, wrong)
        return logit_diff_metric(right, wrong)

    def update(self) -> None:
        """Patch every head (or every depth and position) and redraw."""
        if not self.clean_ids:
            return
        clean, corrupted = self._idx(self.clean_ids), self._idx(self.corrupted_ids)
        self.tokens_compared = None
        metric = self._metric(clean, corrupted)
        patch = patch_heads if self.kind.value == "heads" else patch_residual
        self.result = patch(self.model, clean, corrupted, metric)
        self.render()

    def open_head(self, layer: int, head: int) -> AttentionExplorer:
        """Show ``(layer, head)`` on the clean text in an attention explorer under the heat map."""
        if self.explorer is None:
            self.explorer = AttentionExplorer(self.model, self.tokenizer, self.tokenizer.decode(self.clean_ids),
                                              max_tokens=len(self.clean_ids))  # fmt: skip
            self.explorer_box.children = (self.explorer,)
        self.explorer.layer.value, self.explorer.head.value = layer, head
        return self.explorer

    # ------------------------------------------------------------------ drawing
    def figure(self):
        grid = self.result.recovered.numpy()
        rows, cols = grid.shape
        heads = self.kind.value == "heads"
        width = min(13.0, 3.5 + 0.5 * cols) if heads else min(15.0, 3.5 + 0.3 * cols)
        fig = new_figure(max(5.0, width), max(3.0, 1.6 + 0.45 * rows))
        ax = fig.add_subplot()
        limit = max(1.0, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
        art = ax.imshow(grid, cmap=CMAP, vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        if heads:
            ax.set_xticks(range(cols))
            ax.set_xlabel("head", fontsize=FONT - 1)
            ax.set_yticks(range(rows))
            ax.set_ylabel("layer", fontsize=FONT - 1)
            layer, head = self.head_picker.value
            ax.add_patch(_frame(head, layer))
            if rows * cols <= 64:
                for (r, c), value in np.ndenumerate(grid):
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=FONT - 3)
        else:
            token_ticks(ax, self.tokenizer.token_strings(self.clean_ids), axis="x")
            ax.set_xlabel("position (clean token)", fontsize=FONT - 1)
            ax.set_yticks(range(rows), ["h0"] + [f"after block {d}" for d in range(rows - 1)], fontsize=FONT - 2)
        bar = fig.colorbar(art, ax=ax)
        bar.set_label("recovered (1 = clean, 0 = corrupted)", fontsize=FONT - 3)
        ax.set_title(f"activation patching: {'each head' if heads else 'residual stream'}", fontsize=FONT)
        return fig

    def render(self) -> None:
        if self.result is None:
            return
        self.image.value = to_png(self.figure())
        r = self.result
        what = "minus the loss" if self.metric.value == "loss" else "logit difference"
        if self.tokens_compared is not None:
            right, wrong = (show_labels(self.tokenizer.token_strings([t]))[0] for t in self.tokens_compared)
            what += f" ({html.escape(right)} − {html.escape(wrong)})"
        line = f"{len(self.clean_ids)} tokens · {what}: clean {r.clean:.3f}, corrupted {r.corrupted:.3f}"
        if self.kind.value == "heads":
            layer, head = self.head_picker.value
            line += f" · <b>L{layer}H{head}</b> recovers {float(r.recovered[layer, head]):.2f}"
        if r.clean == r.corrupted:
            line += " · the two texts give the same metric: nothing to recover (change the corrupted text)"
        self.status.value = line


def _frame(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.5)


def patching_explorer(model, tokenizer, clean: str, corrupted: str, max_tokens: int = 48) -> PatchingExplorer:
    """Patch ``model``'s activations from ``clean`` into ``corrupted`` and map the recovered fraction."""
    return PatchingExplorer(model, tokenizer, clean, corrupted, max_tokens=max_tokens)
