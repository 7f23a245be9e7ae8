"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
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


def pad_right(rows: Sequence[Sequence[int]], value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id rows of different lengths as one (N, T) ``long`` tensor, padded on the right with ``value``.

    Returns (ids, lengths). Right padding never changes a causal model's states at the real tokens,
    because a position only attends to the ones before it.
    """
    if not rows:
        raise ValueError("no rows to pad")
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    ids = torch.full((len(rows), int(lengths.max())), value, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return ids, lengths


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside ``torch.compile`` (``_orig_mod``) and DDP / DataParallel (``module``) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner
