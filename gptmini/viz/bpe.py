"""The BPE merge explorer: replay a trained tokenizer's merges one at a time on a text of your choice.

At merge 0 every byte is a token; each step glues one pair (the most frequent one in the training text)
into a new token, and the slider shows how the text's tokens change and how the token count falls.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ._render import FONT, HIGHLIGHT, error_html, image_widget, new_figure, to_png

CHIP_COLORS = ("#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#ede9fe")
CURVE_POINTS = 40


def _chip(label: str, color: str, new: bool) -> str:
    border = f"2px solid {HIGHLIGHT}" if new else "1px solid #bbb"
    weight = "bold" if new else "normal"
    text = html.escape(label.replace(" ", "␣")) or "∅"
    return (
        f"<span style='display:inline-block;background:{color};border:{border};border-radius:4px;"
        f"padding:1px 4px;margin:2px 1px;font-family:monospace;font-size:15px;font-weight:{weight};"
        f"white-space:pre'>{text}</span>"
    )


class BPEExplorer(widgets.VBox):
    """A slider over the merge history and the text's tokens at that step.

    Public state: ``merge_step`` (the slider: how many merges are applied), ``text_box``,
    :meth:`current_tokens` (ids at this step), :meth:`current_merge` (the pair merged at this step).
    """

    def __init__(self, tokenizer, text: str, step: int = 0) -> None:
        history = getattr(tokenizer, "history", None)
        if history is None:
            raise ValueError(
                f"bpe_explorer needs a trained BPETokenizer (one with a merge history), got "
                f"{type(tokenizer).__name__}; train one with BPETokenizer().train(text, vocab_size=...)."
            )
        if not history:
            raise ValueError("This BPETokenizer has no merges yet; train it first (vocab_size > 256).")
        self.tokenizer = tokenizer
        self.history = list(history)
        self._counts: dict[int, int] = {}
        n = len(self.history)
        if not 0 <= step <= n:
            raise ValueError(f"step must be between 0 and {n} (the number of merges), got {step}")
        self.merge_step = widgets.IntSlider(
            step, min=0, max=n, description="merges", layout=widgets.Layout(width="95%")
        )
        self.text_box = widgets.Textarea(
            text, continuous_update=False, layout=widgets.Layout(width="95%", height="70px")
        )
        self.merge_info = widgets.HTML()
        self.tokens_html = widgets.HTML(layout=widgets.Layout(width="95%"))
        self.image = image_widget()
        super().__init__([self.text_box, self.merge_step, self.merge_info, self.tokens_html, self.image])
        self.merge_step.observe(lambda _change: self.render(), names="value")
        self.text_box.observe(lambda _change: self._new_text(), names="value")
        self._new_text()
        if self._error:
            raise ValueError(self._error)

    @property
    def text(self) -> str:
        return self.text_box.value

    def current_tokens(self) -> list[int]:
        """The text's ids using only the first ``merge_step`` merges."""
        return list(self.tokenizer.encode(self.text, max_merges=self.merge_step.value))

    def current_merge(self) -> tuple[tuple[int, int], int, int] | None:
        """``(pair, new_id, count)`` of the merge the slider is on, or None at step 0 (bytes only)."""
        k = self.merge_step.value
        return self.history[k - 1] if k > 0 else None

    def token_count(self, k: int) -> int:
        if k not in self._counts:
            self._counts[k] = len(self.tokenizer.encode(self.text, max_merges=k))
        return self._counts[k]

    def _new_text(self) -> None:
        self._counts = {}
        self._error = None
        try:
            if not self.text:
                raise ValueError("Type a text to tokenise.")
            self.token_count(0)
        except ValueError as err:
            self._error = str(err)
            self.merge_info.value = error_html(str(err))
            return
        self.render()

    def render(self) -> None:
        if self._error:
            return
        k = self.merge_step.value
        ids = self.current_tokens()
        labels = self.tokenizer.token_strings(ids)
        merge = self.current_merge()
        n = len(self.history)
        if merge is None:
            info = f"<b>merge 0 of {n}</b>: no merges yet, every byte is a token"
            new_id = None
        else:
            (a, b), new_id, count = merge
            left, right, joined = self.tokenizer.token_strings([a, b, new_id])
            hits = sum(1 for i in ids if i == new_id)
            info = (
                f"<b>merge {k} of {n}</b>: {html.escape(repr(left))} + {html.escape(repr(right))} → "
                f"<b>{html.escape(repr(joined))}</b> (id {new_id}), seen {count:,} times in the training text; "
                + (f"{hits} time(s) in this text (outlined in red)" if hits else "not in this text")
            )
        nbytes = self.token_count(0)
        info += f"<br>{len(ids)} tokens for {nbytes} bytes ({nbytes / len(ids):.2f} bytes per token)"
        self.merge_info.value = info
        chips = [
            _chip(label, CHIP_COLORS[i % len(CHIP_COLORS)], i_id == new_id)
            for i, (i_id, label) in enumerate(zip(ids, labels, strict=True))
        ]
        self.tokens_html.value = "<div style='line-height:1.9'>" + "".join(chips) + "</div>"
        self.image.value = to_png(self.figure())

    def figure(self):
        """Token count of the text against the number of merges, with the slider's position marked."""
        n = len(self.history)
        k = self.merge_step.value
        grid = sorted(set(np.linspace(0, n, min(n + 1, CURVE_POINTS)).round().astype(int).tolist()) | {k})
        counts = [self.token_count(step) for step in grid]
        fig = new_figure(8, 3, layout=None)
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.19, top=0.88)
        ax = fig.add_subplot()
        ax.plot(grid, counts, color="C0")
        here = self.token_count(k)
        ax.plot([k], [here], "o", color=HIGHLIGHT, markersize=9)
        left = k <= n / 2  # the curve falls: free space is above-right of the point early, below-left late
        ax.annotate(f"{here:,} tokens after {k:,} merges", (k, here), xytext=(10, 10) if left else (-10, -12),
                    textcoords="offset points", color=HIGHLIGHT, fontsize=FONT - 1, ha="left" if left else "right",
                    va="bottom" if left else "top")  # fmt: skip
        ax.set_xlabel(f"merges applied (of {n:,})", fontsize=FONT)
        ax.set_ylabel("tokens in the text (count)", fontsize=FONT)
        ax.set_title("each merge can only shorten the text", fontsize=FONT)
        ax.margins(y=0.15)  # room above the curve for the note
        ax.grid(alpha=0.3)
        return fig


def bpe_explorer(tokenizer, text: str, step: int = 0) -> BPEExplorer:
    """Step through ``tokenizer``'s merges (a trained :class:`~gptmini.tokenizers.BPETokenizer`) on ``text``."""
    return BPEExplorer(tokenizer, text, step=step)
