"""Decoding: turn next-token logits into text, one token at a time.

The filters (temperature, top-k, top-p) are plain functions so a notebook or a widget can apply them
one by one and show what each removes; ``generate`` strings them together with a KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Sampling:
    """How each next token is picked: checked once, when made (``temperature=0`` is greedy)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        check_sampling_args(self.temperature, self.top_k, self.top_p)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by T: T < 1 sharpens the distribution, T > 1 flattens it."""
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if temperature <= 0:
        raise ValueError("temperature must be > 0 here; use temperature=0 in generate() for greedy decoding")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k most likely tokens (ties at the k-th value are kept), set the rest to -inf."""
    check_sampling_args(top_k=k)
    return _top_k(logits, k)


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of most likely tokens whose probabilities sum to >= p.

    A token is kept when the mass of the tokens sorted before it is still below p; tokens tied with the
    last kept one are kept too, so the result does not depend on how a sort orders equal values.
    """
    check_sampling_args(top_p=p)
    return _top_p(logits, p)


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Temperature, then top-k, then top-p (the order Hugging Face uses too)."""
    return top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)


def _filtered(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    return _top_p(_top_k(logits / sampling.temperature, sampling.top_k), sampling.top_p)


def _top_k(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    if k is None:
        return logits
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_p(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Only the head of the sorted order matters, so it is found with ``topk`` on a candidate set that grows
    until the cut is inside it: the same tokens as a full sort of the vocabulary, without sorting 50,257 values
    on every step (see ``tests/test_generate_fast.py``)."""
    if p is None or p == 1.0:
        return logits
    probs = logits.softmax(dim=-1)
    vocab = probs.size(-1)
    finite = int(torch.isfinite(logits).sum(dim=-1).max())  # after top-k: about k candidates are enough
    m = min(vocab, finite + 1, 256)
    while True:
        if 4 * m > vocab:
            m = vocab  # most of the vocabulary is needed: one full sort
        head = probs.topk(m, dim=-1).values  # sorted, most likely first
        before = F.pad(head.cumsum(dim=-1)[..., :-1], (1, 0))  # mass of the tokens sorted before each one
        n_keep = (before < p).sum(dim=-1, keepdim=True).clamp(min=1)
        threshold = head.gather(-1, n_keep - 1)  # probability of the last kept token
        if m == vocab or bool(((n_keep < m) & (head[..., -1:] < threshold)).all()):
            return logits.masked_fill(probs < threshold, float("-inf"))
        m *= 16


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token for each row of ``logits`` (B, vocab) -> (B, 1). temperature=0 is greedy."""
    return _sample(logits, Sampling(temperature, top_k, top_p), generator)


def _sample(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> torch.Tensor:
    if sampling.temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    device = logits.device
    if device.type == "mps":  # MPS has no float64 (and older builds no topk over 16): the filters run on the CPU
        logits = logits.cpu()
    # float64 with the best logit at 0: dividing by a temperature like 1e-60 neither rounds it to 0 nor overflows
    logits = logits.double()
    logits = logits - logits.max(dim=-1, keepdim=True).values
    probs = F.softmax(_filtered(logits, sampling), dim=-1)
    if not torch.isfinite(probs).all():
        raise ValueError("the next-token probabilities are NaN or infinite: do the model's logits hold NaN or inf?")
    return torch.multinomial(probs, num_samples=1, generator=generator).to(device)


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
    model.check_ids(idx)


class _Stepper:
    """Feeds one new token at a time through a KV cache allocated once, until the context is full.

    Positions are learned and absolute, so once the window has to slide every cached key is at the wrong
    position: from then on each step re-runs the last ``block_size`` tokens, exactly as without a cache.
    The model runs under ``torch.inference_mode`` (no autograd bookkeeping at all); only the last position
    goes through ``lm_head``, the largest matrix of a small GPT.
    """

    def __init__(self, model: GPT, batch_size: int, max_length: int, use_cache: bool) -> None:
        self.model = model
        max_length = min(max_length, model.config.block_size)
        self.cache: KVCache | None = model.new_cache(batch_size, max_length) if use_cache else None

    @torch.inference_mode()
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


def _prepare(model: GPT, idx, max_new_tokens: int) -> tuple[torch.Tensor, str]:
    """The prompt as a (B, T) batch of ids on the model's device, and the form it came in; refuses bad input."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, Integral) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    idx, kind = _as_batch(model, idx)
    _check_ids(model, idx)
    idx = idx.long()
    model.check_input(idx[:, -model.config.block_size :])
    return idx, kind


@torch.no_grad()
def _new_tokens(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    sampling: Sampling,
    seed: int | None,
    use_cache: bool,
    eos_token_id: int | None,
) -> Iterator[torch.Tensor]:
    """Yield each new token as a (B,) tensor, without reading it back to Python (no GPU sync per step).

    The tokens go into one buffer allocated up front, so no step copies the sequence so far.
    """
    generator = None
    if seed is not None:
        where = "cpu" if idx.device.type == "mps" else idx.device  # MPS samples on the CPU (see sample_next)
        generator = torch.Generator(device=where).manual_seed(seed)
    b, t0 = idx.shape
    tokens = torch.empty(b, t0 + max_new_tokens, dtype=torch.long, device=idx.device)
    tokens[:, :t0] = idx
    stepper = _Stepper(model, b, t0 + max_new_tokens, use_cache)
    done = torch.zeros(b, dtype=torch.bool, device=idx.device)
    with eval_mode(model):
        for t in range(t0, t0 + max_new_tokens):
            nxt = _sample(stepper.logits(tokens[:, :t]), sampling, generator).squeeze(1)
            if eos_token_id is not None:
                nxt = nxt.masked_fill(done, eos_token_id)  # finished rows keep padding with eos
                done |= nxt == eos_token_id
            tokens[:, t] = nxt
            yield nxt
            if eos_token_id is not None and bool(done.all()):
                break


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
    """Yield each new token (an int for one sequence, else a (B,) tensor); stops early at ``eos_token_id``.

    The arguments are :func:`generate`'s, checked here, before the first token.
    """
    sampling = Sampling(temperature, top_k, top_p)
    prompt, kind = _prepare(model, idx, max_new_tokens)
    as_int = kind != "tensor" and prompt.size(0) == 1
    tokens = _new_tokens(model, prompt, max_new_tokens, sampling, seed, use_cache, eos_token_id)
    return (int(nxt) for nxt in tokens) if as_int else tokens


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
    It is :func:`generate_stream`'s tokens, collected after the prompt.
    """
    sampling = Sampling(temperature, top_k, top_p)
    prompt, kind = _prepare(model, idx, max_new_tokens)
    new = list(_new_tokens(model, prompt, max_new_tokens, sampling, seed, use_cache, eos_token_id))
    out = torch.cat([prompt, torch.stack(new, dim=1)], dim=1) if new else prompt
    if kind == "list":
        return out[0].tolist()
    return out[0] if kind == "1d" else out
