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


def set_token_ticks(ax: Axes, labels: Sequence[str], axis: str = "both", max_labels: int = 64) -> None:
    """Put token labels on the axes; with very many tokens show every n-th one."""
    n = len(labels)
    step = max(1, math.ceil(n / max_labels))
    ticks = list(range(0, n, step))
    shown = [show_labels(labels)[i] for i in ticks]
    size = label_fontsize(len(ticks))
    if axis in ("both", "x"):
        ax.set_xticks(ticks, shown, rotation=90, fontsize=size)
    if axis in ("both", "y"):
        ax.set_yticks(ticks, shown, fontsize=size)


def attention_heatmap(
    ax: Axes,
    matrix: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    causal: bool = True,
    highlight_row: int | None = None,
    ticks: bool = True,
):
    """Draw a (queries x keys) weight matrix; future positions of a causal model are shown grey.

    Returns the image artist so a caller can add a colour bar.
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
    if ticks and labels is not None:
        set_token_ticks(ax, labels)
        ax.set_xlabel("key (attended to)", fontsize=FONT - 2)
        ax.set_ylabel("query (attending)", fontsize=FONT - 2)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if highlight_row is not None:
        ax.add_patch(
            Rectangle((-0.5, highlight_row - 0.5), t_k, 1, fill=False, edgecolor=HIGHLIGHT, linewidth=2, clip_on=False)
        )
    return artist


def error_html(message: str) -> str:
    """A one-line, clearly visible error for a widget's status line (bad input should not crash a widget)."""
    import html

    return f"<span style='color:{HIGHLIGHT}'>⚠ {html.escape(message)}</span>"
