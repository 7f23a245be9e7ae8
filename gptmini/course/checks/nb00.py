"""Notebook 00 (setup and a tour): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

import torch

from ...config import GPTConfig
from ._report import CheckResult, call_learner, combine, compare_tensors, failed, passed, require_callable

__all__ = ["approx_params", "next_token_probs", "check_approx_params", "check_next_token_probs"]


SIZE_TOLERANCE = 0.01  # the formula may be 1 % off the exact count


def approx_params(cfg) -> int:
    """Embedding tables plus 12 C² per block: what the exercise asks for."""
    c = cfg.n_embd
    return (cfg.vocab_size + cfg.block_size) * c + cfg.n_layer * 12 * c**2


def _size_slips(cfg) -> dict[str, float]:
    v, t, c, n = cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_layer
    return {
        "12 C² is one block: multiply it by n_layer": (v + t) * c + 12 * c**2,
        "4 C² is attention alone (q, k, v and its projection): the MLP adds 8 C² (C -> 4C -> C)": (v + t) * c
        + 4 * n * c**2,
        "8 C² is the MLP alone: attention adds 4 C² (q, k, v and its projection)": (v + t) * c + 8 * n * c**2,
        "the output layer reuses the token table (weight tying): count V x C once": (2 * v + t) * c + 12 * n * c**2,
        "the embedding tables ((vocab_size + block_size) x n_embd) are missing": 12 * n * c**2,
    }


def check_approx_params(approx_fn: Callable[[Any], Any]) -> CheckResult:
    """``approx_fn(cfg)``: about the parameter count of ``GPT(cfg)``, within 1 % for GPT-1, GPT-2 and GPT-2 XL."""
    from ...sizes import count_params

    require_callable(approx_fn, "approx_fn", "check_approx_params")
    results = []
    for name in ("gpt1", "gpt2", "gpt2-xl"):
        cfg = GPTConfig.preset(name)
        what = f"approx_params for {name}"
        value, error = call_learner(what, approx_fn, cfg)
        if error is not None:
            return error
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        exact = count_params(cfg)
        if not isinstance(value, Real) or isinstance(value, bool):
            results.append(failed(what, f"is a {type(value).__name__}, expected a number"))
            continue
        off = (value - exact) / exact
        if abs(off) <= SIZE_TOLERANCE:
            results.append(passed(f"{what}: {value / 1e6:,.1f} M, within 1 % of the exact {exact / 1e6:,.1f} M"))
            continue
        hint = next((h for h, slip in _size_slips(cfg).items() if abs(value - slip) <= 1e-6 * abs(slip)), None)
        detail = f"is {value / 1e6:,.1f} M, {off:+.0%} off the exact {exact / 1e6:,.1f} M"
        results.append(failed(what, detail, hint))
    return combine("check_approx_params", results)


def next_token_probs(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (V,) of the token after the last position, from a model's logits (1, T, V)."""
    return logits[0, -1].softmax(dim=-1)


def check_next_token_probs(probs_fn: Callable[[torch.Tensor], Any]) -> CheckResult:
    """``probs_fn(logits)`` for logits (1, T, V): the next token's probabilities, a softmax of the last row."""
    require_callable(probs_fn, "probs_fn", "check_next_token_probs")
    gen = torch.Generator().manual_seed(0)
    results = []
    for t, v in ((5, 7), (3, 11)):  # T != V, so a wrong axis shows
        logits = 2.0 * torch.randn(1, t, v, generator=gen)
        what = f"next_token_probs for logits of shape (1, {t}, {v})"
        value, error = call_learner(what, probs_fn, logits.clone())
        if error is not None:
            return error
        expected = next_token_probs(logits)
        slips = {
            "that is the distribution after the FIRST token: the text's next token comes from the last "
            "position, logits[0, -1]": logits[0, 0].softmax(-1),
            "those are the logits (scores): a softmax turns them into probabilities that sum to 1": logits[0, -1],
            "those are log-probabilities: use softmax, not log_softmax": logits[0, -1].log_softmax(-1),
            "that softmax ran over the positions (dim 1): it must run over the vocabulary, dim=-1": logits.softmax(1)[
                0, -1
            ],
            "that is every position's distribution: keep only the last position's": logits[0].softmax(-1),
        }
        hint = None
        if isinstance(value, torch.Tensor):
            hint = next(
                (h for h, s in slips.items() if value.shape == s.shape and torch.allclose(value.float(), s, atol=1e-6)),
                None,
            )
        results.append(compare_tensors(what, value, expected, hint=hint))
    return combine("check_next_token_probs", results)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "approx_params": lambda: approx_params,
    "next_token_probs": lambda: next_token_probs,
}
