"""The head gallery: every layer's every head as a small attention picture, coloured by what it does.

One glance shows a model's division of labour: a diagonal one step below the main one is a previous-token
head, a bright first column an attention sink, a stripe n - 1 below the diagonal on a repeated text an
induction head. The scores of :mod:`gptmini.inspect.scores` colour the frames (or sort the pictures); picking
a head opens it, big, in the attention explorer.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgb

from ..inspect.scores import SCORES, head_scores
from ._inputs import attention_arrays
from ._render import (
    ATTENTION_CMAP,
    FONT,
    HIGHLIGHT,
    MASKED_COLOR,
    axes_at,
    image_widget,
    new_figure,
    show_labels,
    text_inches,
    to_png,
    token_ticks,
)
from ._text import TextInput
from .attention import AttentionExplorer

SCORE_CMAP = "viridis"
DEFAULT_MAX_TOKENS = 32


class HeadGallery(TextInput, widgets.VBox):
    """Thumbnails of all heads' attention on a text; frames coloured by a score; one head opens big.

    Public state: the controls ``text_box``, ``score``, ``order``, ``head_picker`` and ``open_button``;
    ``scores`` ({name: (layers, heads) array}), ``maps[l][h]`` (T, T), :meth:`display_order` (the (layer,
    head) pairs in the order they are drawn), ``explorer`` (the attention explorer once a head was opened).
    """

    def __init__(
        self, model, tokenizer, text: str, score: str = "previous-token", max_tokens: int = DEFAULT_MAX_TOKENS
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        self.ids: list[int] = []
        self.tokens: list[str] = []
        self.maps: list[np.ndarray] = []
        self.scores: dict[str, np.ndarray] = {}
        self.explorer: AttentionExplorer | None = None

        self.text_box = widgets.Text(
            value=text, description="text", continuous_update=False, layout=widgets.Layout(width="95%")
        )
        self.score = widgets.Dropdown(options=list(SCORES), value=score, description="colour by")
        self.order = widgets.ToggleButtons(
            options=[("layer × head", "grid"), ("highest score first", "sorted")], value="grid", description="order"
        )
        self.head_picker = widgets.Dropdown(options=[("?", (0, 0))], description="head")
        self.open_button = widgets.Button(
            description="open in attention explorer", icon="search", layout=widgets.Layout(width="auto")
        )
        self.status = widgets.HTML()
        self.image = image_widget()
        self.explorer_box = widgets.VBox()
        controls = widgets.HBox([self.score, self.order])
        picker = widgets.HBox([self.head_picker, self.open_button])
        super().__init__([self.text_box, controls, picker, self.status, self.image, self.explorer_box])

        for control in (self.score, self.order):
            control.observe(lambda _change: self._refresh_picker(), names="value")
        self.head_picker.observe(lambda _change: self.render(), names="value")
        self.open_button.on_click(lambda _button: self.open_head(*self.head_picker.value))
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        self.set_text(text)
        self._require_first_text("head_gallery", text)

    # ------------------------------------------------------------------ state
    def set_text(self, text: str) -> None:
        """Tokenise ``text``, compute every head's attention and scores once, and redraw."""
        encoded = self._encode(text, self.max_tokens)
        if encoded is None:
            return
        ids, _total = encoded
        self.ids = ids
        self.tokens = list(self.tokenizer.token_strings(ids))
        self.maps = attention_arrays(self.model, ids)
        n = min(self.max_tokens, self.model.config.block_size) // 2
        scores = head_scores(self.model, ids, n=max(2, n))
        self.scores = {name: value.numpy() for name, value in scores.items()}
        if self.text_box.value != text:
            self.text_box.value = text
        self.explorer = None
        self.explorer_box.children = ()
        self._refresh_picker()

    def display_order(self) -> list[tuple[int, int]]:
        """The (layer, head) pairs in drawing order: layer by layer, or by the chosen score, highest first."""
        values = self.scores[self.score.value]
        n_layer, n_head = values.shape
        pairs = [(layer, head) for layer in range(n_layer) for head in range(n_head)]
        if self.order.value == "sorted":
            pairs.sort(key=lambda p: -np.nan_to_num(values[p], nan=-1.0))
        return pairs

    def _refresh_picker(self) -> None:
        chosen = self.head_picker.value
        values = self.scores[self.score.value]
        options = [(f"L{layer}H{head}  {self.score.value} {values[layer, head]:.2f}", (layer, head))
                   for layer, head in self.display_order()]  # fmt: skip
        with self.head_picker.hold_trait_notifications():
            self.head_picker.options = options
            self.head_picker.value = chosen if chosen in dict((v, k) for k, v in options) else options[0][1]
        self.render()

    def open_head(self, layer: int, head: int) -> AttentionExplorer:
        """Show ``(layer, head)`` in an attention explorer under the gallery (what the button does)."""
        if self.explorer is None:
            self.explorer = AttentionExplorer(self.model, self.tokenizer, self.tokenizer.decode(self.ids),
                                              max_tokens=len(self.ids))  # fmt: skip
            self.explorer_box.children = (self.explorer,)
        self.explorer.layer.value, self.explorer.head.value = layer, head
        return self.explorer

    # ------------------------------------------------------------------ drawing
    def figure(self):
        """All thumbnails, in :meth:`display_order`, each framed in the colour of its score.

        The thumbnails are painted into one RGB mosaic shown by a single ``imshow``: GPT-2 small has 144 heads,
        and 144 matplotlib axes took seconds per redraw, too slow for a widget.
        """
        name = self.score.value
        values = self.scores[name]
        n_head = values.shape[1]
        pairs = self.display_order()
        chosen = tuple(self.head_picker.value)
        cols = n_head if self.order.value == "grid" else min(len(pairs), max(n_head, 4))
        rows = math.ceil(len(pairs) / cols)
        frames = [HIGHLIGHT if p == chosen else _score_color(values[p]) for p in pairs]
        mosaic, boxes = _mosaic([self.maps[layer][head] for layer, head in pairs], frames, cols)
        cell = 1.25 if cols <= 8 else 0.95
        title, bar, top = 0.3, 1.0, 0.8
        labels = show_labels(self.tokens)
        margin = min(1.2, text_inches(labels, FONT - 3) + 0.25)  # room for the token labels left of and below
        mosaic_w, mosaic_h = cols * cell, rows * (cell + title) - 0.1
        width, height = margin + mosaic_w + bar + 0.3, margin + mosaic_h + top
        fig = new_figure(width, height, layout=None)
        ax = axes_at(fig, margin, margin, mosaic_w, mosaic_h)
        ax.imshow(mosaic, interpolation="nearest", aspect="auto")
        ax.axis("off")
        for (layer, head), (x, y) in zip(pairs, boxes, strict=True):
            bold = (layer, head) == chosen
            ax.text(x, y, f"L{layer}H{head}  {values[layer, head]:.2f}", ha="center", va="bottom",
                    fontsize=FONT - 3, fontweight="bold" if bold else "normal")  # fmt: skip
        self._label_thumbnails(fig, mosaic.shape[:2], (margin, margin, mosaic_w, mosaic_h), len(pairs), cols)
        fig.suptitle(
            f"attention weight (0–1) of every head on {len(self.ids)} tokens\n"
            "rows: queries, columns: keys; blue: weight (square-root scale), grey: the future\n"
            f"frame colour: {name} score (share of attention, 0–1)",
            fontsize=FONT - 2, y=1 - 0.06 / height, linespacing=1.3,
        )  # fmt: skip
        bar_ax = axes_at(fig, width - bar + 0.1, margin, 0.18, max(1.0, mosaic_h - 0.2))
        bar_ax.imshow(np.linspace(1, 0, 100)[:, None], aspect="auto", cmap=colormaps[SCORE_CMAP], extent=(0, 1, 0, 1))
        bar_ax.set_xticks([])
        bar_ax.yaxis.tick_right()
        bar_ax.set_ylabel(f"{name} score (share of attention)", fontsize=FONT - 3)
        bar_ax.yaxis.set_label_position("right")
        return fig

    def _label_thumbnails(self, fig, shape: tuple[int, int], place: tuple[float, ...], count: int, cols: int) -> None:
        """Token labels (through :func:`token_ticks`: thinned to fit, never none) on the thumbnails of the first
        column (queries, y) and the lowest one of each column (keys, x), on see-through axes laid over them."""
        height_px, width_px = shape
        left, bottom, w, h = place
        t = len(self.tokens)
        side = _geometry(t)[1]
        for k in range(count):
            first_column, lowest = k % cols == 0, k + cols >= count
            if not (first_column or lowest):
                continue
            top_px, left_px = _corner(k, cols, t)
            box_w, box_h = side / width_px * w, side / height_px * h
            over = axes_at(
                fig, left + left_px / width_px * w, bottom + h * (1 - top_px / height_px) - box_h, box_w, box_h
            )
            over.set_xlim(-0.5, t - 0.5)
            over.set_ylim(t - 0.5, -0.5)
            over.patch.set_alpha(0.0)
            over.set_xticks([])
            over.set_yticks([])
            for spine in over.spines.values():
                spine.set_visible(False)
            if first_column:
                token_ticks(over, self.tokens, axis="y")
            if lowest:
                token_ticks(over, self.tokens, axis="x")

    def render(self) -> None:
        if not self.maps:
            return
        self.image.value = to_png(self.figure())
        layer, head = self.head_picker.value
        described = ", ".join(f"{name} {self.scores[name][layer, head]:.2f}" for name in SCORES)
        self.status.value = (
            f"{len(self.ids)} tokens · head <b>L{layer}H{head}</b> (layer {layer}, head {head}; red frame): "
            f"{html.escape(described)}"
            " · induction is measured on random tokens repeated twice, the others on this text"
        )


def head_gallery(
    model, tokenizer, text: str, score: str = "previous-token", max_tokens: int = DEFAULT_MAX_TOKENS
) -> HeadGallery:
    """Every head of ``model`` at once on ``text``, coloured (or sorted) by a score; open one in the explorer."""
    return HeadGallery(model, tokenizer, text, score=score, max_tokens=max_tokens)


def _score_color(value: float) -> tuple[float, float, float]:
    return colormaps[SCORE_CMAP](0.0 if math.isnan(float(value)) else float(np.clip(value, 0.0, 1.0)))[:3]


def _thumbnail(matrix: np.ndarray, scale: int) -> np.ndarray:
    """One head's (T, T) weights as RGB pixels, coloured as :func:`attention_heatmap` colours them."""
    t = matrix.shape[0]
    rgb = colormaps[ATTENTION_CMAP](np.sqrt(np.clip(matrix, 0.0, 1.0)))[..., :3]  # the square-root scale
    rgb[~np.tril(np.ones((t, t), dtype=bool))] = to_rgb(MASKED_COLOR)  # the future: grey
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def _geometry(t: int) -> tuple[int, int, int, int, int]:
    """Pixels of the mosaic for (T, T) thumbnails: (scale, side, border, gap_x, gap_y)."""
    scale = max(1, math.ceil(60 / t))
    side = t * scale
    return scale, side, max(2, side // 20), max(4, side // 10), max(8, side // 4)


def _corner(k: int, cols: int, t: int) -> tuple[int, int]:
    """Pixel (top, left) of the k-th thumbnail's picture, inside its frame."""
    _, side, border, gap_x, gap_y = _geometry(t)
    box = side + 2 * border
    r, c = divmod(k, cols)
    return gap_y + r * (box + gap_y) + border, c * (box + gap_x) + gap_x // 2 + border


def _mosaic(matrices: list[np.ndarray], frames: list, cols: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Thumbnails in a grid on white, each in a frame of its colour; returns the image and each title's anchor."""
    t = matrices[0].shape[0]
    scale, side, border, gap_x, gap_y = _geometry(t)  # room between thumbnails, and for a title above each
    box = side + 2 * border
    rows = math.ceil(len(matrices) / cols)
    image = np.ones((gap_y + rows * (box + gap_y), cols * (box + gap_x), 3))
    anchors = []
    for k, (matrix, frame) in enumerate(zip(matrices, frames, strict=True)):
        top, left = _corner(k, cols, t)
        image[top - border : top - border + box, left - border : left - border + box] = to_rgb(frame)
        image[top : top + side, left : left + side] = _thumbnail(matrix, scale)
        anchors.append((left - border + box / 2, top - border - 1.5))
    return image, anchors
