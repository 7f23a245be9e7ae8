"""The KV cache: keys and values of the positions seen so far, kept so that decoding never recomputes them.

The buffers are allocated once, for the longest sequence the caller will need, and each step writes its new
keys and values in place. Growing the cache with ``torch.cat`` instead would copy every cached key and value
on every step (notebook 09 builds that version by hand to show the idea).
"""

from __future__ import annotations

import torch

from .config import GPTConfig


class KVCache:
    """Per-layer keys and values, shape (n_layer, batch, heads, max_length, head_size), filled up to ``length``."""

    def __init__(
        self,
        config: GPTConfig,
        batch_size: int,
        max_length: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        max_length = config.block_size if max_length is None else max_length
        if not 0 < max_length <= config.block_size:
            raise ValueError(
                f"max_length must be in [1, block_size={config.block_size}] (positions past the context have no "
                f"embedding), got {max_length}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        shape = (config.n_layer, batch_size, config.n_head, max_length, config.head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled in every layer

    @property
    def max_length(self) -> int:
        return self.keys.size(3)

    @property
    def batch_size(self) -> int:
        return self.keys.size(1)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this layer's new keys/values (B, heads, t, hs) after the cached ones; return all of them so far."""
        end = self.length + k.size(2)
        if end > self.max_length:
            raise ValueError(
                f"The KV cache holds {self.max_length} positions and {self.length} are used; {k.size(2)} more do "
                "not fit. Make a larger cache, or start again from the last block_size tokens."
            )
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, t: int) -> None:
        """Count ``t`` new positions as filled (the model calls this once every layer has written them)."""
        self.length += t

    def reset(self) -> None:
        """Forget every position; the buffers are reused."""
        self.length = 0
