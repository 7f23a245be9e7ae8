"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn as nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Switch ``model`` to eval mode (no dropout) for the block, then restore whatever mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
