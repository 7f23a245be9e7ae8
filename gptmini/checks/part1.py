"""Check helpers for notebooks 01–05: tokens, embeddings, masked attention, the block, GPT-1.

Each ``check_…`` builds a small random input, runs the learner's version and gptmini's on it, prints one
line per comparison and returns a :class:`~gptmini.checks.CheckResult`. When an answer is wrong the
check tries to say *why* (the mask is missing, the scale is √d off, the LayerNorm sits in the other
place, ...), because "values differ" alone does not help a learner much.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import GPTConfig
from ..model import GPT, MLP, Block, CausalSelfAttention, causal_mask
from ..tokenizers import CharTokenizer
from ..utils import eval_mode
from ._report import (
    NONE_MESSAGE,
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = [
    "check_char_tokenizer",
    "check_pairs",
    "check_batch",
    "check_embedding",
    "check_lm_loss",
    "check_softmax",
    "check_causal_mask",
    "check_window_mask",
    "check_attention",
    "check_split_heads",
    "check_multihead",
    "check_mlp",
    "check_block",
    "check_gpt",
    "check_gpt_loss",
]


def _first(value: Any) -> Any:
    """Modules often return (output, extras); the checks compare the first item."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _close(a: Any, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and a.shape == b.shape
        and bool(torch.allclose(a.detach().double(), b.double(), atol=atol, rtol=1e-4))
    )


def _positions(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:6])
    return shown + (", ..." if len(indices) > 6 else "")


# ============================================================================ notebook 01: text to tokens
def check_char_tokenizer(
    encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], text: str
) -> CheckResult:
    """Your ``encode``/``decode`` against ``CharTokenizer.from_text(text)``: the same ids, and a round trip.

    The vocabulary is expected to be the *sorted* set of characters of ``text`` (so ids are the same on
    every machine); ``text`` is the text the vocabulary was built from, or a piece of it.
    """
    require_callable(encode, "encode", "check_char_tokenizer")
    require_callable(decode, "decode", "check_char_tokenizer")
    if not isinstance(text, str) or not text:
        raise TypeError("check_char_tokenizer(encode, decode, text): text must be a non-empty string")
    sample = text[:2000]
    reference = CharTokenizer.from_text(text)
    ids, error = call_learner("encode(text)", encode, sample)
    if error is not None:
        return error
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    first = compare_values(
        "encode(text)",
        list(ids) if isinstance(ids, (list, tuple)) else ids,
        reference.encode(sample),
        hint="ids are positions in sorted(set(text)); e.g. stoi = {ch: i for i, ch in enumerate(chars)}",
    )
    back, error = call_learner("decode(encode(text))", decode, reference.encode(sample))
    if error is not None:
        return combine("char tokenizer", [first, error])
    second = compare_values(
        "decode(encode(text))", back, sample, hint="decode should join itos[i] for each id into one string"
    )
    return combine("char tokenizer", [first, second])


def check_pairs(pairs: Sequence[tuple[Sequence[int], int]], chunk: Sequence[int]) -> CheckResult:
    """The (context, next token) pairs hidden in one chunk of ``k + 1`` ids: ``(chunk[:t+1], chunk[t+1])``.

    A chunk of k + 1 tokens holds k training examples, with contexts of length 1, 2, ..., k.
    """
    if isinstance(chunk, torch.Tensor):
        chunk = chunk.tolist()
    chunk = list(chunk)
    if len(chunk) < 2:
        raise ValueError("check_pairs(pairs, chunk): chunk needs at least 2 ids (one context, one next token)")
    expected = [(chunk[: t + 1], chunk[t + 1]) for t in range(len(chunk) - 1)]
    if pairs is None:
        return not_yet("pairs", NONE_MESSAGE)
    if not isinstance(pairs, (list, tuple)):
        return failed("pairs", f"should be a list of (context, next) tuples, got a {type(pairs).__name__}")
    got = []
    for item in pairs:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            return failed("pairs", f"should hold (context, next) tuples, found {item!r}")
        context, nxt = item
        if isinstance(context, torch.Tensor):
            context = context.tolist()
        if isinstance(nxt, torch.Tensor):
            nxt = nxt.item()
        got.append((list(context), int(nxt)))
    return compare_values(
        f"your list of {len(expected)} (context, next) pairs",
        got,
        expected,
        hint="for t in range(k): context = chunk[:t+1], next = chunk[t+1]",
    )


def check_batch(x: torch.Tensor, y: torch.Tensor, data: torch.Tensor, block_size: int | None = None) -> CheckResult:
    """A batch of windows: each row of ``x`` is a piece of ``data`` and ``y`` is the same piece shifted by one.

    Random starts cannot be compared with a reference, so this checks the property that matters: for every
    row b there is a start i with ``x[b] == data[i:i+T]`` and ``y[b] == data[i+1:i+T+1]``.
    """
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data, dtype=torch.long)
    for name, value in (("x", x), ("y", y)):
        if value is None:
            return not_yet(name, NONE_MESSAGE)
        if not isinstance(value, torch.Tensor):
            return failed(name, f"should be a torch tensor of shape (batch, block_size), got a {type(value).__name__}")
        if value.dim() != 2:
            return failed(name, f"should have shape (batch, block_size), got shape {tuple(value.shape)}")
    if x.shape != y.shape:
        return failed("y", f"should have the same shape as x {tuple(x.shape)}, got {tuple(y.shape)}")
    if block_size is not None and x.size(1) != block_size:
        return failed("x", f"has {x.size(1)} columns, expected block_size = {block_size}")
    if x.dtype != torch.long:
        return failed(
            "x", f"should hold token ids as torch.long, got {x.dtype}", hint="use .long() or dtype=torch.long"
        )
    t = x.size(1)
    data = data.to(x.device)
    windows = data.unfold(0, t, 1)  # every window of length t in data: (len - t + 1, t)
    for b in range(x.size(0)):
        starts = (windows == x[b]).all(dim=1).nonzero().flatten().tolist()
        if not starts:
            return failed(f"row {b} of x", "is not a contiguous piece of data", hint="x[b] = data[i : i + block_size]")
        if not any(i + 1 + t <= len(data) and torch.equal(data[i + 1 : i + 1 + t], y[b]) for i in starts):
            if torch.equal(x[b], y[b]):
                return failed(f"row {b} of y", "equals x; y must be x shifted one token to the left")
            return failed(
                f"row {b} of y",
                "is not x shifted by one",
                hint="y[b] = data[i + 1 : i + 1 + block_size], the token after each position of x[b]",
            )
    return passed(
        f"batch of {x.size(0)} windows × {t} tokens: every y is its x shifted by one, as in gptmini.data.get_batch"
    )


# ============================================================================ notebook 02: embeddings
def check_embedding(embed: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``embed(idx, We, Wp)`` -> h0 = U·We + Wp, for idx (B, T): the input gptmini's first block sees.

    ``We`` is the token table (vocab, C) and ``Wp`` the position table (block_size, C); the reference is
    ``GPT.transformer.wte(idx) + GPT.transformer.wpe(positions)``.
    """
    require_callable(embed, "embed", "check_embedding")
    torch.manual_seed(0)
    # vocab < block_size on purpose: looking positions up by token id then runs, and can be named as the mistake
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    idx = torch.randint(11, (3, 9), generator=_seeded(1))
    we, wp = model.transformer.wte.weight.detach(), model.transformer.wpe.weight.detach()
    with torch.no_grad():
        expected = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(9))
        got, error = call_learner("h0", embed, idx, we, wp)
    if error is not None:
        return error
    got = _first(got)
    hint = None
    if _close(got, we[idx]):
        hint = "this is U·We alone: add the position embeddings Wp[:T] so that order matters"
    elif _close(got, we[idx] + wp[idx]):  # both tables indexed by the token ids
        hint = "the positions were looked up with the token ids; use Wp[torch.arange(T)] (the place, not the token)"
    elif isinstance(got, torch.Tensor) and got.shape == (3, 12, 16):
        hint = "use only the first T rows of Wp: Wp[:T]"
    return compare_tensors("h0 = U·We + Wp", got, expected, hint=hint)


def check_lm_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> CheckResult:
    """``loss_fn(logits, targets)`` -> the mean negative log-likelihood of the targets, one number.

    ``logits`` is (B, T, vocab), ``targets`` (B, T); the reference is gptmini's training loss,
    ``F.cross_entropy`` over all B·T positions.
    """
    require_callable(loss_fn, "loss_fn", "check_lm_loss")
    g = _seeded(2)
    logits = torch.randn(2, 5, 11, generator=g) * 3
    targets = torch.randint(11, (2, 5), generator=g)
    expected = F.cross_entropy(logits.view(-1, 11), targets.view(-1))
    got, error = call_learner("loss", loss_fn, logits.clone(), targets.clone())
    if error is not None:
        return error
    if got is None:
        return not_yet("loss", NONE_MESSAGE)
    if isinstance(got, torch.Tensor) and got.numel() != 1:
        return failed(
            "loss", f"should be a single number, got a tensor of shape {tuple(got.shape)}", hint="take the .mean()"
        )
    value = (
        float(got.detach() if isinstance(got, torch.Tensor) else got)
        if isinstance(got, (torch.Tensor, int, float))
        else got
    )
    if not isinstance(value, float):
        return failed("loss", f"should be a number, got a {type(got).__name__}")
    e = float(expected)
    hint = None
    if math.isclose(value, -e, rel_tol=1e-4):
        hint = "the sign is flipped: the loss is the *negative* log-probability"
    elif math.isclose(value, e * targets.numel(), rel_tol=1e-4):
        hint = "this is the sum over positions; divide by B·T (use the mean)"
    elif math.isclose(value, math.exp(e), rel_tol=1e-4):
        hint = "that is the perplexity exp(loss); return the loss itself"
    return compare_tensors("mean next-token loss", torch.tensor(value), expected, atol=1e-5, hint=hint)


# ============================================================================ notebook 03: masked self-attention
def check_softmax(softmax: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``softmax(x)`` over the last dimension, numerically safe: large scores and -inf (masked) entries included."""
    require_callable(softmax, "softmax", "check_softmax")
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1000.0, 1001.0, 999.0, 1000.5], [0.5, float("-inf"), float("-inf"), -0.5]])
    got, error = call_learner("softmax(x)", softmax, x.clone())
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == x.shape:
        if bool(torch.isnan(got[1]).any()) and not bool(torch.isnan(got[0]).any()):
            hint = "exp(1000) overflows; subtract each row's max before exp (softmax does not change)"
        elif _close(got, torch.softmax(x, dim=0)):
            hint = "the sum runs over the wrong dimension; normalise over the last one (dim=-1, keepdim=True)"
    return compare_tensors("softmax", got, torch.softmax(x, dim=-1), hint=hint)


def check_causal_mask(mask: torch.Tensor, T: int | None = None) -> CheckResult:
    """A (T, T) causal mask: True (or 0.0) where query i may look at key j (j <= i), False (or -inf) above.

    Both conventions are accepted: a boolean "allowed" mask, or an additive float mask of 0 / -inf.
    """
    if mask is None:
        return not_yet("mask", NONE_MESSAGE)
    if not isinstance(mask, torch.Tensor):
        return failed("mask", f"should be a (T, T) tensor, got a {type(mask).__name__}")
    if mask.dim() != 2 or mask.size(0) != mask.size(1):
        return failed("mask", f"should be square (T, T), got shape {tuple(mask.shape)}")
    n = T if T is not None else mask.size(0)
    expected = causal_mask(n, n)
    if mask.shape != expected.shape:
        return failed("mask", f"has the wrong shape: got {tuple(mask.shape)}, expected {(n, n)}")
    if mask.dtype == torch.bool:
        allowed = mask
    else:
        if not bool(((mask == 0) | torch.isneginf(mask)).all()):
            return failed(
                "mask",
                "should hold only True/False, or 0.0 and -inf (an additive mask)",
                hint="torch.tril(torch.ones(T, T, dtype=torch.bool)) or a float mask filled with -inf above",
            )
        allowed = mask == 0
    hint = None
    if torch.equal(allowed, ~expected):
        hint = "the mask is inverted: True (or 0.0) must mark the allowed positions, the lower triangle"
    elif torch.equal(allowed, expected.T):
        hint = "this is the upper triangle: query i (a row) may see keys j <= i (columns to its left)"
    elif torch.equal(allowed, torch.ones(n, n, dtype=torch.bool).tril(-1)):
        hint = "the diagonal is missing: a position may attend to itself (use tril(), not tril(-1))"
    return compare_values("causal mask", allowed.int().tolist(), expected.int().tolist(), hint=hint)


def check_window_mask(window_mask: Callable[[int, int], torch.Tensor]) -> CheckResult:
    """``window_mask(T, w)``: a causal mask that also forgets the distant past (exercise of notebook 03).

    Query i may look at keys i-w+1 .. i: itself and the w-1 positions before it (True = allowed).
    """
    require_callable(window_mask, "window_mask", "check_window_mask")
    results = []
    for t, w in ((6, 2), (7, 3), (5, 1), (4, 10)):
        full = causal_mask(t, t)
        expected = full & ~full.tril(-w)  # keep the band of width w below and on the diagonal
        got, error = call_learner(f"window_mask({t}, {w})", window_mask, t, w)
        if error is not None:
            return error
        if got is None:
            return not_yet(f"window_mask({t}, {w})", NONE_MESSAGE)
        if not isinstance(got, torch.Tensor) or got.shape != (t, t):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(f"window_mask({t}, {w})", f"should be a ({t}, {t}) tensor, got {shape}")
        allowed = got.bool() if got.dtype == torch.bool else got == 0
        if not torch.equal(allowed, expected):
            bad = (allowed != expected).nonzero()[0].tolist()
            i, j = bad
            verdict = "allows" if bool(allowed[i, j]) else "blocks"
            return failed(
                f"window_mask({t}, {w})",
                f"differs: query {i} {verdict} key {j}, but it should {'block' if verdict == 'allows' else 'allow'} it",
                hint=f"query i sees keys i-{w - 1} .. i; start from the causal mask and remove what lies further back",
            )
        results.append((t, w))
    return passed(f"window mask matches gptmini's causal mask limited to the last w keys, for (T, w) in {results}")


def _attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: bool = True, scale: float | None = None, dim: int = -1
):
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / (math.sqrt(d) if scale is None else scale)
    if mask:
        t = q.size(-2)
        scores = scores.masked_fill(~causal_mask(t, t), float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    return weights @ v


def _future_leaks(fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> dict[int, list[int]]:
    """Which positions change when only *later* keys/values change: each such change is a peek at the future."""
    base = _first(fn(q.clone(), k.clone(), v.clone()))
    t = q.size(-2)
    leaks: dict[int, list[int]] = {}
    for i in range(t - 1):
        for j in range(i + 1, t):
            k2, v2 = k.clone(), v.clone()
            k2[..., j, :] += 1.0
            v2[..., j, :] += 1.0
            out = _first(fn(q.clone(), k2, v2))
            if not torch.allclose(out[..., i, :], base[..., i, :], atol=1e-6):
                leaks.setdefault(i, []).append(j)
    return leaks


def check_attention(
    attention: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any], shape: tuple[int, ...] = (6, 8)
) -> CheckResult:
    """``attention(q, k, v)`` -> softmax(mask(q·kᵀ/√d))·v, against gptmini's explicit attention path.

    q, k, v have ``shape`` (…, T, d) (default one head, T=6, d=8). The function may return the output, or
    ``(output, weights)``; then the weights are checked too. The reference is a one-head
    :class:`gptmini.model.CausalSelfAttention` in explicit mode (scores, mask, softmax) with an identity
    output projection, fed the very q, k, v that its own ``c_attn`` produced.
    """
    require_callable(attention, "attention", "check_attention")
    if len(shape) < 2 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"check_attention: shape must be (..., T, d) with positive sizes, got {shape!r}")
    *lead, t, d = shape
    batch = math.prod(lead) if lead else 1
    torch.manual_seed(3)
    config = GPTConfig(vocab_size=8, block_size=t, n_layer=1, n_head=1, n_embd=d, dropout=0.0)
    ref = CausalSelfAttention(config).eval()
    ref.use_sdpa = False
    with torch.no_grad():
        ref.c_proj.weight.copy_(torch.eye(d))
        ref.c_proj.bias.zero_()
        x = torch.randn(batch, t, d, generator=_seeded(4))
        q, k, v = (part.reshape(*shape) for part in ref.c_attn(x).split(d, dim=2))
        captured = []
        handle = ref.hook_pattern.register_forward_hook(lambda _m, _i, weights: captured.append(weights))
        out_ref = ref(x)
        handle.remove()
        weights_ref = captured[0]
    expected = out_ref.reshape(*shape)
    expected_weights = weights_ref.reshape(*lead, t, t)

    with torch.no_grad():
        result, error = call_learner("attention(q, k, v)", attention, q.clone(), k.clone(), v.clone())
    if error is not None:
        return error
    got = _first(result)
    got_weights = result[1] if isinstance(result, (tuple, list)) and len(result) > 1 else None

    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not _close(got, expected):
        with torch.no_grad():
            if _close(got, _attention_reference(q, k, v, mask=False)):
                hint = "this equals attention WITHOUT the causal mask"
            elif _close(got, _attention_reference(q, k, v, scale=1.0)):
                hint = "the scores were not divided by √d (d = size of q's last dimension)"
            elif _close(got, _attention_reference(q, k, v, scale=float(d))):
                hint = "the scores were divided by d; divide by √d"
            elif _close(got, _attention_reference(q, k, v, dim=-2)):
                hint = "the softmax ran down the columns; each query's row must sum to 1 (dim=-1)"
            try:
                leaks = _future_leaks(lambda a, b, c: attention(a, b, c), q, k, v)
            except Exception:  # the learner's function already ran once; a failure here only loses the detail
                leaks = {}
        if leaks:
            first_pos = min(leaks)
            names = "; ".join(
                f"position {i} sees future position(s) {_positions(js)}" for i, js in sorted(leaks.items())[:3]
            )
            hint = (
                (hint + ". " if hint else "")
                + f"{names}. Set scores[i, j] = -inf for j > i before the softmax, so position {first_pos} "
                "cannot see what comes after it"
            )
    results = [compare_tensors("attention output", got, expected, hint=hint)]

    if got_weights is not None:
        whint = None
        if isinstance(got_weights, torch.Tensor) and got_weights.shape == expected_weights.shape:
            future = got_weights.detach().masked_fill(causal_mask(t, t), 0.0)
            if bool((future.abs() > 1e-6).any()):
                idx = (future.abs() > 1e-6).nonzero()[0].tolist()
                i, j = idx[-2], idx[-1]
                whint = (
                    f"query position {i} gives weight {float(got_weights[tuple(idx)]):.3g} to future position {j}; "
                    "masked weights must be exactly 0 (fill the scores with -inf, not 0, before the softmax)"
                )
        results.append(compare_tensors("attention weight matrix", got_weights, expected_weights, hint=whint))
    if len(results) == 1:
        return results[0]
    return combine("masked self-attention", results)


# ============================================================================ notebook 04: heads and the block
def check_split_heads(
    split: Callable[[torch.Tensor, int], torch.Tensor], merge: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> CheckResult:
    """``split(x, n_head)``: (B, T, C) -> (B, n_head, T, C // n_head); ``merge`` undoes it, back to (B, T, C).

    Head h owns the columns ``h*hs : (h+1)*hs`` of C, as in gptmini (and in the OpenAI checkpoints).
    """
    require_callable(split, "split", "check_split_heads")
    b, t, c, nh = 2, 5, 12, 3
    x = torch.randn(b, t, c, generator=_seeded(5))
    expected = x.view(b, t, nh, c // nh).transpose(1, 2)
    got, error = call_learner("split(x, n_head)", split, x.clone(), nh)
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and _close(got, x.reshape(b, nh, t, c // nh)):
        hint = (
            "x.view(B, n_head, T, hs) scrambles tokens across heads; view as (B, T, n_head, hs), then transpose(1, 2)"
        )
    results = [compare_tensors("split heads", got, expected, hint=hint)]
    if merge is not None:
        require_callable(merge, "merge", "check_split_heads")
        back, error = call_learner("merge(split(x))", merge, expected.clone())
        if error is None:
            error = compare_tensors(
                "merge heads",
                back,
                x,
                hint="transpose(1, 2) back to (B, T, n_head, hs), then .contiguous().view(B, T, C)",
            )
        results.append(error)
    return results[0] if len(results) == 1 else combine("heads split and merged", results)


def _load_state(what: str, module: nn.Module, state: dict[str, torch.Tensor]) -> CheckResult | None:
    """Copy ``state`` into ``module``; a name or shape mismatch becomes a failing result naming the keys."""
    own = module.state_dict()
    missing = [key for key in state if key not in own]
    unexpected = [key for key in own if key not in state]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}")
        return failed(
            what,
            "has different parameter names from gptmini's: " + "; ".join(parts),
            hint=f"name the layers like gptmini so weights can be copied: {sorted(state)[:8]}",
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            return failed(what, f"parameter {key!r} has shape {tuple(own[key].shape)}, expected {tuple(value.shape)}")
    module.load_state_dict(state)
    return None


def _randomised(module: nn.Module, seed: int) -> nn.Module:
    """Give every parameter (LayerNorm scales and biases too) a random value, so no swap can go unnoticed."""
    g = _seeded(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:  # LayerNorm scale: around 1
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module


def _small_config(config: GPTConfig | None, **overrides: Any) -> GPTConfig:
    if config is None:
        return GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.0, **overrides)
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a gptmini GPTConfig, got {type(config).__name__}")
    return config.replace(dropout=0.0, **overrides)


def _run_module(what: str, module: Any, x: torch.Tensor) -> tuple[Any, CheckResult | None]:
    with eval_mode(module), torch.no_grad():
        out, error = call_learner(what, module, x)
    return (_first(out) if error is None else None), error


def check_multihead(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your multi-head attention module against gptmini's ``CausalSelfAttention``.

    The module must have ``c_attn`` (C -> 3C: q, k, v in one matmul) and ``c_proj`` (C -> C) like gptmini;
    the check copies gptmini's random weights into a copy of yours and compares outputs for x (B, T, C).
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_multihead expects your attention module (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config)
    torch.manual_seed(6)
    ref = _randomised(CausalSelfAttention(cfg), 7).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = _load_state("your attention module", yours, ref.state_dict())
    if problem is not None:
        return problem
    t = min(cfg.block_size, 7)
    x = torch.randn(2, t, cfg.n_embd, generator=_seeded(8))
    with torch.no_grad():
        expected = ref(x)
    got, error = _run_module("your attention module(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not _close(got, expected):
        base = got
        x2 = x.clone()
        x2[:, -1] += 1.0
        later, _ = _run_module("your attention module(x)", yours, x2)
        if isinstance(later, torch.Tensor) and not torch.allclose(later[:, :-1], base[:, :-1], atol=1e-6):
            hint = f"changing the last token changes earlier outputs: the causal mask is missing (T = {t})"
        else:
            hint = "check the head split (view as (B, T, n_head, hs) then transpose), the √hs scale, and c_proj"
    return compare_tensors("multi-head attention output", got, expected, atol=1e-5, hint=hint)


def check_mlp(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your feed-forward network (``c_fc``: C -> 4C, GELU, ``c_proj``: 4C -> C) against gptmini's ``MLP``."""
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_mlp expects your feed-forward module (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config)
    ref = _randomised(MLP(cfg), 9).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = _load_state("your MLP", yours, ref.state_dict())
    if problem is not None:
        return problem
    x = torch.randn(2, 5, cfg.n_embd, generator=_seeded(10))
    with torch.no_grad():
        expected = ref(x)
        hidden = ref.c_fc(x)
        variants = {
            "exact (erf) GELU": ref.c_proj(F.gelu(hidden)),
            "ReLU": ref.c_proj(F.relu(hidden)),
            "no activation": ref.c_proj(hidden),
        }
    got, error = _run_module("your MLP(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if not _close(got, expected):
        for name, value in variants.items():
            if _close(got, value):
                hint = (
                    f"this matches an MLP with {name}; GPT uses GELU's tanh approximation: nn.GELU(approximate='tanh')"
                )
                break
    return compare_tensors("feed-forward (MLP) output", got, expected, atol=1e-5, hint=hint)


def check_block(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your decoder block against gptmini's ``Block`` with the same weights, for ``config.norm``.

    ``norm="post"`` (GPT-1, the default here): x = LN1(x + attn(x)); x = LN2(x + mlp(x)).
    ``norm="pre"`` (GPT-2): x = x + attn(LN1(x)); x = x + mlp(LN2(x)).
    Names must follow gptmini (``ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``, ``mlp.c_fc``,
    ``mlp.c_proj``). Every weight, LayerNorm scales included, is set to a random value first, so a swapped
    ``ln_1``/``ln_2`` shows up.
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_block expects your block (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config) if config is not None else _small_config(None, norm="post")
    ref = _randomised(Block(cfg), 11).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = _load_state("your block", yours, ref.state_dict())
    if problem is not None:
        return problem
    x = torch.randn(2, min(cfg.block_size, 6), cfg.n_embd, generator=_seeded(12))
    with torch.no_grad():
        expected = ref(x)
        other = "pre" if cfg.norm == "post" else "post"
        ref_other = Block(cfg.replace(norm=other)).eval()
        ref_other.load_state_dict(ref.state_dict())
        expected_other = ref_other(x)
    got, error = _run_module("your block(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if _close(got, expected_other):
        names = {
            "post": "post-LN (GPT-1: LayerNorm after each residual add)",
            "pre": "pre-LN (GPT-2: LayerNorm at each sub-block's input)",
        }
        hint = f"your block computes the {names[other]} order, but config.norm={cfg.norm!r} asks for {names[cfg.norm]}"
    label = {"post": "post-LN (GPT-1) block output", "pre": "pre-LN (GPT-2) block output"}[cfg.norm]
    return compare_tensors(label, got, expected, atol=1e-4, hint=hint)


# ============================================================================ notebook 05: GPT-1
def check_gpt(mine: nn.Module, config: GPTConfig) -> CheckResult:
    """Your assembled GPT against ``gptmini.GPT(config)`` with the same weights: logits, loss and weight tying.

    ``mine(idx, targets)`` must return ``(logits, loss)`` like gptmini's; its parameter names must match
    gptmini's (``transformer.wte``, ``transformer.wpe``, ``transformer.h.0…``, ``lm_head``).
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_gpt expects your model (an nn.Module), got {type(mine).__name__}")
    if not isinstance(config, GPTConfig):
        raise TypeError(f"check_gpt(mine, config): config must be a GPTConfig, got {type(config).__name__}")
    cfg = config.replace(dropout=0.0)
    results = []
    head, table = getattr(mine, "lm_head", None), getattr(getattr(mine, "transformer", None), "wte", None)
    if head is None or table is None:
        return failed("your model", "needs .transformer.wte (token table) and .lm_head (output layer) like gptmini.GPT")
    if head.weight is table.weight or head.weight.data_ptr() == table.weight.data_ptr():
        results.append(passed("weight tying: lm_head.weight is transformer.wte.weight, as in gptmini"))
    else:
        results.append(
            failed(
                "weight tying",
                "is missing: lm_head.weight is a separate matrix",
                hint="self.lm_head.weight = self.transformer.wte.weight, so P(u) = softmax(h · Weᵀ)",
            )
        )
    torch.manual_seed(13)
    ref = GPT(cfg).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = _load_state("your model", yours, ref.state_dict())
    if problem is not None:
        results.append(problem)
        return combine("GPT-1 assembled", results)
    t = min(cfg.block_size, 10)
    g = _seeded(14)
    idx = torch.randint(cfg.vocab_size, (2, t), generator=g)
    targets = torch.randint(cfg.vocab_size, (2, t), generator=g)
    with torch.no_grad():
        logits_ref, loss_ref = ref(idx, targets)
    with eval_mode(yours), torch.no_grad():
        out, error = call_learner("your model(idx, targets)", yours, idx, targets)
    if error is not None:
        results.append(error)
        return combine("GPT-1 assembled", results)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        results.append(failed("your model(idx, targets)", "should return (logits, loss)"))
        return combine("GPT-1 assembled", results)
    logits, loss = out
    results.append(compare_tensors("the logit tensor", logits, logits_ref, atol=1e-4))
    if loss is None:
        results.append(failed("loss", "is None although targets were given"))
    else:
        results.append(compare_tensors("the loss", loss, loss_ref, atol=1e-5))
    return combine("GPT-1 assembled", results)


def check_gpt_loss(L1: Any, model: GPT, x: torch.Tensor, y: torch.Tensor) -> CheckResult:
    """Your pretraining objective L1 = Σ log P(u_i | u_{i-k}, …, u_{i-1}) for the batch (x, y) under ``model``.

    L1 is a *sum of log-probabilities* (a negative number, to be maximised); gptmini's training loss is
    the mean negative log-likelihood, so L1 = -(number of predicted tokens) × loss.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"check_gpt_loss(L1, model, x, y): model must be a gptmini GPT, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("check_gpt_loss(L1, model, x, y): x and y must be the tensors of the batch")
    with eval_mode(model), torch.no_grad():
        _, loss = model(x.to(model.device), y.to(model.device))
    n = y.numel()
    expected = -float(loss) * n
    if L1 is None:
        return not_yet("L1", NONE_MESSAGE)
    if isinstance(L1, torch.Tensor):
        if L1.numel() != 1:
            return failed(
                "L1", f"should be one number (a sum), got a tensor of shape {tuple(L1.shape)}", hint="add .sum()"
            )
        L1 = float(L1.detach())
    if not isinstance(L1, (int, float)):
        return failed("L1", f"should be a number, got a {type(L1).__name__}")
    hint = None
    if math.isclose(L1, float(loss), rel_tol=1e-4):
        hint = "that is the mean cross-entropy (the loss); L1 is the SUM of log-probabilities, = -N × loss"
    elif math.isclose(L1, -expected, rel_tol=1e-4):
        hint = "the sign is flipped: log-probabilities are negative, so L1 is negative"
    elif math.isclose(L1, -float(loss), rel_tol=1e-4):
        hint = "that is the mean log-probability; L1 sums over all B·T predicted tokens"
    return compare_tensors(
        f"L1 over {n} predicted tokens",
        torch.tensor(float(L1)),
        torch.tensor(expected),
        atol=1e-2,
        rtol=1e-4,
        hint=hint,
    )
