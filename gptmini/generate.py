"""Decoding: turn next-token logits into text, one token at a time.

The filters (temperature, top-k, top-p) are plain functions so a notebook or a widget can apply them
one by one and show what each removes; ``generate`` strings them together with a KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from numbers import Integral, Real
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .utils import eval_mode

if TYPE_CHECKING:
    from .kvcache import KVCache
    from .model import GPT


def check_sampling_args(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """Refuse sampling settings that would silently do something else, naming the argument and what works."""
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {temperature!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, Integral) or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1 (or None to switch it off), got {top_k!r}")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, Real) or not math.isfinite(top_p) or not 0 < top_p <= 1
    ):
        raise ValueError(f"top_p must be a number in (0, 1] (or None to switch it off), got {top_p!r}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by T: T < 1 sharpens the distribution, T > 1 flattens it."""
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if temperature <= 0:
        raise ValueError("temperature must be > 0 here; use temperature=0 in generate() for greedy decoding")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k most likely tokens (ties at the k-th value are kept), set the rest to -inf."""
    if k is None:
        return logits
    check_sampling_args(top_k=k)
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of most likely tokens whose probabilities sum to >= p."""
    if p is None:
        return logits
    check_sampling_args(top_p=p)
    if p == 1.0:
        return logits
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


def _check_ids(model: GPT, idx: torch.Tensor) -> None:
    """Every prompt id must be in the vocabulary, the part that gets cropped away included."""
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.is_complex():
        raise ValueError(f"Token ids must be integers (torch.long), got dtype {idx.dtype}; use idx.long().")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= model.config.vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"Token id {bad} is outside the vocabulary [0, {model.config.vocab_size}); were these ids made by "
            "the tokenizer this model was trained with?"
        )


class _Stepper:
    """Feeds one new token at a time through a KV cache allocated once, until the context is full.

    Positions are learned and absolute, so once the window has to slide every cached key is at the wrong
    position: from then on each step re-runs the last ``block_size`` tokens, exactly as without a cache.
    """

    def __init__(self, model: GPT, batch_size: int, max_length: int, use_cache: bool) -> None:
        self.model = model
        max_length = min(max_length, model.config.block_size)
        self.cache: KVCache | None = model.new_cache(batch_size, max_length) if use_cache else None

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        t, cache = idx.size(1), self.cache
        if cache is not None and 0 < cache.length == t - 1 and t <= cache.max_length:
            x = self.model.hidden_states(idx[:, -1:], cache)  # only the newest token; the rest is cached
        elif cache is not None and t <= cache.max_length:
            cache.reset()
            x = self.model.hidden_states(idx, cache)  # the prompt, once, filling the cache
        else:
            self.cache = None  # the window slides from here on: recompute the last block_size tokens each step
            x = self.model.hidden_states(idx[:, -self.model.config.block_size :])
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
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, Integral) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    check_sampling_args(temperature, top_k, top_p)
    idx, kind = _as_batch(model, idx)
    _check_ids(model, idx)
    idx = idx.long()
    model.check_input(idx[:, -model.config.block_size :])
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    stepper = _Stepper(model, idx.size(0), idx.size(1) + max_new_tokens, use_cache)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            nxt = sample_next(stepper.logits(idx), temperature, top_k, top_p, generator)
            if eos_token_id is not None:
                nxt = nxt.masked_fill(done.unsqueeze(1), eos_token_id)  # finished rows keep padding with eos
                done |= nxt.squeeze(1) == eos_token_id
            idx = torch.cat([idx, nxt], dim=1)
            yield int(nxt) if kind != "tensor" and idx.size(0) == 1 else nxt.squeeze(1)
            if eos_token_id is not None and bool(done.all()):
                break


def generate(
    model: GPT,
    idx: torch.Tensor | list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    eos_token_id: int | None = None,
) -> torch.Tensor | list[int]:
    """Prompt plus up to ``max_new_tokens`` new tokens, in the prompt's own form (list, 1-D or 2-D tensor).

    ``temperature=0`` is greedy decoding; ``top_k``/``top_p`` filter before sampling; ``seed`` makes
    sampling repeatable; ``use_cache`` (default) keeps past keys and values instead of recomputing them.
    """
    prompt, kind = _as_batch(model, idx)
    new = list(generate_stream(model, prompt, max_new_tokens, temperature, top_k, top_p, seed, use_cache, eos_token_id))
    out = torch.cat([prompt, torch.stack(new, dim=1)], dim=1) if new else prompt
    if kind == "list":
        return out[0].tolist()
    return out[0] if kind == "1d" else out
