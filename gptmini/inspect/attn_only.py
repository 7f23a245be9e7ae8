"""Attention-only transformers: every block's MLP removed, so only attention heads move information.

With no MLP, the residual stream is the embedding plus the sum of every head's output (and each ``c_proj``
bias), so what a head does can be read off its attention and its contribution alone. That is why the first
studies of induction heads (Elhage et al. 2021, Olsson et al. 2022) started from 1- and 2-layer
attention-only models: the smallest setting in which a head can build on an earlier head's output.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ZeroMLP(nn.Module):
    """Stands in for a block's MLP and adds nothing to the residual stream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def attention_only(model: nn.Module) -> nn.Module:
    """Replace every block's MLP by :class:`ZeroMLP` (in place; returns the model). Use a pre-LN model.

    In a post-LN block the second LayerNorm would still run (``ln_2(x + 0)``), so the residual stream would
    not be a plain sum of head outputs.
    """
    for block in model.transformer.h:
        block.mlp = ZeroMLP()
    return model
