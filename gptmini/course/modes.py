"""The speed switch, the device and the seed: what every notebook's first cell needs.

One environment variable, ``GPTMINI_MODE`` = ``fast`` | ``classroom`` | ``full`` (default ``classroom``),
picks how long things run; the cells are the same in every mode, only the numbers change.

Classroom mode on a CUDA GPU is its own **scale**, ``"gpu"``: the course's recipes train their GPU variant there
(bigger sizes: a 0.8M-parameter model leaves a GPU idle), checkpoints get a ``-gpu`` name, and ``expect`` does
not judge a GPU run against ranges measured on a CPU. The CPU sizes stay what they are.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch

from ..device import describe, get_device

MODES = ("fast", "classroom", "full")
T = TypeVar("T")

if TYPE_CHECKING:
    from ..config import GPTConfig


def mode() -> str:
    """The speed switch, checked so a typo is an error rather than a silent default."""
    value = os.environ.get("GPTMINI_MODE", "classroom").strip().lower()
    if value not in MODES:
        raise ValueError(f"GPTMINI_MODE={value!r} is not one of {', '.join(MODES)}; unset it or pick one of those")
    return value


#: The device :func:`setup` picked: by_mode, checkpoint_name and expect follow it (else cuda > mps > cpu).
_setup_device: torch.device | None = None
#: Each scale in words, for the one-line reports of :func:`describe_sizes` and :func:`gptmini.course.expect.expect`.
SCALES = {
    "fast": "fast mode",
    "classroom": "classroom mode",
    "gpu": "classroom mode on a CUDA GPU",
    "full": "full mode",
}


def _device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return _setup_device if _setup_device is not None else get_device()


def scale(device: str | torch.device | None = None) -> str:
    """Which sizes this run uses: the mode, except that classroom mode on a CUDA device is ``"gpu"``.

    ``device``: where the model trains (default: what :func:`setup` picked, else cuda > mps > cpu).
    Apple's MPS keeps the CPU sizes: the GPU sizes come from figures for CUDA GPUs (nanoGPT's, on an A100).
    """
    now = mode()
    return "gpu" if now == "classroom" and _device(device).type == "cuda" else now


def by_mode(fast: T, classroom: T, full: T | None = None) -> T:
    """The value for the current mode, e.g. ``n_samples = by_mode(fast=20, classroom=200, full=500)``.

    For how many examples to score or tokens to sample; ``full`` defaults to ``classroom``. Sizes, step counts
    and learning rates come from the recipes instead (:mod:`gptmini.course.recipes`), which also pick the
    bigger sizes on a CUDA GPU.
    """
    here = mode()
    if here == "fast":
        return fast
    return full if here == "full" and full is not None else classroom


def describe_shape(config: GPTConfig) -> str:
    """A model's sizes in one phrase: ``6 × 384, 6 heads, context 256, 10.8M parameters``."""
    from ..sizes import count_params

    return (
        f"{config.n_layer} × {config.n_embd}, {config.n_head} heads, context {config.block_size}, "
        f"{count_params(config) / 1e6:.1f}M parameters"
    )


_WHY = {
    "fast": "seconds, for tests: the model learns little",
    "classroom": "sizes that train in minutes on a laptop CPU (on a CUDA GPU classroom mode picks bigger ones)",
    "gpu": "GPU sizes, picked because this is a CUDA GPU: the CPU sizes are too small to keep it busy",
    "full": "full mode's sizes, for a long run",
}


def describe_sizes(config: GPTConfig, device: str | torch.device | None = None) -> str:
    """One line for a notebook: the mode, the device, the sizes picked and why.

    ``config``: the :class:`gptmini.GPTConfig` built from :func:`by_mode`'s choice; ``device`` as in :func:`scale`.
    """
    here = scale(device)
    return f"{mode()} mode on {describe(_device(device))}: {describe_shape(config)} ({_WHY[here]})"


def seed_everything(seed: int = 1337) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Setup:
    mode: str
    device: torch.device
    seed: int

    def __str__(self) -> str:
        sizes = " (GPU sizes)" if scale(self.device) == "gpu" else ""  # the recipes' GPU variants
        return f"gptmini course | mode: {self.mode}{sizes} | device: {describe(self.device)} | seed: {self.seed}"


def setup(seed: int = 1337, device: str | None = None) -> Setup:
    """Seed everything, pick the device (cuda > mps > cpu), and report the mode; call it in each first cell.

    The device is remembered, so that :func:`by_mode` picks the sizes for the device the cells train on.
    """
    global _setup_device
    seed_everything(seed)
    if mode() == "fast":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    info = Setup(mode=mode(), device=get_device(device), seed=seed)
    _setup_device = info.device
    print(info)
    return info
