"""Attention-only transformers: blocks without an MLP, so only attention heads move information.

With no MLP, the residual stream is the embedding plus the sum of every head's output (and each ``c_proj``
bias), so what a head does can be read off its attention and its contribution alone. That is why the first
studies of induction heads (Elhage et al. 2021, Olsson et al. 2022) started from 1- and 2-layer
attention-only models: the smallest setting in which a head can build on an earlier head's output.

Build one with ``GPT(GPTConfig(..., attn_only=True))``: it saves and loads like any other model.
:func:`attention_only` turns an existing model into that form.
"""

from __future__ import annotations

import torch.nn as nn


def attention_only(model: nn.Module) -> nn.Module:
    """Drop every block's MLP and its LayerNorm (in place) and mark the config ``attn_only``; returns the model.

    The result is the model ``GPT(config.replace(attn_only=True))`` would build with these attention weights,
    so it saves and loads like one. A pre-LN model is the usual choice: in a post-LN model each block still
    ends in a LayerNorm (``ln_1(x + attn(x))``), so the stream is not a plain sum of head outputs.
    """
    for block in model.transformer.h:
        block.attn_only = True
        for name in ("mlp", "ln_2"):
            if hasattr(block, name):
                delattr(block, name)
    model.config = model.config.replace(attn_only=True)
    return model
