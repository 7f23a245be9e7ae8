"""Activation patching: which part of the model carries the difference between a clean and a corrupted text?

Run the model on a *clean* prompt (e.g. a random sequence repeated twice) and on a *corrupted* one of the same
length (the same, with the first copy changed, so nothing can be copied). Then run the corrupted prompt again
with one activation replaced by its value from the clean run: one head's output ``z`` (a replacing hook on
``attn.hook_z``), or the residual stream at one (depth, position). The **recovered fraction**

    (metric(patched) - metric(corrupted)) / (metric(clean) - metric(corrupted))

is 1 when that one activation brings the clean behaviour back, 0 when it does nothing. Patching the whole
residual stream at any depth recovers the clean run exactly (it is the clean run from there on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..utils import eval_mode
from .capture import run_with_cache

Metric = Callable[[torch.Tensor], torch.Tensor]  # logits (B, T, vocab) -> a number, higher = more "clean"


def logit_diff_metric(right: int | torch.Tensor, wrong: int | torch.Tensor, pos: int = -1) -> Metric:
    """``logit[right] - logit[wrong]`` at position ``pos``, averaged over the batch."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        r = torch.as_tensor(right, device=logits.device).expand(logits.shape[0])
        w = torch.as_tensor(wrong, device=logits.device).expand(logits.shape[0])
        return (logits[rows, pos, r] - logits[rows, pos, w]).mean()

    return metric


def negative_loss_metric(targets: torch.Tensor, start: int = 0) -> Metric:
    """Minus the mean next-token loss of ``targets`` (B, T) from position ``start`` on (higher = better).

    With the clean text as ``targets`` and ``start`` at its second copy, it asks how well the model copies.
    """

    def metric(logits: torch.Tensor) -> torch.Tensor:
        pred = logits[:, start:-1].transpose(1, 2)
        return -F.cross_entropy(pred, targets[:, start + 1 :].to(logits.device))

    return metric


@dataclass
class Patching:
    """What patching found: ``recovered`` (a grid: layers x heads, or depths x positions) and its ingredients."""

    recovered: torch.Tensor  # (metric(patched) - corrupted) / (clean - corrupted)
    patched: torch.Tensor  # metric(patched), same grid
    clean: float
    corrupted: float


def _check_pair(clean: torch.Tensor, corrupted: torch.Tensor) -> None:
    if clean.shape != corrupted.shape:
        raise ValueError(
            f"clean {tuple(clean.shape)} and corrupted {tuple(corrupted.shape)} must have the same shape: "
            "patching swaps activations position by position; make the two texts the same number of tokens"
        )


def _recover(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, runs) -> Patching:
    """Run every patched forward pass in ``runs`` (a grid of callables) and turn the metric into fractions."""
    with torch.no_grad(), eval_mode(model):
        m_clean = float(metric(model(clean)[0]))
        m_corrupt = float(metric(model(corrupted)[0]))
        patched = torch.tensor([[float(metric(run())) for run in row] for row in runs], dtype=torch.float64)
    gap = m_clean - m_corrupt
    recovered = (patched - m_corrupt) / gap if gap != 0 else torch.full_like(patched, float("nan"))
    return Patching(recovered, patched, m_clean, m_corrupt)


def patch_heads(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric) -> Patching:
    """For every (layer, head): the corrupted run with that head's output ``z`` (all positions) from the clean run.

    ``recovered`` is (layers, heads).
    """
    _check_pair(clean, corrupted)
    _, cache = run_with_cache(model, clean, patterns=False)
    blocks = model.transformer.h

    def run(layer: int, head: int) -> Callable[[], torch.Tensor]:
        def swap(_module, _inputs, z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            z[:, head] = cache.z[layer][:, head].to(z.dtype)
            return z

        def go() -> torch.Tensor:
            handle = blocks[layer].attn.hook_z.register_forward_hook(swap)
            try:
                return model(corrupted)[0]
            finally:
                handle.remove()

        return go

    cfg = model.config
    runs = [[run(layer, head) for head in range(cfg.n_head)] for layer in range(cfg.n_layer)]
    return _recover(model, clean, corrupted, metric, runs)


def patch_residual(
    model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, positions: list[int] | None = None
) -> Patching:
    """For every depth d and position t: the corrupted run with the residual stream at (d, t) from the clean run.

    Depth 0 is the embedding h0, depth l + 1 the output of block l (as :meth:`Cache.stream` numbers them);
    ``recovered`` is (layers + 1, positions). ``positions=None`` patches each position on its own; a list of
    lists (e.g. ``[[0, 1, 2]]``) patches several positions at once.
    """
    _check_pair(clean, corrupted)
    _, cache = run_with_cache(model, clean, patterns=False)
    stream = cache.stream()
    points = [model.transformer.drop, *model.transformer.h]  # their outputs are the stream at depth 0, 1, …
    groups = [[t] for t in range(clean.shape[1])] if positions is None else [list(p) for p in positions]

    def run(depth: int, group: list[int]) -> Callable[[], torch.Tensor]:
        def swap(_module, _inputs, out: torch.Tensor) -> torch.Tensor:
            out = out.clone()
            out[:, group] = stream[depth][:, group].to(out.dtype)
            return out

        def go() -> torch.Tensor:
            handle = points[depth].register_forward_hook(swap)
            try:
                return model(corrupted)[0]
            finally:
                handle.remove()

        return go

    runs = [[run(depth, group) for group in groups] for depth in range(len(stream))]
    return _recover(model, clean, corrupted, metric, runs)


def patch_everything(model, clean: torch.Tensor, corrupted: torch.Tensor, depth: int = 0) -> torch.Tensor:
    """The corrupted run's logits with the whole residual stream at ``depth`` taken from the clean run.

    It *is* the clean run from that depth on, so the logits equal the clean logits: the check that the
    patching hooks put values in the right place.
    """
    _check_pair(clean, corrupted)
    _, cache = run_with_cache(model, clean, patterns=False)
    point = [model.transformer.drop, *model.transformer.h][depth]
    value = cache.stream()[depth]
    handle = point.register_forward_hook(lambda _m, _i, out: value.to(out.dtype).clone())
    try:
        with torch.no_grad(), eval_mode(model):
            return model(corrupted)[0]
    finally:
        handle.remove()
