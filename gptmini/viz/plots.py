"""Static figures and tables the notebooks use: embeddings in 2-D, the causal mask, attention weights,
model sizes and training compute.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import GPTConfig
from ..sizes import count_params, flops
from ._render import (
    FONT,
    as_numpy,
    attention_heatmap,
    new_figure,
    show_labels,
    weight_colorbar,
)
from ._render import token_ticks as token_ticks  # the tick helper, public here with the plots

# ---------------------------------------------------------------------------------------- embeddings
CATEGORY_COLORS = {
    "lowercase": "C0",
    "uppercase": "C3",
    "digit": "C2",
    "space": "C7",
    "punctuation / other": "C1",
}


def pca_2d(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Project the rows of ``matrix`` onto its two main directions: (N, 2) coordinates, variance ratios.

    Rows are centred first; the directions are the top right-singular vectors (that is all PCA is).
    Each direction's sign is fixed so its largest coordinate is positive, making plots repeatable.
    """
    x = as_numpy(matrix, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d needs a 2-D matrix with at least 2 rows and 2 columns, got shape {x.shape}")
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    for d in range(2):
        if coords[np.argmax(np.abs(coords[:, d])), d] < 0:
            coords[:, d] *= -1
    var = s**2
    return coords, var[:2] / var.sum()


def token_category(label: str) -> str:
    """A coarse class for colouring a token: the kind of its first visible character."""
    stripped = label.strip()
    if not stripped or stripped in ("\\n", "\\t", "\\r"):  # labels show newlines and tabs escaped
        return "space"
    ch = stripped[0]
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        return "uppercase" if ch.isupper() else "lowercase"
    return "punctuation / other"


def plot_embeddings_pca(
    model_or_weights,
    labels: Sequence[str] | Any | None = None,
    ids: Sequence[int] | None = None,
    title: str | None = None,
    annotate_max: int = 200,
):
    """Scatter token embeddings (a GPT's ``wte`` or any (N, d) matrix) in their first two principal axes.

    ``labels``: one string per row, or a tokenizer (its ``token_strings`` name every row). ``ids`` picks
    which rows to show (for big vocabularies); points are coloured by the kind of character they start with.
    """
    weights = model_or_weights
    if hasattr(model_or_weights, "transformer"):
        weights = model_or_weights.transformer.wte.weight
    matrix = as_numpy(weights)
    if matrix.ndim != 2:
        raise ValueError(f"expected a model or an (N, d) embedding matrix, got shape {matrix.shape}")
    rows = list(range(matrix.shape[0])) if ids is None else [int(i) for i in ids]
    if any(not 0 <= i < matrix.shape[0] for i in rows):
        raise ValueError(f"ids must lie in [0, {matrix.shape[0]}) (the number of embedding rows)")
    if labels is None:
        names = [str(i) for i in rows]
    elif hasattr(labels, "token_strings"):
        names = list(labels.token_strings(rows))
    else:
        labels = list(labels)
        if len(labels) != matrix.shape[0]:
            raise ValueError(f"got {len(labels)} labels for {matrix.shape[0]} embedding rows; give one per row")
        names = [str(labels[i]) for i in rows]
    coords, ratio = pca_2d(matrix[rows])
    fig = new_figure(9, 7)
    ax = fig.add_subplot()
    cats = [token_category(n) for n in names]
    for cat, color in CATEGORY_COLORS.items():
        picked = [i for i, c in enumerate(cats) if c == cat]
        if picked:
            ax.scatter(coords[picked, 0], coords[picked, 1], s=30, color=color, alpha=0.75, label=cat)
    if len(rows) <= annotate_max:
        for (x, y), name in zip(coords, show_labels(names), strict=True):
            ax.annotate(name, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=FONT - 1)
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of the variance)", fontsize=FONT)
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of the variance)", fontsize=FONT)
    ax.set_title(title or f"token embeddings, {matrix.shape[1]}-D projected to 2-D", fontsize=FONT + 1)
    # outside the axes: with a few hundred points there is no empty corner to put it in
    ax.legend(fontsize=FONT - 2, title="first character", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


# ----------------------------------------------------------------------------------------- attention
def plot_attention_mask(T: int, labels: Sequence[str] | None = None):
    """The causal mask as a T x T grid: query i may look at keys 0..i (blue), never at later ones (grey)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive number of positions, got {T!r}")
    if labels is not None and len(labels) != T:
        raise ValueError(f"got {len(labels)} labels for T={T} positions")
    labels = list(labels) if labels is not None else [str(i) for i in range(T)]
    allowed = np.tril(np.ones((T, T), dtype=np.float32))
    side = min(9.0, 3.0 + 0.4 * T)
    fig = new_figure(side + 0.6, side + 0.4)
    ax = fig.add_subplot()
    attention_heatmap(ax, allowed * 0.6, labels, causal=True)
    if T <= 16:
        for i in range(T):
            for j in range(T):
                ax.text(
                    j,
                    i,
                    "✓" if j <= i else "✕",
                    ha="center",
                    va="center",
                    fontsize=FONT + 2 if T <= 8 else FONT - 2,
                    color="white" if j <= i else "#999999",
                )
    ax.set_title("causal mask: each token sees itself and the past\n(blue: allowed, grey: the future, masked)",
                 fontsize=FONT)  # fmt: skip
    return fig


def plot_attention_weights(weights, labels: Sequence[str] | None = None, title: str | None = None):
    """Heatmap of attention weights: (T, T) for one head, or (heads, T, T) for a grid of heads.

    Small matrices (T <= 12) also print each weight, for the by-hand example of notebook 03. Every panel
    keeps its token labels (thinned for long texts, see :func:`token_ticks`); one colour bar gives the scale.
    """
    w = as_numpy(weights)
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    if w.ndim not in (2, 3) or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected weights of shape (T, T) or (heads, T, T), got {w.shape}")
    t = w.shape[-1]
    if labels is not None and len(labels) != t:
        raise ValueError(f"got {len(labels)} labels for {t} positions")
    labels = list(labels) if labels is not None else [str(i) for i in range(t)]
    causal = bool(np.allclose(np.triu(w, k=1), 0.0))
    if w.ndim == 2:
        side = min(8.0, 3.0 + 0.3 * t)
        fig = new_figure(side + 2.4, side + 1.0)
        ax = fig.add_subplot()
        artist = attention_heatmap(ax, w, labels, title=title or "attention weights", causal=causal)
        weight_colorbar(fig, artist, ax=ax, shrink=0.8)
        if t <= 12:
            for i in range(t):
                for j in range(t):
                    if not causal or j <= i:
                        ax.text(
                            j,
                            i,
                            f"{w[i, j]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=FONT - 2,
                            color="white" if w[i, j] > 0.3 else "black",
                        )
        return fig
    heads = w.shape[0]
    # a few heads over a longer text get two big panels a row, so that their labels stay legible; many heads
    # (GPT-2 has 12) keep four a row, a little larger than for short texts, or the figure grows too tall
    wide = t > 12 and heads <= 4
    cols = min(heads, 2 if wide else 4)
    rows = math.ceil(heads / cols)
    panel = min(5.5, 2.5 + 0.12 * t) if wide else (3.3 if t <= 12 else 3.8)
    fig = new_figure(panel * cols + 1.6, panel * rows + 1.0)
    fig.suptitle(title or f"attention weights of {heads} heads", fontsize=FONT + 1)
    axes = [fig.add_subplot(rows, cols, h + 1) for h in range(heads)]
    for h, ax in enumerate(axes):
        artist = attention_heatmap(ax, w[h], labels, title=f"head {h}", causal=causal)
        if h + cols < heads:  # axis names under the lowest panel of a column and left of a row, ticks everywhere
            ax.set_xlabel("")
        if h % cols:
            ax.set_ylabel("")
    weight_colorbar(fig, artist, ax=axes, shrink=0.6)
    return fig


# ---------------------------------------------------------------------------------- sizes and compute
def human(n: float) -> str:
    """124439808 -> '124.4M'; 3.14e23 -> '3.14e+23' (counts a reader can compare at a glance)."""
    if n >= 1e15:
        return f"{n:.2e}"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


@dataclass
class SizeTable:
    """Rows of model sizes; shows as an HTML table in a notebook and as text in a terminal."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    COLUMNS = ("name", "layers", "d_model", "heads", "context", "vocab", "params", "non-embedding")

    def columns(self) -> list[str]:
        extra = [k for k in ("train FLOPs",) if self.rows and k in self.rows[0]]
        return list(self.COLUMNS) + extra

    def _cell(self, row: dict[str, Any], col: str) -> str:
        value = row[col]
        if col in ("params", "non-embedding"):
            return human(value)
        if col == "train FLOPs":
            return f"{value:.2e}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns())
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._cell(r, c))}</td>" for c in self.columns()) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cols = self.columns()
        cells = [cols] + [[self._cell(r, c) for c in cols] for r in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
        return "\n".join("  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)) for line in cells)


def _as_configs(configs_or_presets) -> list[tuple[str, GPTConfig]]:
    if isinstance(configs_or_presets, (str, GPTConfig)):
        configs_or_presets = [configs_or_presets]
    if isinstance(configs_or_presets, dict):
        items: Iterable = configs_or_presets.items()
    else:
        items = [(None, c) for c in configs_or_presets]
    out = []
    for name, item in items:
        if isinstance(item, str):
            config = GPTConfig.preset(item)
        elif isinstance(item, GPTConfig):
            config = item
        elif hasattr(item, "config") and isinstance(item.config, GPTConfig):
            config = item.config
        else:
            raise ValueError(f"expected a preset name, a GPTConfig or a GPT model, got {type(item).__name__}")
        out.append((name or config.name, config))
    return out


def model_size_table(configs_or_presets, n_tokens: float | None = None) -> SizeTable:
    """Parameter counts for preset names, GPTConfigs or models; with ``n_tokens``, training FLOPs ≈ 6·N·D.

    ``non-embedding`` leaves out the token and position tables (the count scaling laws use).
    """
    rows = []
    for name, config in _as_configs(configs_or_presets):
        total = count_params(config)
        row = dict(
            name=name,
            layers=config.n_layer,
            d_model=config.n_embd,
            heads=config.n_head,
            context=config.block_size,
            vocab=config.vocab_size,
            params=total,
        )
        row["non-embedding"] = total - (config.vocab_size + config.block_size) * config.n_embd
        if n_tokens is not None:
            row["train FLOPs"] = flops(total, n_tokens)
        rows.append(row)
    if not rows:
        raise ValueError("give at least one preset name, GPTConfig or model")
    return SizeTable(rows)
