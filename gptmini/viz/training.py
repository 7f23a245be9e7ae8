"""A loss plot that redraws itself while a model trains in a notebook cell.

Pass a :class:`LivePlot` to the trainer as a callback; it receives the trainer's records (dicts with
``kind``, ``step``, ``train_loss``, ``val_loss``, ``lr``, ``tokens_per_sec``). Widget updates travel to the
page while the cell is still running, which a plain matplotlib figure cannot do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from ._render import FONT, image_widget, new_figure, to_png

KINDS = ("train", "eval")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _records_of(source) -> list[dict[str, Any]]:
    records = getattr(source, "records", source)  # a History, a LivePlot, or a plain list of dicts
    return [dict(r) for r in records]


def draw_losses(ax, records: Iterable[dict[str, Any]], title: str | None = None, log_y: bool = False) -> None:
    """Train records as a thin line, evaluations as markers: the same picture during and after training."""
    records = list(records)
    train = [r for r in records if r["kind"] == "train" and r.get("train_loss") is not None]
    evals = [r for r in records if r["kind"] == "eval"]
    if train:
        ax.plot(
            [r["step"] for r in train],
            [r["train_loss"] for r in train],
            lw=1.2,
            alpha=0.6,
            color="C0",
            label="train (batches)",
        )
    ev_train = [r for r in evals if r.get("train_loss") is not None]
    if ev_train:
        ax.plot(
            [r["step"] for r in ev_train], [r["train_loss"] for r in ev_train], "o-", color="C0", label="train (eval)"
        )
    ev_val = [r for r in evals if r.get("val_loss") is not None]
    if ev_val:
        ax.plot([r["step"] for r in ev_val], [r["val_loss"] for r in ev_val], "s-", color="C1", label="validation")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step", fontsize=FONT)
    ax.set_ylabel("loss (nats per token)", fontsize=FONT)
    ax.set_title(title or "training loss", fontsize=FONT + 1)
    ax.grid(alpha=0.3)
    if train or evals:  # outside, right of the axes: a curve of many points leaves no corner free for it
        ax.legend(fontsize=FONT - 1, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def plot_losses(records_or_history, title: str | None = None, log_y: bool = False):
    """A plain loss figure from a trainer's History, a LivePlot, or a list of record dicts."""
    fig = new_figure(9, 4.5, layout=None)  # fixed margins: a live plot redraws often, layout engines are slow
    fig.subplots_adjust(left=0.09, right=0.80, bottom=0.13, top=0.92)  # room on the right for the legend
    draw_losses(fig.add_subplot(), _records_of(records_or_history), title=title, log_y=log_y)
    return fig


class LivePlot:
    """A training callback: ``LivePlot()(record)`` stores the record and redraws at most every ``every`` s.

    A redraw costs about a tenth of a second (a figure rendered to PNG), so the next one also waits 19 times as
    long as the last one took: drawing takes at most 5 % of the training's time (``every=0``: every record).
    In a notebook it shows itself on the first record (``show=False`` to place it yourself with
    ``display(live.widget)``); elsewhere it only collects records. :meth:`figure` is the plain plot after.
    """

    def __init__(self, every: float = 1.0, title: str | None = None, log_y: bool = False, show: bool | None = None):
        if every < 0:
            raise ValueError(f"every must be >= 0 seconds, got {every}")
        self.every, self.title, self.log_y = every, title, log_y
        self.show = _in_notebook() if show is None else show
        self.records: list[dict[str, Any]] = []
        self.image = image_widget()
        self.status = widgets.HTML("waiting for the first training record…")
        self.widget = widgets.VBox([self.status, self.image])
        self.draws = 0
        self._shown = False
        self._next_draw = -math.inf

    def __call__(self, record: dict[str, Any]) -> None:
        if not isinstance(record, dict):
            raise ValueError(f"LivePlot expects a record dict, got {type(record).__name__}")
        missing = [key for key in ("kind", "step") if key not in record]
        if missing:
            raise ValueError(f"a training record needs the keys 'kind' and 'step'; missing {missing}")
        if record["kind"] not in KINDS:
            raise ValueError(f"record kind must be one of {KINDS}, got {record['kind']!r}")
        self.records.append(dict(record))
        self.status.value = self._summary()
        if self.show and not self._shown:
            from IPython.display import display

            display(self.widget)
            self._shown = True
        if record["kind"] == "eval" or time.monotonic() >= self._next_draw:
            self.draw()

    def draw(self) -> None:
        """Redraw now (the trainer's last records may arrive faster than ``every``: call this at the end)."""
        started = time.monotonic()
        self.image.value = to_png(self.figure())
        self.draws += 1
        now = time.monotonic()
        self._next_draw = now + (max(self.every, 19 * (now - started)) if self.every else 0.0)

    finish = draw

    def figure(self):
        """The loss curves so far as a matplotlib figure."""
        return plot_losses(self.records, title=self.title, log_y=self.log_y)

    def _summary(self) -> str:
        r = self.records[-1]
        parts = [f"step {r['step']}"]
        last_train = next((x for x in reversed(self.records) if x.get("train_loss") is not None), None)
        last_val = next((x for x in reversed(self.records) if x.get("val_loss") is not None), None)
        if last_train:
            parts.append(f"train loss {last_train['train_loss']:.4f}")
        if last_val:
            parts.append(f"val loss {last_val['val_loss']:.4f}")
        if r.get("lr") is not None:
            parts.append(f"lr {r['lr']:.2e}")
        if r.get("tokens_per_sec"):
            parts.append(f"{r['tokens_per_sec']:,.0f} tokens/s")
        return " · ".join(parts)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._shown = True
        display(self.widget)
