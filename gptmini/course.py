"""What every notebook's first cell needs: the speed switch, the device, a seed, and where checkpoints live.

One environment variable, ``GPTMINI_MODE`` = ``fast`` | ``classroom`` | ``full`` (default ``classroom``),
picks how long things run; the cells are the same in every mode, only the numbers change.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from .device import describe, get_device

MODES = ("fast", "classroom", "full")
REPO_URL = "https://github.com/gptmini/gptmini"
T = TypeVar("T")


def mode() -> str:
    """The speed switch, checked so a typo is an error rather than a silent default."""
    value = os.environ.get("GPTMINI_MODE", "classroom").strip().lower()
    if value not in MODES:
        raise ValueError(f"GPTMINI_MODE={value!r} is not one of {', '.join(MODES)}; unset it or pick one of those")
    return value


def by_mode(fast: T, classroom: T, full: T | None = None) -> T:
    """The value for the current mode, e.g. ``steps = by_mode(fast=30, classroom=2000, full=5000)``."""
    choice = {"fast": fast, "classroom": classroom, "full": classroom if full is None else full}
    return choice[mode()]


def home() -> Path:
    """Where checkpoints and caches go: ``$GPTMINI_HOME`` or ``~/.cache/gptmini``."""
    return Path(os.environ.get("GPTMINI_HOME", Path.home() / ".cache" / "gptmini")).expanduser()


def checkpoint_dir(name: str) -> Path:
    """The known place of a course checkpoint, e.g. ``checkpoint_dir("gpt1-shakespeare")`` (notebook 05)."""
    return home() / "checkpoints" / name


def in_colab() -> bool:
    return "google.colab" in sys.modules


def seed_everything(seed: int = 1337) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Setup:
    mode: str
    device: torch.device
    seed: int

    def __str__(self) -> str:
        return f"gptmini course | mode: {self.mode} | device: {describe(self.device)} | seed: {self.seed}"


def setup(seed: int = 1337, device: str | None = None) -> Setup:
    """Seed everything, pick the device (cuda > mps > cpu), and report the mode; call it in each first cell."""
    seed_everything(seed)
    if mode() == "fast":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    info = Setup(mode=mode(), device=get_device(device), seed=seed)
    print(info)
    return info
