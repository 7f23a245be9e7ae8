"""The optimiser and the learning-rate schedule, shared by pretraining and fine-tuning.

Both loops use AdamW with one weight-decay rule (:func:`configure_optimizer`) and one schedule
(:func:`get_lr`): a linear warm-up, then a decay to ``min_lr`` (cosine for pretraining, linear for
GPT-1's fine-tuning).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn as nn

Decay = Literal["cosine", "linear"]


def get_lr(
    step: int,
    *,
    learning_rate: float,
    warmup_iters: int,
    decay_iters: int,
    min_lr: float = 0.0,
    decay: Decay = "cosine",
) -> float:
    """Learning rate for optimizer update ``step`` (0-based): warm up linearly, decay, then stay at ``min_lr``.

    Warm-up matters most for post-LN models (GPT-1), whose early gradients are large: GPT-1 warmed up
    linearly over 2,000 updates, then annealed with a cosine; its fine-tuning decayed linearly instead.
    """
    if step < warmup_iters:
        return learning_rate * (step + 1) / warmup_iters
    if step >= decay_iters:
        return min_lr
    progress = (step - warmup_iters) / max(1, decay_iters - warmup_iters)  # 0 -> 1
    if decay == "cosine":
        remaining = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif decay == "linear":
        remaining = 1.0 - progress
    else:
        raise ValueError(f"decay must be 'cosine' or 'linear', got {decay!r}")
    return min_lr + remaining * (learning_rate - min_lr)


def param_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict[str, Any]], list[str]]:
    """AdamW groups: decay every matrix (>= 2-D), leave biases and LayerNorm gains alone.

    This is GPT-1's rule ("L2 on all non bias or gain weights"): the decayed weights are the Linear
    matrices and the token/position tables (the token table is also the tied output matrix). Biases and
    LayerNorm gains only shift or scale a feature; pulling them toward 0 would shrink signals rather than
    simplify what the model has learned, and they are too few to overfit. Returns (groups, parameter names
    in the optimizer's order), the names being what a checkpoint stores optimizer state under.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # a tied weight is listed once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append((name, p))
    groups = [
        {"params": [p for _, p in decay], "weight_decay": weight_decay},
        {"params": [p for _, p in no_decay], "weight_decay": 0.0},
    ]
    return groups, [n for n, _ in decay] + [n for n, _ in no_decay]


def configure_optimizer(
    model: nn.Module,
    *,
    weight_decay: float,
    learning_rate: float,
    betas: tuple[float, float] = (0.9, 0.99),
    device: str | torch.device | None = None,
) -> torch.optim.AdamW:
    """AdamW over ``model`` with :func:`param_groups`' decay rule.

    On a CPU or a CUDA GPU the update runs as one fused kernel per group instead of a dozen small operations per
    weight: on a CPU that is about 3x less optimizer time (2 of a 60 ms step for the 4 x 128 classroom model).
    """
    groups, _ = param_groups(model, weight_decay)
    fused = device is not None and torch.device(device).type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=learning_rate, betas=tuple(betas), **({"fused": True} if fused else {}))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Use ``lr`` for the next update of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
