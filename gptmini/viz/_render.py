"""Shared drawing helpers for the widgets: figures without pyplot, PNG bytes, readable token labels.

Widgets draw with matplotlib's object API on the Agg canvas and hand PNG bytes to ``ipywidgets.Image``.
That path needs no notebook backend (``%matplotlib widget`` and friends), renders the same in JupyterLab,
Colab and a browser test, and never leaves stray pyplot figures that a notebook would print twice.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

FONT = 12  # large enough to read on a projector
ATTENTION_CMAP = "Blues"
MASKED_COLOR = "#e6e6e6"  # cells a causal model may not look at: grey, unlike "allowed but ~0" (white)
HIGHLIGHT = "#d62728"


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A matplotlib figure that belongs to no pyplot state (so nothing is displayed behind our back).

    Widgets that redraw on every slider move pass ``layout=None`` and place their axes with
    :func:`axes_at`: the automatic layout engines cost more than the drawing itself.
    """
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def axes_at(fig: Figure, left: float, bottom: float, width: float, height: float, **kwargs) -> Axes:
    """Add axes at a position given in inches from the figure's lower-left corner."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh), **kwargs)


def text_inches(labels: Sequence[str], fontsize: float) -> float:
    """About how wide the longest label is, in inches (for margins without a layout engine)."""
    longest = max((len(str(label)) for label in labels), default=1)
    return longest * fontsize * 0.62 / 72


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes (fixed size, white background: the image must read on any theme)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def image_widget() -> widgets.Image:
    """An image that scales down with the notebook's width instead of overflowing it."""
    return widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))


def as_numpy(values, dtype=np.float32) -> np.ndarray:
    """A float numpy copy of a tensor, array or nested list (widgets never hold on to autograd graphs)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64 if dtype == np.float64 else torch.float32).numpy()
    return np.array(values, dtype=dtype)


def show_labels(labels: Sequence[str]) -> list[str]:
    """Make spaces visible (``␣``) and stop matplotlib from reading ``$`` as the start of a formula."""
    out = []
    for label in labels:
        label = str(label).replace(" ", "␣").replace("$", r"\$")
        out.append(label if label else "∅")
    return out


def label_fontsize(n: int) -> float:
    """Tick labels shrink as the number of tokens grows, but stay readable."""
    return float(max(6, min(FONT, 240 // max(n, 1))))


MIN_TICK_FONT = 7  # points: the smallest token label still worth printing
TICK_PITCH = 1.25  # a label needs about 1.25 times its font size of room along the axis
LAYOUT_SHRINK = 0.8  # how much of an axes' first size is left after a layout engine made room for its labels


def tick_plan(n: int, side_inches: float, max_labels: int | None = None) -> tuple[int, float]:
    """``(step, fontsize)`` for ``n`` token labels along an axis ``side_inches`` long.

    Every label is shown while each can get at least :data:`MIN_TICK_FONT` points; beyond that every
    ``step``-th one (positions 0, step, 2·step, ...), never none. ``max_labels`` caps the count further.
    """
    room = max(side_inches, 0.0) * 72
    fits = max(1, int(room / (MIN_TICK_FONT * TICK_PITCH)))
    limit = fits if max_labels is None else max(1, min(fits, int(max_labels)))
    step = max(1, math.ceil(n / limit))
    shown = len(range(0, max(n, 1), step))
    return step, float(max(MIN_TICK_FONT, min(FONT, room / (shown * TICK_PITCH))))


def axes_inches(ax: Axes) -> tuple[float, float]:
    """The axes' width and height in inches (as placed now; a layout engine may still shrink them a bit)."""
    box = ax.get_position()
    fw, fh = ax.figure.get_size_inches()
    return box.width * fw, box.height * fh


def token_ticks(ax: Axes, labels: Sequence[str], axis: str = "both", max_labels: int | None = None) -> list[int]:
    """Label an axis with tokens: all of them while they stay readable, else every k-th one, never none.

    How many fit follows from the axes' size (at least :data:`MIN_TICK_FONT` points per label);
    ``max_labels`` lowers that. Spaces show as ``␣``. Returns the positions that carry a label.
    """
    if axis not in ("both", "x", "y"):
        raise ValueError(f"axis must be 'both', 'x' or 'y', got {axis!r}")
    n = len(labels)
    if n == 0:
        return []
    width, height = axes_inches(ax)
    side = {"x": width, "y": height, "both": min(width, height)}[axis]
    if ax.figure.get_layout_engine() is not None:
        side *= LAYOUT_SHRINK  # the layout engine will still shrink the axes to make room for labels and bars
    step, size = tick_plan(n, side, max_labels)
    ticks = list(range(0, n, step))
    shown = show_labels([labels[i] for i in ticks])
    if axis in ("both", "x"):
        ax.set_xticks(ticks, shown, rotation=90, fontsize=size)
    if axis in ("both", "y"):
        ax.set_yticks(ticks, shown, fontsize=size)
    return ticks


def set_token_ticks(ax: Axes, labels: Sequence[str], axis: str = "both", max_labels: int | None = None) -> None:
    """Older name of :func:`token_ticks`."""
    token_ticks(ax, labels, axis=axis, max_labels=max_labels)


KEY_LABEL = "key position (token attended to)"
QUERY_LABEL = "query position (token attending)"
WEIGHT_LABEL = "attention weight (0–1)"


def attention_heatmap(
    ax: Axes,
    matrix: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    causal: bool = True,
    highlight_row: int | None = None,
    ticks: bool = True,
    max_labels: int | None = None,
):
    """Draw a (queries x keys) weight matrix; future positions of a causal model are shown grey.

    Axes are labelled with the tokens (or positions 0..T-1 without ``labels``) through :func:`token_ticks`,
    thinned but never dropped; ``ticks=False`` leaves them bare (thumbnails). Returns the image artist so a
    caller can add a colour bar (:func:`weight_colorbar`).
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    t_q, t_k = matrix.shape
    shown = np.ma.masked_array(matrix)
    if causal:
        allowed = np.tril(np.ones((t_q, t_k), dtype=bool), k=t_k - t_q)
        shown = np.ma.masked_array(matrix, mask=~allowed)
    cmap = colormaps[ATTENTION_CMAP].with_extremes(bad=MASKED_COLOR)
    # a square-root colour scale: weights of 0.02-0.2 (typical over long inputs) stay visible, 0 stays white
    artist = ax.imshow(shown, cmap=cmap, norm=PowerNorm(0.5, vmin=0.0, vmax=1.0), interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=FONT)
    if ticks:
        keys = [str(j) for j in range(t_k)] if labels is None or len(labels) != t_k else list(labels)
        if t_q == t_k:
            token_ticks(ax, keys, max_labels=max_labels)
        else:  # the queries are the last t_q positions
            token_ticks(ax, keys, axis="x", max_labels=max_labels)
            token_ticks(ax, keys[t_k - t_q :], axis="y", max_labels=max_labels)
        ax.set_xlabel(KEY_LABEL, fontsize=FONT - 1)
        ax.set_ylabel(QUERY_LABEL, fontsize=FONT - 1)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if highlight_row is not None:
        ax.add_patch(
            Rectangle((-0.5, highlight_row - 0.5), t_k, 1, fill=False, edgecolor=HIGHLIGHT, linewidth=2, clip_on=False)
        )
    return artist


def weight_colorbar(fig: Figure, artist, **kwargs):
    """A colour bar for :func:`attention_heatmap` with its unit spelled out and ticks at round weights."""
    bar = fig.colorbar(artist, **kwargs)
    bar.set_ticks([0.0, 0.05, 0.2, 0.5, 1.0])  # the square-root scale puts these at readable distances
    bar.set_label(WEIGHT_LABEL, fontsize=FONT - 1)
    bar.ax.tick_params(labelsize=FONT - 2)
    return bar


def error_html(message: str) -> str:
    """A one-line, clearly visible error for a widget's status line (bad input should not crash a widget)."""
    import html

    return f"<span style='color:{HIGHLIGHT}'>⚠ {html.escape(message)}</span>"
