"""Notebook 00 (setup and a tour): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

import torch

from ...config import GPTConfig
from ._report import (
    STUB_MESSAGE,
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    raised,
    require_callable,
)

__all__ = [
    "approx_params",
    "next_token_probs",
    "sample",
    "check_approx_params",
    "check_next_token_probs",
    "check_sample",
]


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


def sample(model, ids, max_new_tokens: int, temperature: float = 1.0, generator=None) -> list[int]:
    """Write ``max_new_tokens`` tokens after ``ids``, one at a time: predict, draw, append, repeat.

    The model reads at most its last ``block_size`` tokens; the scores are divided by ``temperature`` before the
    softmax; each draw uses ``generator`` (on the CPU). Returns the prompt followed by the new tokens.
    """
    ids = [int(i) for i in ids]
    for _ in range(max_new_tokens):
        context = torch.tensor([ids[-model.config.block_size :]], device=model.device)
        with torch.no_grad():
            logits, _ = model(context)
        probs = next_token_probs(logits / temperature).cpu()
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return ids


def _sample_variant(model, ids, n: int, temperature: float, seed: int, slip: str) -> list[int]:
    """The sampling loop with one typical slip in it (what a learner's loop gives when it makes that slip)."""
    gen = torch.Generator().manual_seed(seed)
    ids, prompt = [int(i) for i in ids], [int(i) for i in ids]
    block = model.config.block_size
    for _ in range(n):
        window = {"no feedback": prompt, "oldest tokens": ids[:block]}.get(slip, ids[-block:])
        with torch.no_grad():
            logits, _ = model(torch.tensor([window]))
        scores = logits[0, -1]
        if slip == "greedy":
            ids.append(int(scores.argmax()))
            continue
        scaled = {"times temperature": scores * temperature, "after softmax": scores}.get(slip, scores / temperature)
        probs = scaled.softmax(-1)
        if slip == "after softmax":
            probs = probs / temperature
        ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    return ids


_SAMPLE_SLIPS = {
    "greedy": "that is always the likeliest token: writing *draws* the next token from the probabilities, so the "
    "same prompt can go on in different ways",
    "times temperature": "a temperature below 1 should sharpen the distribution and one above 1 flatten it: the "
    "temperature divides the scores before the softmax",
    "after softmax": "the temperature acts on the scores, before the softmax: scaling the probabilities changes "
    "nothing once the draw normalises them again",
    "no feedback": "every token was predicted from the prompt alone: each new token joins the context that the "
    "next prediction reads",
    "oldest tokens": "once the text is longer than the model's window, it must read the most recent block_size "
    "tokens, not the first ones",
}


def _sample_model():
    """A 1-layer GPT with a 6-token window and sharp, varied next-token distributions (scaled token table)."""
    from ...model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, block_size=6, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(5.0)  # next-token distributions neither uniform nor one-hot
    return model


def check_sample(sample_fn: Callable[..., Any]) -> CheckResult:
    """``sample_fn(model, ids, max_new_tokens, temperature, generator)`` -> the prompt and the new token ids.

    Each step: the last ``block_size`` ids, the last position's scores divided by the temperature, a softmax,
    one draw with ``generator``, appended. Compared draw for draw with gptmini's loop on a small model.
    """
    require_callable(sample_fn, "sample_fn", "check_sample")
    model = _sample_model()
    cases = (([1, 2], 3, 1.0, 0), ([3, 1, 4], 9, 0.5, 1), ([5], 8, 2.0, 2))  # the second outgrows the window
    results = []
    for prompt, n, temperature, seed in cases:
        what = f"sample({prompt}, {n} new tokens, temperature {temperature})"
        long = len(prompt) + n > model.config.block_size
        try:
            value = sample_fn(model, list(prompt), n, temperature, torch.Generator().manual_seed(seed))
        except NotImplementedError:
            return not_yet(what, STUB_MESSAGE)
        except Exception as err:  # the learner's loop: say where it failed, and why when the window is the cause
            hint = None
            if long and "block_size" in str(err):
                hint = "the model has positions for block_size tokens only: give it the most recent ones"
            return raised(what, err, hint)
        if value is None:
            return not_yet(what)
        if isinstance(value, torch.Tensor):
            value = value.flatten().tolist()
        expected = sample(model, prompt, n, temperature, torch.Generator().manual_seed(seed))
        hint = None
        if isinstance(value, (list, tuple)) and list(value) != expected:
            try:  # a second run with the same generator: the same draws, unless the loop draws without it
                value = [int(v) for v in value]
                again = [
                    int(v) for v in sample_fn(model, list(prompt), n, temperature, torch.Generator().manual_seed(seed))
                ]
            except Exception:  # noqa: BLE001 - not ids, or a second run that fails: compare as it is
                again = value
            order = sorted(_SAMPLE_SLIPS, key=lambda key: not (long and key == "oldest tokens"))  # the window first
            slips = {key: _sample_variant(model, prompt, n, temperature, seed, key) for key in order}
            hint = next((_SAMPLE_SLIPS[k] for k, v in slips.items() if v == value and v != expected), None)
            if hint is None and value == expected[len(prompt) :]:
                hint = "return the whole text: the prompt followed by the new tokens"
            elif hint is None and again != value:
                hint = "two runs with the same generator gave different tokens: draw with the generator you are given"
        results.append(compare_values(what, value, expected, hint))
    return combine("check_sample", results)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "approx_params": lambda: approx_params,
    "next_token_probs": lambda: next_token_probs,
    "sample": lambda: sample,
}
