"""The sampling explorer: see the next-token distribution before and after temperature, top-k and top-p.

Each filter is applied with the very functions :func:`gptmini.generate.generate` uses, one at a time, so
what the chart shows is exactly what gets sampled. The buttons sample from it and append to the text.
"""

from __future__ import annotations

import html
from typing import NamedTuple

import ipywidgets as widgets
import numpy as np
import torch

from ..generate import apply_temperature, sample_next, top_k_filter, top_p_filter
from ..utils import eval_mode
from ._render import FONT, HIGHLIGHT, axes_at, error_html, image_widget, new_figure, show_labels, text_inches, to_png

KEPT_COLOR = "#1f77b4"
FINAL_COLOR = "#2ca02c"


class Distribution(NamedTuple):
    """The model's next-token probabilities (``before``), what is sampled from (``after``), the kept ids."""

    before: np.ndarray
    after: np.ndarray
    kept: set[int]


class Stage(NamedTuple):
    title: str
    probs: np.ndarray
    kept: np.ndarray  # bool mask over the vocabulary


def filter_stages(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> list[Stage]:
    """The distribution after each step of decoding: model, temperature, top-k, top-p.

    ``temperature=0`` means greedy decoding (only the most likely token survives), as in ``generate``.
    """
    logits = logits.detach().to("cpu", torch.float32).reshape(-1)
    stages = [Stage("model (T = 1)", logits.softmax(-1).numpy(), np.ones(logits.numel(), dtype=bool))]
    if temperature == 0:
        greedy = torch.full_like(logits, float("-inf"))
        greedy[logits.argmax()] = 0.0
        steps = [("greedy (T = 0)", greedy), ("top-k: greedy", greedy), ("top-p: greedy", greedy)]
    else:
        warm = apply_temperature(logits, temperature)
        k_cut = top_k_filter(warm, top_k)
        p_cut = top_p_filter(k_cut, top_p)
        steps = [
            (f"temperature {temperature:.2f}", warm),
            ("top-k off" if top_k is None else f"top-k = {top_k}", k_cut),
            ("top-p off" if top_p is None else f"top-p = {top_p:.2f}", p_cut),
        ]
    for title, values in steps:
        stages.append(Stage(title, values.softmax(-1).numpy(), torch.isfinite(values).numpy()))
    return stages


class SamplingExplorer(widgets.VBox):
    """Temperature / top-k / top-p sliders, the distributions they produce, and buttons that sample.

    Public state: the controls ``temperature``, ``top_k`` (0 = off), ``top_p`` (1 = off), ``seed``,
    ``n_tokens``, ``text_area``, the buttons; ``text`` (the current text), :meth:`distribution`,
    :meth:`sample_next` and :meth:`generate` (what the buttons call).
    """

    def __init__(self, model, tokenizer, prompt: str, seed: int = 0, show_top: int = 20) -> None:
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("sampling_explorer needs a non-empty prompt to continue.")
        self.model, self.tokenizer, self.prompt, self.show_top = model, tokenizer, prompt, show_top
        vocab = model.config.vocab_size
        self.ids: list[int] = []
        self._logits: torch.Tensor | None = None
        self._quiet = False
        self.last_sampled: int | None = None

        slider = dict(continuous_update=False, style={"description_width": "initial"})
        self.temperature = widgets.FloatSlider(1.0, min=0.0, max=2.0, step=0.05, description="temperature", **slider)
        self.top_k = widgets.IntSlider(0, min=0, max=min(vocab, 100), description="top-k (0 = off)", **slider)
        self.top_p = widgets.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p (1 = off)", **slider)
        self.seed = widgets.IntText(seed, description="seed", layout=widgets.Layout(width="160px"))
        self.n_tokens = widgets.IntSlider(20, min=1, max=200, description="N", continuous_update=False)
        self.sample_button = widgets.Button(
            description="sample next token", button_style="primary", icon="play", layout=widgets.Layout(width="190px")
        )
        self.generate_button = widgets.Button(description="generate N", button_style="success", icon="forward")
        self.reset_button = widgets.Button(description="reset", icon="undo")
        self.text_area = widgets.Textarea(
            prompt, continuous_update=False, layout=widgets.Layout(width="95%", height="90px")
        )
        self.status = widgets.HTML()
        self.image = image_widget()
        super().__init__(
            [
                self.text_area,
                widgets.HBox([self.temperature, self.top_k, self.top_p]),
                widgets.HBox([self.sample_button, self.n_tokens, self.generate_button, self.seed, self.reset_button]),
                self.status,
                self.image,
            ]
        )
        for control in (self.temperature, self.top_k, self.top_p):
            control.observe(lambda _change: self.render(), names="value")
        self.seed.observe(lambda _change: self.reseed(), names="value")
        self.text_area.observe(self._on_edit, names="value")
        self.sample_button.on_click(lambda _button: self.sample_next())
        self.generate_button.on_click(lambda _button: self.generate())
        self.reset_button.on_click(lambda _button: self.reset())
        self.reseed()
        self._set_ids(self._encode(prompt))

    # ------------------------------------------------------------------ settings
    @property
    def text(self) -> str:
        """The prompt plus everything sampled so far (editable in the text box)."""
        return self.text_area.value

    def settings(self) -> tuple[float, int | None, float | None]:
        """(temperature, top_k or None, top_p or None) as ``generate`` takes them."""
        k = int(self.top_k.value)
        p = float(self.top_p.value)
        return float(self.temperature.value), (k if k > 0 else None), (p if p < 1.0 else None)

    def reseed(self) -> None:
        """Start the random stream again from the seed: same seed + same clicks = same text."""
        self._generator = torch.Generator().manual_seed(int(self.seed.value))

    def reset(self) -> None:
        """Back to the prompt, with a fresh random stream from the seed."""
        self.reseed()
        self.last_sampled = None
        self._set_ids(self._encode(self.prompt))

    # ------------------------------------------------------------------ model
    def _encode(self, text: str) -> list[int]:
        ids = list(self.tokenizer.encode(text))
        if not ids:
            raise ValueError("The text has no tokens; type something to continue.")
        return ids

    def _set_ids(self, ids: list[int], draw: bool = True) -> None:
        self.ids = ids
        window = torch.tensor([ids[-self.model.config.block_size :]], dtype=torch.long, device=self.model.device)
        with eval_mode(self.model), torch.no_grad():
            logits, _ = self.model(window)
        self._logits = logits[0, -1].detach().to("cpu", torch.float32)
        self._show_text(self.tokenizer.decode(ids))
        if draw:
            self.render()

    def _show_text(self, text: str) -> None:
        self._quiet = True
        try:
            self.text_area.value = text
        finally:
            self._quiet = False

    def _on_edit(self, change) -> None:
        if self._quiet:
            return
        try:
            self._set_ids(self._encode(change["new"]))
        except ValueError as err:
            self.status.value = error_html(str(err))

    def stages(self) -> list[Stage]:
        return filter_stages(self._logits, *self.settings())

    def distribution(self) -> Distribution:
        """Next-token probabilities before any filter, after all of them, and the set of ids still allowed."""
        stages = self.stages()
        return Distribution(stages[0].probs, stages[-1].probs, {int(i) for i in np.flatnonzero(stages[-1].kept)})

    def sample_next(self, draw: bool = True) -> int:
        """Draw one token from the filtered distribution shown, append it, and return its id."""
        temperature, k, p = self.settings()
        token = int(sample_next(self._logits[None], temperature, k, p, generator=self._generator)[0, 0])
        self.last_sampled = token
        self._set_ids(self.ids + [token], draw=draw)
        return token

    def generate(self, n: int | None = None) -> list[int]:
        """Append ``n`` tokens (default: the N slider), one at a time so the text grows on screen."""
        n = int(self.n_tokens.value if n is None else n)
        if n < 0:
            raise ValueError(f"n must be >= 0 tokens, got {n}")
        new = []
        self.generate_button.disabled = self.sample_button.disabled = True
        try:
            for _ in range(n):  # the chart is redrawn once at the end: drawing is slower than sampling
                new.append(self.sample_next(draw=False))
                if self.tokenizer.eos_token_id is not None and new[-1] == self.tokenizer.eos_token_id:
                    break
        finally:
            self.generate_button.disabled = self.sample_button.disabled = False
            self.render()
        return new

    # ------------------------------------------------------------------ drawing
    def figure(self):
        """Four bar charts side by side, one per decoding step, for the most likely tokens."""
        stages = self.stages()
        order = np.argsort(-stages[0].probs, kind="stable")[: self.show_top]
        labels = show_labels(self.tokenizer.token_strings([int(i) for i in order]))
        y = np.arange(len(order))
        margin = text_inches(labels, FONT - 1) + 0.55
        panel, gap, plot_h = 2.75, 0.3, max(2.6, 0.28 * len(order))
        fig = new_figure(margin + len(stages) * (panel + gap) + 0.2, plot_h + 1.45, layout=None)
        axes = []
        for n in range(len(stages)):
            share = {"sharey": axes[0]} if axes else {}
            axes.append(axes_at(fig, margin + n * (panel + gap), 0.7, panel, plot_h, **share))
            if n:
                axes[-1].tick_params(labelleft=False)
        for n, (ax, stage) in enumerate(zip(axes, stages, strict=True)):
            final = n == len(stages) - 1
            kept = stage.kept[order]
            probs = stage.probs[order]
            colors = [(FINAL_COLOR if final else KEPT_COLOR) if keep else "#cccccc" for keep in kept]
            ax.barh(y, probs, color=colors)
            removed = np.flatnonzero(~kept)
            ax.scatter(np.zeros(len(removed)), y[removed], marker="x", color=HIGHLIGHT, s=30, zorder=3, clip_on=False)
            if final:
                for yi in np.flatnonzero(kept):
                    ax.text(probs[yi], y[yi], f" {probs[yi]:.2f}", va="center", fontsize=FONT - 3)
            ax.set_title(stage.title + ("\n(sampled from)" if final else ""), fontsize=FONT)
            # each panel has its own scale: a near-uniform distribution (an untrained model) stays visible
            ax.set_xlim(0, max(1e-9, float(probs.max()) * (1.25 if final else 1.1)))
            ax.tick_params(axis="x", labelsize=FONT - 3)
            ax.set_xlabel("probability (0 to 1)", fontsize=FONT - 2)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(y, labels, fontsize=FONT - 1)
        axes[0].invert_yaxis()
        axes[0].set_ylabel(f"top {len(order)} next tokens (by the model)", fontsize=FONT - 1)
        return fig

    def render(self) -> None:
        if self._logits is None:
            return
        dist = self.distribution()
        self.image.value = to_png(self.figure())
        mass = float(dist.before[sorted(dist.kept)].sum())
        last = ""
        if self.last_sampled is not None:
            label = self.tokenizer.token_strings([self.last_sampled])[0]
            last = f" · last sampled: <b>{html.escape(repr(label))}</b>"
        self.status.value = (
            f"{len(self.ids)} tokens · kept {len(dist.kept)} of {len(dist.before)} tokens "
            f"({mass:.1%} of the model's probability){last}"
        )


def sampling_explorer(model, tokenizer, prompt: str, seed: int = 0, show_top: int = 20) -> SamplingExplorer:
    """Play with temperature, top-k and top-p on ``model``'s next-token distribution after ``prompt``."""
    return SamplingExplorer(model, tokenizer, prompt, seed=seed, show_top=show_top)
