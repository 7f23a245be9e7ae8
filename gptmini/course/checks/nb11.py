"""Notebook 11 (inside the model): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...model import GPT
from ._report import CheckResult, call_learner, combine, compare_tensors, compare_values, failed, require_callable

__all__ = ["check_previous_token_score", "check_induction_score", "check_zero_head", "check_unembed"]


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


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {}
