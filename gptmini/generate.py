"""Decoding: turn next-token logits into text, one token at a time.

The filters (temperature, top-k, top-p) are plain functions so a notebook or a widget can apply them
one by one and show what each removes; ``generate`` strings them together with a KV cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .model import GPT, KVCache


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by T: T < 1 sharpens the distribution, T > 1 flattens it."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0 here; use temperature=0 in generate() for greedy decoding")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k most likely tokens (ties at the k-th value are kept), set the rest to -inf."""
    if k is None:
        return logits
    if k < 1:
        raise ValueError(f"top_k must be >= 1 (or None to switch it off), got {k}")
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of most likely tokens whose probabilities sum to >= p."""
    if p is None or p >= 1.0:
        return logits
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (or None to switch it off), got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative - sorted_logits.softmax(dim=-1) >= p  # mass before this token already >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Temperature, then top-k, then top-p (the order Hugging Face uses too)."""
    return top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token for each row of ``logits`` (B, vocab) -> (B, 1). temperature=0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = F.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def _as_batch(model: GPT, idx) -> tuple[torch.Tensor, str]:
    kind = "list" if isinstance(idx, (list, tuple)) else "tensor"
    if kind == "list":
        idx = torch.tensor([list(idx)], dtype=torch.long)
    elif isinstance(idx, torch.Tensor) and idx.dim() == 1:
        idx, kind = idx.unsqueeze(0), "1d"
    if not isinstance(idx, torch.Tensor) or idx.numel() == 0:
        raise ValueError(
            "generate() needs a prompt of at least one token; for an unconditional sample start from a "
            "single token such as the end-of-text id (GPT-2: 50256) or a newline."
        )
    return idx.to(model.device), kind


class _Stepper:
    """Feeds one new token at a time, reusing the cache until the context is full.

    Positions are learned and absolute, so once the window has to slide every cached key is at the wrong
    position: from then on each step re-runs the last ``block_size`` tokens, exactly as without a cache.
    """

    def __init__(self, model: GPT, use_cache: bool) -> None:
        self.model, self.use_cache = model, use_cache
        self.cache: KVCache | None = None

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        block = self.model.config.block_size
        cached = self.cache[0][0].size(2) if self.cache else 0
        if self.use_cache and self.cache and cached + 1 == idx.size(1) and idx.size(1) <= block:
            x, self.cache, _ = self.model.hidden_states(idx[:, -1:], past=self.cache)
        else:
            window = idx[:, -block:]
            x, cache, _ = self.model.hidden_states(window)
            self.cache = cache if self.use_cache and idx.size(1) < block else None
        return self.model.lm_head(x[:, -1, :])


@torch.no_grad()
def generate_stream(
    model: GPT,
    idx,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    eos_token_id: int | None = None,
) -> Iterator[torch.Tensor | int]:
    """Yield each new token (an int for one sequence, else a (B,) tensor); stops early at ``eos_token_id``."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    idx, kind = _as_batch(model, idx)
    model.check_input(idx[:, -model.config.block_size :])
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    stepper = _Stepper(model, use_cache)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    try:
        for _ in range(max_new_tokens):
            nxt = sample_next(stepper.logits(idx), temperature, top_k, top_p, generator)
            if eos_token_id is not None:
                nxt = nxt.masked_fill(done.unsqueeze(1), eos_token_id)  # finished rows keep padding with eos
                done |= nxt.squeeze(1) == eos_token_id
            idx = torch.cat([idx, nxt], dim=1)
            yield int(nxt) if kind != "tensor" and idx.size(0) == 1 else nxt.squeeze(1)
            if eos_token_id is not None and bool(done.all()):
                break
    finally:
        model.train(was_training)


def generate(model: GPT, idx, max_new_tokens: int, **kwargs):
    """Prompt plus up to ``max_new_tokens`` new tokens, in the prompt's own form (list, 1-D or 2-D tensor).

    ``temperature=0`` is greedy decoding; ``top_k``/``top_p`` filter before sampling; ``seed`` makes
    sampling repeatable; ``use_cache`` (default) keeps past keys and values instead of recomputing them.
    """
    prompt, kind = _as_batch(model, idx)
    new = list(generate_stream(model, prompt, max_new_tokens, **kwargs))
    if new:
        out = torch.cat([prompt, torch.stack(new, dim=1)], dim=1)
    else:
        out = prompt
    if kind == "list":
        return out[0].tolist()
    return out[0] if kind == "1d" else out
