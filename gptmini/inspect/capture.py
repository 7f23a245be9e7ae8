"""Record what a GPT computes inside, with forward hooks: the model's code is not changed and not copied.

``with capture(model) as cache: model(idx)`` fills a :class:`Cache` with the residual stream after the
embedding and after every block, each layer's attention pattern, each head's output ``z`` and each
attention sub-block's output. A head's *contribution* to the residual stream is ``z_h @ W_O[h]``, its slice
of ``c_proj``; ``c_proj``'s bias belongs to no head, so it is kept apart (:meth:`Cache.attn_bias`), and the
heads' contributions plus that bias are exactly the attention sub-block's output (in eval mode: no dropout).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..utils import eval_mode


@dataclass
class Cache:
    """What one forward pass computed, layer by layer (a new forward pass starts a new record).

    ``embed`` is h0 = token + position embedding (B, T, C); ``resid[l]`` is block l's output (B, T, C),
    *before* the final LayerNorm of a pre-LN model (``model.hidden_states`` is ``ln_f(resid[-1])`` there and
    ``resid[-1]`` itself for post-LN); ``patterns[l]`` is (B, heads, T, T); ``z[l]`` is (B, heads, T, head
    size); ``attn_out[l]`` is the attention sub-block's output (B, T, C), what it adds to the residual stream.
    """

    embed: torch.Tensor | None = None
    resid: list[torch.Tensor] = field(default_factory=list)
    patterns: list[torch.Tensor] = field(default_factory=list)
    z: list[torch.Tensor] = field(default_factory=list)
    attn_out: list[torch.Tensor] = field(default_factory=list)
    c_proj: list[nn.Linear] = field(default_factory=list, repr=False)

    def head_outputs(self, layer: int) -> torch.Tensor:
        """Each head's contribution to the residual stream, (B, heads, T, C): z_h @ W_O[h] without the bias.

        ``c_proj`` is an ``nn.Linear`` (y = x Wᵀ + b) whose input is the heads side by side, so head h owns
        the columns ``h*hs:(h+1)*hs`` of its weight.
        """
        z = self.z[layer]
        weight = self.c_proj[layer].weight  # (C, C): out x in
        n_head, hs = z.shape[1], z.shape[-1]
        w_o = weight.detach().T.reshape(n_head, hs, weight.shape[0])  # (heads, hs, C): W_O[h]
        return torch.einsum("bhtd,hdc->bhtc", z, w_o.to(z.dtype))

    def attn_bias(self, layer: int) -> torch.Tensor:
        """``c_proj``'s bias (C,), added once after the heads are summed (zeros when the model has no bias)."""
        proj = self.c_proj[layer]
        if proj.bias is None:
            return torch.zeros(proj.out_features, dtype=proj.weight.dtype, device=proj.weight.device)
        return proj.bias.detach()

    def stream(self) -> list[torch.Tensor]:
        """The residual stream at every depth: [h0, after block 0, …, after the last block]."""
        return [self.embed, *self.resid]


@contextmanager
def capture(model: nn.Module, patterns: bool = True) -> Iterator[Cache]:
    """Fill a :class:`Cache` during the forward passes inside the ``with`` block; the hooks go at the end.

    ``patterns=False`` leaves ``hook_pattern`` alone, so the fused attention kernel (SDPA) keeps running and
    the logits are bit-for-bit those of the model without hooks; a hook on the pattern needs the explicit path,
    whose numbers agree to rounding error.
    """
    cache = Cache()
    blocks = list(model.transformer.h)
    cache.c_proj = [block.attn.c_proj for block in blocks]

    def on_embed(_module, _inputs, out):
        cache.embed = out.detach()
        for record in (cache.resid, cache.patterns, cache.z, cache.attn_out):
            record.clear()  # a new forward pass starts a new record

    def append_to(record: list[torch.Tensor]):
        return lambda _module, _inputs, out: record.append(out.detach())

    handles = [model.transformer.drop.register_forward_hook(on_embed)]
    for block in blocks:
        handles.append(block.register_forward_hook(append_to(cache.resid)))
        handles.append(block.attn.hook_z.register_forward_hook(append_to(cache.z)))
        handles.append(block.attn.register_forward_hook(append_to(cache.attn_out)))
        if patterns:
            handles.append(block.attn.hook_pattern.register_forward_hook(append_to(cache.patterns)))
    try:
        yield cache
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def run_with_cache(model: nn.Module, idx: torch.Tensor, patterns: bool = True) -> tuple[torch.Tensor, Cache]:
    """The logits of ``idx`` (eval mode, no gradients) and everything :func:`capture` records on the way."""
    with eval_mode(model), capture(model, patterns=patterns) as cache:
        logits, _ = model(idx)
    return logits, cache


def attention_maps(model: nn.Module, idx: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights per layer, each (batch, heads, T, T), in eval mode: what the attention widgets draw."""
    return run_with_cache(model, idx)[1].patterns
