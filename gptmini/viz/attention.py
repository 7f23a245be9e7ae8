"""The attention explorer: pick a layer, a head and a query token and see where that token looks.

It needs no network and no JavaScript beyond ipywidgets' own, which is why the course uses it first and
bertviz only as an extra: the heatmaps are drawn by matplotlib and shipped to the page as PNG images.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np

from ._inputs import attention_arrays, encode_text
from ._render import (
    FONT,
    HIGHLIGHT,
    KEY_LABEL,
    QUERY_LABEL,
    TICK_PITCH,
    WEIGHT_LABEL,
    attention_heatmap,
    axes_at,
    axes_inches,
    error_html,
    image_widget,
    new_figure,
    show_labels,
    text_inches,
    tick_plan,
    to_png,
    weight_colorbar,
)

DEFAULT_MAX_TOKENS = 48


def draw_query_lines(ax, weights: np.ndarray, labels: list[str], query: int) -> None:
    """Tokens in two columns, the query on the left, one line to every key, thicker where it attends more.

    ``weights`` is the query's row of the attention matrix (length T); positions after the query are
    masked in a causal model and drawn faint.
    """
    t = len(labels)
    shown = show_labels(labels)
    room = axes_inches(ax)[1] * 72  # every token gets a line: as big as the height allows, at least 6 points
    size = max(6.0, min(FONT, room / (t * TICK_PITCH)))
    for j in range(t):
        w = float(weights[j])
        if j <= query and w > 0.002:
            ax.plot(
                [0.04, 0.96],
                [-query, -j],
                color="C0",
                linewidth=0.5 + 9.0 * w,  # absolute scale: uniform attention looks faint, as it should
                alpha=min(1.0, 0.12 + 1.5 * w),
                solid_capstyle="round",
            )
    for i in range(t):
        left_color = HIGHLIGHT if i == query else "#b0b0b0"
        ax.text(
            0.0,
            -i,
            shown[i],
            ha="right",
            va="center",
            fontsize=size,
            color=left_color,
            fontweight="bold" if i == query else "normal",
        )
        w = float(weights[i])
        strong = i <= query and w >= 0.05
        key_label = f"{shown[i]}  {w:.2f}" if strong else shown[i]
        ax.text(
            1.0,
            -i,
            key_label,
            ha="left",
            va="center",
            fontsize=size,
            color="black" if i <= query else "#cccccc",
            fontweight="bold" if strong else "normal",
        )
    ax.set_xlim(-0.45, 1.55)
    ax.set_ylim(-t + 0.4, 0.6)
    ax.axis("off")


def button_labels(tokens: list[str]) -> list[str]:
    """Token labels for the query buttons, made distinct with zero-width spaces.

    ipywidgets' ToggleButtons find the button to highlight by its label, so with a repeated token (every
    space of a text) the first copy would light up instead of the chosen one; the invisible suffix avoids it.
    """
    seen: dict[str, int] = {}
    out = []
    for token in tokens:
        label = token.replace(" ", "␣") or "∅"
        out.append(label + "\u200b" * seen.get(label, 0))
        seen[label] = seen.get(label, 0) + 1
    return out


class AttentionExplorer(widgets.VBox):
    """Sliders for layer and head, clickable query tokens, a text box, and the heatmap they select.

    For tests and notebooks the state is public: ``layer``, ``head``, ``query``, ``view`` and ``text_box``
    are the controls; :meth:`current_matrix` is the (T, T) matrix on screen; ``maps[l][h]`` all of them.
    """

    def __init__(self, model, tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        cfg = model.config
        self.ids: list[int] = []
        self.tokens: list[str] = []
        self.maps: list[np.ndarray] = []
        self.total_tokens = 0
        self._busy = False

        wide = widgets.Layout(width="95%")
        self.text_box = widgets.Text(value=text, description="text", continuous_update=False, layout=wide)
        self.layer = widgets.IntSlider(0, min=0, max=cfg.n_layer - 1, description="layer", continuous_update=False)
        self.head = widgets.IntSlider(0, min=0, max=cfg.n_head - 1, description="head", continuous_update=False)
        self.view = widgets.ToggleButtons(
            options=[("one head", "head"), ("all heads", "all")], value="head", description="show"
        )
        self.query = widgets.ToggleButtons(
            options=[("?", 0)], description="query", style={"button_width": "auto"}, layout=wide
        )
        self.status = widgets.HTML()
        self.image = image_widget()
        controls = widgets.HBox([self.layer, self.head, self.view])
        super().__init__([self.text_box, controls, self.query, self.status, self.image])

        for control in (self.layer, self.head, self.view, self.query):
            control.observe(lambda _change: self.render(), names="value")
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        self.set_text(text)
        if not self.ids:  # a bad first text is the caller's mistake: say so instead of showing an empty widget
            raise ValueError(f"attention_explorer could not use the text {text!r}: {self._last_error}")

    # ------------------------------------------------------------------ state
    def set_text(self, text: str) -> None:
        """Tokenise ``text``, compute every layer's attention once, and redraw (errors go to the status line)."""
        try:
            ids, total = encode_text(self.model, self.tokenizer, text, self.max_tokens)
        except ValueError as err:
            self._last_error = str(err)
            self.status.value = error_html(str(err))
            return
        self.ids, self.total_tokens = ids, total
        self.tokens = list(self.tokenizer.token_strings(ids))
        self.maps = attention_arrays(self.model, ids)
        if self.text_box.value != text:
            self.text_box.value = text
        self._busy = True
        try:  # new options fire the query observer: draw once, at the end
            self.query.options = list(zip(button_labels(self.tokens), range(len(self.tokens)), strict=True))
            self.query.tooltips = [f"position {i}" for i in range(len(self.tokens))]
            self.query.value = len(ids) - 1  # the last token sees the whole text: the most to look at
        finally:
            self._busy = False
        self.render()

    def current_matrix(self) -> np.ndarray:
        """The (T, T) attention weights of the selected layer and head (rows: queries, columns: keys)."""
        return self.maps[self.layer.value][self.head.value].copy()

    # ------------------------------------------------------------------ drawing
    def figure(self):
        """The matplotlib figure for the current selection (also handy to save for slides)."""
        if self.view.value == "all":
            return self._figure_all_heads()
        return self._figure_one_head()

    def render(self) -> None:
        if self._busy or not self.maps:
            return
        self.head.disabled = self.view.value == "all"
        self.image.value = to_png(self.figure())
        q = self.query.value
        note = ""
        if self.total_tokens > len(self.ids):
            why = f"max_tokens={self.max_tokens}"
            if len(self.ids) == self.model.config.block_size:
                why = f"the model's context is {len(self.ids)}"
            note = f" · showing the first {len(self.ids)} of {self.total_tokens} tokens ({why})"
        self.status.value = (
            f"{len(self.ids)} tokens · layer {self.layer.value}, head {self.head.value} · query {q} "
            f"<b>{html.escape(repr(self.tokens[q]))}</b> — click a token above to change the query{note}"
        )

    def _figure_one_head(self):
        layer, head, q = self.layer.value, self.head.value, self.query.value
        matrix = self.maps[layer][head]
        t = len(self.tokens)
        side = 6.0 if t > 24 else 5.0
        step, size = tick_plan(t, side)
        margin = text_inches(show_labels(self.tokens[::step]), size) + 0.6  # tick labels + axis label
        width, height = margin + side + 1.6 + 5.2, margin + side + 0.45
        fig = new_figure(width, height, layout=None)
        ax = axes_at(fig, margin, margin, side, side)
        artist = attention_heatmap(
            ax, matrix, self.tokens, title=f"layer {layer}, head {head} (grey: future, masked)", highlight_row=q
        )
        weight_colorbar(fig, artist, cax=axes_at(fig, margin + side + 0.15, margin, 0.22, side))
        lines = axes_at(fig, margin + side + 1.75, 0.15, 4.9, height - 0.6)
        draw_query_lines(lines, matrix[q], self.tokens, q)
        lines.set_title(f"where {self.tokens[q]!r} (position {q}) looks", fontsize=FONT)
        return fig

    def _figure_all_heads(self):
        layer, q = self.layer.value, self.query.value
        heads = self.maps[layer]
        n, t = heads.shape[0], heads.shape[-1]
        cols = min(n, 4)
        rows = math.ceil(n / cols)
        cell, gap, title, foot = 2.9, 0.25, 0.45, 0.45
        step, size = tick_plan(t, cell)  # token labels thinned to fit a panel, never dropped
        margin = text_inches(show_labels(self.tokens[::step]), size) + 0.2
        width = margin + cols * (cell + gap) + 0.1
        height = foot + margin + rows * (cell + title) + 0.45
        fig = new_figure(width, height, layout=None)
        fig.suptitle(f"layer {layer}: all {n} heads (red row: query {q} {self.tokens[q]!r})", fontsize=FONT + 1)
        for h in range(n):
            r, c = divmod(h, cols)
            left = margin + c * (cell + gap)
            bottom = foot + margin + (rows - 1 - r) * (cell + title)
            ax = axes_at(fig, left, bottom, cell, cell)
            attention_heatmap(ax, heads[h], self.tokens, title=f"head {h}", highlight_row=q)
            ax.set_xlabel("")
            ax.set_ylabel("")
            # the panels share their tokens: labels on the outer edges only (left column, lowest panel of each
            # column), which keeps them readable and the redraw fast with GPT-2's 12 heads
            ax.tick_params(labelleft=c == 0, labelbottom=h + cols >= n)
            if h == self.head.value:
                ax.title.set_fontweight("bold")
        fig.text(0.5, 0.01, f"rows: {QUERY_LABEL}\ncolumns: {KEY_LABEL} · colour: {WEIGHT_LABEL}",
                 ha="center", va="bottom", fontsize=FONT - 3, wrap=True)  # fmt: skip
        return fig


def attention_explorer(model, tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> AttentionExplorer:
    """An interactive view of ``model``'s attention on ``text`` (works offline: plain ipywidgets + PNG).

    Long texts are cut to the first ``max_tokens`` tokens (attention is T x T, so big inputs get unreadable).
    """
    return AttentionExplorer(model, tokenizer, text, max_tokens=max_tokens)
