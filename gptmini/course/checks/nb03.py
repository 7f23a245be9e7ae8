"""Notebook 03 (masked self-attention): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ...config import GPTConfig
from ...model import CausalSelfAttention, causal_mask
from ._common import close, first, seeded
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

__all__ = ["check_softmax", "check_causal_mask", "check_window_mask", "check_attention", "check_running_mean"]


def _positions(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:6])
    return shown + (", ..." if len(indices) > 6 else "")


def check_softmax(softmax: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``softmax(x)`` over the last dimension, numerically safe: large scores and -inf (masked) entries included."""
    require_callable(softmax, "softmax", "check_softmax")
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1000.0, 1001.0, 999.0, 1000.5], [0.5, float("-inf"), float("-inf"), -0.5]])
    got, error = call_learner("softmax(x)", softmax, x.clone(), may_return_none=True)
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == x.shape:
        got64 = got.detach().double()
        finite = bool(torch.isfinite(got64).all())
        if bool(torch.isnan(got[1]).any()) and not bool(torch.isnan(got[0]).any()):
            hint = "exp(1000) overflows; subtract each row's max before exp (softmax does not change)"
        elif close(got, torch.softmax(x, dim=0)) or (
            finite and _sums_to_one(got64, dim=0) and not _sums_to_one(got64, dim=-1)
        ):
            hint = "the sum runs over the wrong dimension; normalise over the last one (dim=-1, keepdim=True)"
        elif finite and math.isclose(float(got64.sum()), 1.0, rel_tol=1e-4):
            hint = (
                "the whole tensor sums to 1, each row should: divide by each row's own sum, "
                "over the last dimension (keepdim=True keeps it ready to broadcast)"
            )
    return compare_tensors("softmax", got, torch.softmax(x, dim=-1), hint=hint)


def _sums_to_one(values: torch.Tensor, dim: int) -> bool:
    return bool(torch.allclose(values.sum(dim), torch.ones(()).double(), atol=1e-4))


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
                hint="a boolean lower triangle (True where allowed), or a float mask of 0 with -inf above the diagonal",
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
        got, error = call_learner(f"window_mask({t}, {w})", window_mask, t, w, may_return_none=True)
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


def _mask_after_softmax(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fill: float) -> torch.Tensor:
    """The slip of masking the *weights*: softmax over every key, then the future weights set to ``fill``."""
    t = q.size(-2)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
    return weights.masked_fill(~causal_mask(t, t), fill) @ v


MASK_AFTER_SOFTMAX = (
    "the mask was applied after the softmax: each row was normalised over every key, future ones included, "
    "so what is left no longer sums to 1; mask the scores (-inf above the diagonal) before the softmax"
)

MASK_TO_WEIGHTS = (
    "the future weights are -inf (so the output is nan): the -inf went into the weights, after the softmax; "
    "put it into the scores, before the softmax, which turns it into weights of exactly 0"
)


def _future_leaks(fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> dict[int, list[int]]:
    """Which positions change when only *later* keys/values change: each such change is a peek at the future."""
    base = first(fn(q.clone(), k.clone(), v.clone()))
    t = q.size(-2)
    leaks: dict[int, list[int]] = {}
    for i in range(t - 1):
        for j in range(i + 1, t):
            k2, v2 = k.clone(), v.clone()
            k2[..., j, :] += 1.0
            v2[..., j, :] += 1.0
            out = first(fn(q.clone(), k2, v2))
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
        x = torch.randn(batch, t, d, generator=seeded(4))
        q, k, v = (part.reshape(*shape) for part in ref.c_attn(x).split(d, dim=2))
        captured = []
        handle = ref.hook_pattern.register_forward_hook(lambda _m, _i, weights: captured.append(weights))
        out_ref = ref(x)
        handle.remove()
        weights_ref = captured[0]
    expected = out_ref.reshape(*shape)
    expected_weights = weights_ref.reshape(*lead, t, t)

    with torch.no_grad():
        result, error = call_learner(
            "attention(q, k, v)", attention, q.clone(), k.clone(), v.clone(), may_return_none=True
        )
    if error is not None:
        return error
    got = first(result)
    got_weights = result[1] if isinstance(result, (tuple, list)) and len(result) > 1 else None

    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not close(got, expected):
        with torch.no_grad():
            if close(got, _attention_reference(q, k, v, mask=False)):
                hint = "this equals attention WITHOUT the causal mask"
            elif close(got, _attention_reference(q, k, v, scale=1.0)):
                hint = "the scores were not divided by √d (d = size of q's last dimension)"
            elif close(got, _attention_reference(q, k, v, scale=float(d))):
                hint = "the scores were divided by d; divide by √d"
            elif close(got, _attention_reference(q, k, v, dim=-2)):
                hint = "the softmax ran down the columns; each query's row must sum to 1 (dim=-1)"
            elif close(got, _mask_after_softmax(q, k, v, 0.0)):
                hint = MASK_AFTER_SOFTMAX
            elif bool(torch.isnan(got).any()) and torch.allclose(
                got.double(), _mask_after_softmax(q, k, v, float("-inf")).double(), equal_nan=True
            ):
                hint = MASK_TO_WEIGHTS
        if hint in (MASK_AFTER_SOFTMAX, MASK_TO_WEIGHTS):  # the mask is there, in the wrong place: no peek to name
            leaks = {}
        else:
            try:
                with torch.no_grad():
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
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and bool(torch.isnan(got).any()):
        if isinstance(got_weights, torch.Tensor) and bool(torch.isneginf(got_weights).any()):
            hint = MASK_TO_WEIGHTS
    results = [compare_tensors("attention output", got, expected, hint=hint)]

    if got_weights is not None:
        whint = None
        if isinstance(got_weights, torch.Tensor) and got_weights.shape == expected_weights.shape:
            future = got_weights.detach().masked_fill(causal_mask(t, t), 0.0)
            sums = got_weights.detach().double().sum(-1)
            if bool(torch.isneginf(future).any()):
                whint = MASK_TO_WEIGHTS
            elif not bool((future.abs() > 1e-6).any()) and not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
                i = int((sums - 1).abs().argmax())
                whint = (
                    f"query position {i}'s weights sum to {float(sums.flatten()[i]):.3g}, not 1: " + MASK_AFTER_SOFTMAX
                )
            elif bool((future.abs() > 1e-6).any()):
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


def check_running_mean(running_mean: Any, v: torch.Tensor) -> CheckResult:
    """``running_mean`` (T, d): row i is the mean of v's rows 0..i, what causal attention gives with equal scores.

    The reference is gptmini's masked attention fed all-zero queries, so every allowed weight is equal.
    """
    what = "your running mean of the values"
    if not isinstance(v, torch.Tensor) or v.dim() != 2:
        raise TypeError("check_running_mean(running_mean, v): v must be the (T, d) tensor of values")
    v = v.detach().double()
    t = v.size(0)
    expected, _ = _masked_attention(torch.zeros_like(v), v, v)
    hint = None
    if isinstance(running_mean, torch.Tensor) and running_mean.shape == v.shape:
        got = running_mean.detach().double()
        total = v.cumsum(0)
        counts = torch.arange(1, t + 1, dtype=v.dtype)
        slips = [
            (total, "that is the running sum: divide row i by the number of values it averages"),
            (total / t, "every row was divided by T: position i averages only the i + 1 values up to it"),
            (total / (counts - 1)[:, None], "row i was divided by i: position i sees i + 1 values, itself included"),
            (total / (counts + 1)[:, None], "row i was divided by i + 2: position i sees i + 1 values (0 .. i)"),
            (v.mean(0).expand_as(v), "that is the mean of all T values: position i may average only 0 .. i"),
        ]
        if t == v.size(1):
            slips.append((total / counts, "the counts ran along the columns: row i needs its own count (a column)"))
        hint = next((h for wrong, h in slips if torch.allclose(got, wrong, equal_nan=True)), None)
    return compare_tensors(what, running_mean, expected, hint=hint, against="attention with equal scores")


def _masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    from ...model import causal_mask

    t = q.size(-2)
    scores = (q @ k.transpose(-2, -1)) / q.size(-1) ** 0.5
    weights = scores.masked_fill(~causal_mask(t, t, q.device), float("-inf")).softmax(-1)
    return weights @ v, weights


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "softmax": lambda: lambda s: torch.softmax(s, dim=-1),
    "masked_attention": lambda: _masked_attention,
}
