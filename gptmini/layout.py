"""How the weight matrices lie in memory: the same numbers, stored for decoding on a CPU or for training.

Decoding one token multiplies every weight matrix by a single vector, so its speed is how fast the matrices
stream from memory. ``nn.Linear`` keeps a weight as (out, in), row by row, and computes ``x @ W.T``. On the
CPU builds of PyTorch (Intel MKL), that matrix-vector product streams a (out, in) matrix more slowly than
one stored the other way round, column by column: the (in, out) layout of GPT-2's own ``Conv1D``. Storing
each weight column by column changes no number of the model, no name and no shape, only the strides.

Measured with ``bench/generate.py`` (GPT-2 124M shape, batch 1, float32): see the README. Batches of 8 and
bfloat16 gain nothing measurable, and training prefers row-major weights, so the switch is explicit:
``for_decoding(model)`` before a long generation on a CPU, ``for_training(model)`` to undo it.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _linear_weights(model: nn.Module) -> list[nn.Parameter]:
    """Every ``nn.Linear`` weight once (the output layer shares its weight with the token embedding)."""
    seen: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            seen.setdefault(id(module.weight), module.weight)
    return list(seen.values())


def is_column_major(weight: torch.Tensor) -> bool:
    """True when a (out, in) matrix is stored column by column, i.e. its transpose is contiguous."""
    return weight.dim() == 2 and weight.t().is_contiguous() and not weight.is_contiguous()


@torch.no_grad()
def for_decoding(model: nn.Module) -> nn.Module:
    """Store each linear weight column by column (in place; the same parameters, values and names).

    Outputs can differ from the row-major model by float rounding only (a different summation order);
    greedy decoding gives the same tokens in the tests. Returns the model, so ``for_decoding(model).generate(…)``.
    """
    for weight in _linear_weights(model):
        if not is_column_major(weight):
            weight.data = weight.data.t().contiguous().t()
    return model


@torch.no_grad()
def for_training(model: nn.Module) -> nn.Module:
    """Undo :func:`for_decoding`: every linear weight row by row again, as ``nn.Linear`` creates it."""
    for weight in _linear_weights(model):
        if not weight.is_contiguous():
            weight.data = weight.data.contiguous()
    return model
