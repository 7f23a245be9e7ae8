"""Notebook 11 (inside the model): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...model import GPT
from ._report import CheckResult, call_learner, combine, compare_tensors, compare_values, failed, require_callable

__all__ = [
    "check_previous_token_score",
    "check_induction_score",
    "check_zero_head",
    "check_unembed",
    "check_dla_projection",
    "check_full_ov_circuit",
]


def _causal_softmax(scores: torch.Tensor) -> torch.Tensor:
    t = scores.shape[-1]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def _test_patterns(t: int, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Random causal patterns (every diagonal different) and a sharp one, so slips change the answer."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, scale in enumerate((1.0, 3.0)):
        out.append((f"a random {t}x{t} pattern #{k + 1}", _causal_softmax(scale * torch.randn(t, t, generator=gen))))
    return out


def _as_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return value


def _diagnose(got: Any, slips: dict[str, float]) -> str | None:
    if not isinstance(got, (int, float)):
        return None
    for hint, value in slips.items():
        if abs(got - value) <= 1e-6 * max(1.0, abs(value)):
            return hint
    return None


def check_previous_token_score(score_fn: Callable[[torch.Tensor], Any]) -> CheckResult:
    """``score_fn(pattern)`` for a (T, T) pattern: the mean weight on key i - 1 over queries i = 1..T-1."""
    from ...inspect.scores import previous_token_score

    require_callable(score_fn, "score_fn", "check_previous_token_score")
    results = []
    for what, pattern in _test_patterns(10):
        name = f"previous-token score of {what}"
        value, error = call_learner(name, score_fn, pattern.clone(), may_return_none=True)
        if error is not None:
            return error
        got, expected = _as_float(value), float(previous_token_score(pattern))
        rows = torch.arange(1, pattern.shape[0])
        slips = {
            "that is the main diagonal (each token on itself): use the one below it, pattern[i, i - 1]": float(
                pattern.diagonal().mean()
            ),
            "query 0 has no previous token; average over queries 1..T-1 only": float(
                pattern.diagonal(-1).sum() / pattern.shape[0]
            ),
            "that is the diagonal above the main one, which the causal mask makes 0: look one step back, not "
            "forward": 0.0,
            "a sum, not a mean: divide by the number of queries (T - 1)": float(pattern[rows, rows - 1].sum()),
        }
        results.append(compare_values(name, got, expected, hint=_diagnose(got, slips)))
    return combine("check_previous_token_score", results)


def check_induction_score(score_fn: Callable[[torch.Tensor, int], Any]) -> CheckResult:
    """``score_fn(pattern, n)`` for a (2n, 2n) pattern of n tokens repeated twice: mean weight from each query
    i of the second copy (i = n..2n-1) on key i - n + 1, the token after the earlier occurrence."""
    from ...inspect.scores import induction_score

    require_callable(score_fn, "score_fn", "check_induction_score")
    results = []
    n = 6
    for what, pattern in _test_patterns(2 * n, seed=1):
        name = f"induction score of {what} (n = {n})"
        value, error = call_learner(name, score_fn, pattern.clone(), n, may_return_none=True)
        if error is not None:
            return error
        got, expected = _as_float(value), float(induction_score(pattern, n))
        second = torch.arange(n, 2 * n)
        slips = {
            "that is key i - n, the earlier copy of the same token (a duplicate-token head): the induction "
            "head looks one step further, at i - n + 1": float(pattern[second, second - n].mean()),
            "that is key i - n + 2: one step too far; the token *after* the earlier copy is at i - n + 1": float(
                pattern[second[:-1], second[:-1] - n + 2].mean()
            ),
            "average over the second copy only (queries n..2n-1); the first copy has nothing to look back at": float(
                pattern.diagonal(-(n - 1))[: 2 * n].mean()
            ),
            "that is the main diagonal (each token on itself): the induction target is n - 1 below it": float(
                pattern[second, second].mean()
            ),
        }
        if isinstance(got, (int, float)) and abs(got - float(pattern[second[1:], second[1:] - n + 1].mean())) < 1e-9:
            slips = {"start at query n, the first token of the second copy (its target is key 1)": got}
        results.append(compare_values(name, got, expected, hint=_diagnose(got, slips)))
    if not all(results):
        return combine("check_induction_score", results)
    # a sharp induction pattern must score 1: catches answers that only happen to agree on random patterns
    sharp = torch.zeros(2 * n, 2 * n)
    sharp[:n, 0] = 1.0
    for i in range(n, 2 * n):
        sharp[i, i - n + 1] = 1.0
    value, error = call_learner(
        "induction score of a perfect induction head", score_fn, sharp.clone(), n, may_return_none=True
    )
    if error is not None:
        return error
    if _as_float(value) != 1.0 and not (isinstance(_as_float(value), float) and abs(_as_float(value) - 1) < 1e-6):
        results.append(failed("induction score of a perfect induction head", f"is {value!r}, expected 1.0"))
    return combine("check_induction_score", results)


def _matches(got: Any, reference: torch.Tensor) -> bool:
    return isinstance(got, torch.Tensor) and got.shape == reference.shape and torch.allclose(got, reference, atol=1e-5)


def check_zero_head(zero_fn: Callable[[torch.Tensor, int], Any]) -> CheckResult:
    """``zero_fn(z, head)`` for z (B, heads, T, head size): a copy of z with that head's output set to 0."""
    from ...inspect.ablation import zero_head

    require_callable(zero_fn, "zero_fn", "check_zero_head")
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(2, 4, 5, 6, generator=gen)  # every axis a different length, so a wrong axis shows
    results = []
    for head in (1, 3):
        name = f"zero_head(z, {head}) for z of shape (batch 2, heads 4, T 5, head size 6)"
        given = z.clone()
        value, error = call_learner(name, zero_fn, given, head)
        if error is not None:
            return error
        expected = zero_head(z, head)
        slips = {
            "it zeroed position {h} of every head: the heads are dim 1 of (B, heads, T, head size), z[:, head]": (
                lambda t, head=head: t.index_fill(2, torch.tensor([head]), 0.0)
            ),
            "it zeroed one feature of every head (the last axis): zero all of head {h}'s output, z[:, head]": (
                lambda t, head=head: t.index_fill(3, torch.tensor([head]), 0.0)
            ),
            "it zeroed every head except {h}: switch off only the one head": (
                lambda t, head=head: t - t.index_fill(1, torch.tensor([head]), 0.0)
            ),
            "every head is zeroed: only head {h} should be": lambda t: torch.zeros_like(t),
            "nothing changed: set head {h}'s output to 0 and return the changed copy": lambda t: t,
        }
        hint = next((h.format(h=head) for h, slip in slips.items() if _matches(value, slip(z))), None)
        result = compare_tensors(name, value, expected, atol=0, rtol=0, hint=hint, show=False)
        if result and not torch.equal(given, z):
            result = failed(
                name, "is right, but it changed z in place", "z.clone() first: the hook's z may still be needed", False
            )
        results.append(result.show())
    return combine("check_zero_head", results)


def _lens_models() -> list[tuple[str, torch.nn.Module]]:
    from ...model import GPTConfig

    out = []
    for norm in ("pre", "post"):
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0, norm=norm)
        model = GPT(config).eval()
        if "ln_f" in model.transformer:  # a LayerNorm that is not the identity, so skipping it shows
            with torch.no_grad():
                model.transformer.ln_f.weight.uniform_(0.5, 2.0)
        out.append((f"a {norm}-LN model", model))
    return out


def check_unembed(unembed_fn: Callable[[Any, torch.Tensor], Any]) -> CheckResult:
    """``unembed_fn(model, resid)`` for resid (B, T, C): the logits the model would output from that stream."""
    from ...inspect.lens import unembed

    require_callable(unembed_fn, "unembed_fn", "check_unembed")
    results = []
    for what, model in _lens_models():
        resid = 3.0 * torch.randn(1, 5, model.config.n_embd, generator=torch.Generator().manual_seed(3))
        name = f"unembed(model, resid) on {what}"
        with torch.no_grad():
            value, error = call_learner(name, unembed_fn, model, resid.clone())
            if error is not None:
                return error
            expected = unembed(model, resid)
            slips = {
                "a pre-LN model's stream has not been through the final LayerNorm yet: apply "
                "model.transformer.ln_f first, as the forward pass does": model.lm_head(resid),
                "those are probabilities: return the logits (no softmax)": expected.softmax(-1),
                "those are log-probabilities: return the logits (no log_softmax)": expected.log_softmax(-1),
            }
            hint = next(
                (h for h, slip in slips.items() if _matches(value, slip) and not _matches(value, expected)), None
            )
            results.append(compare_tensors(name, value, expected, hint=hint))
    return combine("check_unembed", results)


# ------------------------------------------------------------------ part 2: attribution and circuits
def _circuit_models() -> list[tuple[str, torch.nn.Module]]:
    """Two pre-LN attention-only models, vocab = n_embd = 16 (transposes still multiply), LayerNorms not identity."""
    from ...model import GPT, GPTConfig

    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0, attn_only=True)
        model = GPT(cfg).double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
            for ln in (model.transformer.ln_f, model.transformer.h[0].ln_1):
                ln.weight.uniform_(0.5, 2.0)
        out.append((f"random model #{seed + 1}", model))
    return out


def _slip_hint(value: Any, expected: torch.Tensor, slips: dict[str, torch.Tensor]) -> str | None:
    if not isinstance(value, torch.Tensor) or value.shape != expected.shape:
        return None
    if torch.allclose(value.double(), expected, atol=1e-6):
        return None
    return next((h for h, s in slips.items() if torch.allclose(value.double(), s, atol=1e-6)), None)


def check_dla_projection(project_fn: Callable[..., Any]) -> CheckResult:
    """``project_fn(model, parts, final_resid, right, wrong)``: parts (n, C), final_resid (C,) -> (n,).

    Each part's direct contribution to ``logit[right] - logit[wrong]`` through ``ln_f`` with the scale frozen
    at the final stream's, and the unembedding.
    """
    from ...inspect.attribution import project_to_logit_diff

    require_callable(project_fn, "project_fn", "check_dla_projection")
    results = []
    for what, model in _circuit_models():
        gen = torch.Generator().manual_seed(5)
        parts = 2.0 * torch.randn(6, 16, generator=gen, dtype=torch.float64)
        final = parts.sum(0) + torch.randn(16, generator=gen, dtype=torch.float64)
        right, wrong = 3, 11
        name = f"dla_projection on {what} (6 parts, C = 16)"
        with torch.no_grad():
            value, error = call_learner(name, project_fn, model, parts.clone(), final.clone(), right, wrong)
            if error is not None:
                return error
            expected = project_to_logit_diff(model, parts, final, right, wrong)
            ln, w_u = model.transformer.ln_f, model.lm_head.weight
            d = w_u[right] - w_u[wrong]
            sigma = (final.var(unbiased=False) + ln.eps).sqrt()
            centred = parts - parts.mean(-1, keepdim=True)
            project = ln.weight / sigma  # what the frozen LayerNorm multiplies a centred part by
            flipped = w_u[:, right] - w_u[:, wrong]
            slips = {
                "the unembedding is transposed: lm_head.weight is (vocab, C), so token t's direction is the row "
                "lm_head.weight[t], not the column [:, t]": (centred * project) @ flipped,
                "the final LayerNorm is missing: centre each part, divide by the frozen scale, multiply by "
                "ln_f.weight, then project": parts @ d,
                "each part must be centred (LayerNorm subtracts the mean of the C features)": (parts * project) @ d,
                "ln_f.weight is missing: multiply by it after dividing by the scale": (centred / sigma) @ d,
                "the scale is the part's own: freeze it at the final stream's (sqrt(var(final_resid) + eps)), the one "
                "the real forward pass divided by": ln(parts) @ d - ln.bias @ d,
                "ln_f(parts) normalises each part by its own scale and adds ln_f.bias to every part: use the final "
                "stream's frozen scale and leave the bias out (it belongs to no part)": ln(parts) @ d,
                "ln_f.bias belongs to no part: leave it out": (centred * project) @ d + ln.bias @ d,
                "the sign is flipped: right minus wrong": -expected,
            }
            results.append(compare_tensors(name, value, expected, atol=1e-6, hint=_slip_hint(value, expected, slips)))
    return combine("check_dla_projection", results)


def check_full_ov_circuit(ov_fn: Callable[..., Any]) -> CheckResult:
    """``ov_fn(model, head)``: the (vocab, vocab) full OV circuit of a layer-0 head (row: source token)."""
    from ...inspect.circuits import _head_weights, full_ov_circuit

    require_callable(ov_fn, "ov_fn", "check_full_ov_circuit")
    results = []
    for what, model in _circuit_models():
        for head in (0, 1):
            name = f"full OV circuit of head {head} on {what} (vocab 16)"
            with torch.no_grad():
                value, error = call_learner(name, ov_fn, model, head)
                if error is not None:
                    return error
                expected = full_ov_circuit(model, head)
                w = _head_weights(model, 0, head)
                e, w_u = model.transformer.wte.weight, model.lm_head.weight
                x = model.transformer.h[0].ln_1(e)
                slips = {
                    "the matrix is transposed: rows are the source token (the one attended to), columns the "
                    "logits it raises": expected.T,
                    "ln_1 is missing: the head reads LayerNorm(embedding), not the raw embedding": (
                        (e @ w["W_V"] + w["b_V"]) @ w["W_O"] @ w_u.T
                    ),
                    "the value bias is missing: c_attn's bias has a slice for each head's values": (
                        x @ w["W_V"] @ w["W_O"] @ w_u.T
                    ),
                    "c_proj's bias belongs to no head: leave it out": (
                        expected + (model.transformer.h[0].attn.c_proj.bias @ w_u.T)[None]
                    ),
                    "W_O is transposed: the head's slice of c_proj.weight is its columns, used as x @ weight.T": (
                        (x @ w["W_V"] + w["b_V"])
                        @ model.transformer.h[0].attn.c_proj.weight[head * 8 : (head + 1) * 8]
                        @ w_u.T
                    ),
                }
                results.append(
                    compare_tensors(name, value, expected, atol=1e-6, hint=_slip_hint(value, expected, slips))
                )
    return combine("check_full_ov_circuit", results)


def _full_ov():
    from ...inspect.circuits import full_ov_circuit

    return full_ov_circuit  # full_ov_circuit(model, head, layer=0)


def _dla_projection():
    from ...inspect.attribution import project_to_logit_diff

    return project_to_logit_diff  # dla_projection(model, parts, final_resid, right, wrong)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {"dla_projection": _dla_projection, "full_ov_circuit": _full_ov}
