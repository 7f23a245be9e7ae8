"""Notebook 10 (zero- and few-shot): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ._cases import Case, run_cases
from ._report import (
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    compare_values,
    failed,
    passed,
    require_callable,
)

__all__ = [
    "check_continuation_logprob",
    "check_token_f1",
    "check_training_flops",
    "check_bloom_filter",
    "check_few_shot_prompt",
    "check_calibrated_choice",
]


def _bloom_items(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i} gram of eight words in a row {i * 7}" for i in range(n)]


def check_bloom_filter(bloom_class: type, num_bits: int = 2000, num_hashes: int = 4) -> CheckResult:
    """``bloom_class(num_bits, num_hashes)`` with ``add(item)`` and ``item in filter``: a working Bloom filter.

    Added items must always be found (no false negatives); 200 items in 2,000 bits with 4 hashes should
    wrongly "find" about 1 - 2 % of items never added, as gptmini's ``BloomFilter`` does.
    """
    if not isinstance(bloom_class, type):
        raise TypeError(f"check_bloom_filter expects your class (not an instance), got {type(bloom_class).__name__}")
    bloom, error = call_learner(
        "your Bloom filter(num_bits, num_hashes)", bloom_class, num_bits, num_hashes, may_return_none=True
    )
    if error is not None:
        return error
    added, others = _bloom_items("seen", 200), _bloom_items("unseen", 2000)
    for item in added:
        _, error = call_learner("add(item)", bloom.add, item, may_return_none=True)
        if error is not None:
            return error
    found, error = call_learner(
        "item in filter", lambda items: [item in bloom for item in items], added + others, may_return_none=True
    )
    if error is not None:
        return error
    missing = sum(not f for f in found[: len(added)])
    false_rate = sum(found[len(added) :]) / len(others)
    expected_rate = (1 - math.exp(-num_hashes * len(added) / num_bits)) ** num_hashes  # about 1.2 %
    if missing:
        return failed(
            "your Bloom filter",
            f"lost {missing} of {len(added)} added items",
            "add must set all k bits of the item, and `in` must read the very same k positions",
        )
    if false_rate > 0.5:
        return failed(
            "your Bloom filter",
            f"says {false_rate:.0%} of items never added are present",
            "an item is present only if ALL its k bits are set (all(...), not any(...))",
        )
    if false_rate > 5 * expected_rate + 0.01:
        return failed(
            "your Bloom filter",
            f"has a false-positive rate of {false_rate:.1%}, expected about {expected_rate:.1%}",
            "use k different positions per item (k hash functions, or double hashing), and check all of them",
        )
    return passed(
        f"your Bloom filter finds all {len(added)} added items and wrongly finds {false_rate:.1%} of "
        f"{len(others)} others (theory: {expected_rate:.1%})"
    )


def check_continuation_logprob(logprob_fn: Callable[..., float], model) -> CheckResult:
    """``logprob_fn(model, context_ids, continuation_ids)`` -> Σ log P(continuation token | everything before)."""
    from ... import zeroshot

    require_callable(logprob_fn, "logprob_fn", "check_continuation_logprob")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    results = []
    for n_ctx, n_cont in ((5, 1), (4, 3), (1, 2)):
        context = torch.randint(vocab, (n_ctx,), generator=g).tolist()
        continuation = torch.randint(vocab, (n_cont,), generator=g).tolist()
        what = f"log P(continuation) with {n_ctx} context and {n_cont} continuation tokens"
        value, error = call_learner(what, logprob_fn, model, list(context), list(continuation))
        if error is not None:
            return error
        expected = zeroshot.score_continuations(model, [context], [continuation])[0].logprob
        hint = None
        try:
            v = float(value)
            if v > 0:
                hint = "a log-probability is <= 0: use log_softmax, and sum (not negate) it"
            elif not math.isclose(v, expected, rel_tol=1e-4, abs_tol=1e-5):
                hint = (
                    "continuation token j is scored by the logits one position *before* it; "
                    "sum over the continuation's tokens only, not the context's"
                )
        except (TypeError, ValueError):
            pass
        results.append(
            compare_values(what, value if not isinstance(value, torch.Tensor) else float(value), expected, hint)
        )
    return combine("check_continuation_logprob", results)


def _logprob(model, context: list[int], continuation: list[int]) -> float:
    from ...zeroshot import score_continuations

    return score_continuations(model, [context], [continuation])[0].logprob


def calibrated_choice(model, context_ids, choices_ids, neutral_ids) -> tuple[int, list[float]]:
    """GPT-3's calibrated score (its §2.4): log P(choice | context) − log P(choice | neutral), e.g. "Answer:".

    Returns the index of the highest score and the scores, one per choice.
    """
    scores = [
        _logprob(model, list(context_ids), list(ids)) - _logprob(model, list(neutral_ids), list(ids))
        for ids in choices_ids
    ]
    return max(range(len(scores)), key=scores.__getitem__), scores


def _calibration_slips(model, context, choices, neutral) -> dict[str, list[float]]:
    """The scores that the usual slips of the calibrated classifier give (hint -> scores)."""
    given = [_logprob(model, context, c) for c in choices]
    prior = [_logprob(model, neutral, c) for c in choices]
    whole = [_logprob(model, context[:1], context[1:] + c) - _logprob(model, neutral[:1], neutral[1:] + c)
             for c in choices]  # fmt: skip
    return {
        "that is the plain likelihood, log P(choice | context): subtract how likely the same choice is after the "
        "neutral prompt alone": given,
        "the two terms are the wrong way round: the score is what the context adds, the conditional log-probability "
        "minus the neutral one": [p - g for g, p in zip(given, prior, strict=True)],
        "those sums include the prompts' own tokens: score the choice's tokens only, once after the context and "
        "once after the neutral prompt": whole,
        'the neutral term must be the choice after the neutral prompt (GPT-3 used "Answer:"), not the context '
        "after it": [g - _logprob(model, neutral, context) for g in given],
        "GPT-3 divides probabilities, so the log-probabilities subtract; a ratio of two log-probabilities means "
        "nothing": [g / p for g, p in zip(given, prior, strict=True)],
        "the calibration compares whole choices: sums of log-probabilities, not per-token means": [
            (g - p) / len(c) for g, p, c in zip(given, prior, choices, strict=True)
        ],
    }


def check_calibrated_choice(choice_fn: Callable[..., Any], model) -> CheckResult:
    """``choice_fn(model, context_ids, choices_ids, neutral_ids)`` -> (best index, scores): GPT-3's calibration.

    Each choice's score is log P(choice | context) − log P(choice | neutral prompt) (GPT-3 §2.4 divided by
    P(completion | "Answer:")), each a sum over the choice's own tokens; the best choice has the highest score.
    """
    require_callable(choice_fn, "choice_fn", "check_calibrated_choice")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(3)
    results = []
    for n_ctx, lengths in ((6, (1, 2, 3)), (3, (2, 2))):
        context = torch.randint(vocab, (n_ctx,), generator=g).tolist()
        neutral = torch.randint(vocab, (2,), generator=g).tolist()
        choices = [torch.randint(vocab, (n,), generator=g).tolist() for n in lengths]
        what = f"calibrated scores of {len(choices)} choices after {n_ctx} context tokens"
        value, error = call_learner(what, choice_fn, model, list(context), [list(c) for c in choices], list(neutral))
        if error is not None:
            return error
        best, expected = calibrated_choice(model, context, choices, neutral)
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            return failed(what, "should be the pair (index of the best choice, scores)")
        got_best, got = value
        try:
            got = [float(v) for v in got]
        except (TypeError, ValueError):
            return failed(what, f"scores should be numbers, one per choice, got {got!r}"[:200])
        hint = None
        if len(got) == len(expected) and not all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4) for a, b in
                                                 zip(got, expected, strict=True)):  # fmt: skip
            slips = _calibration_slips(model, context, choices, neutral)
            hint = next((h for h, v in slips.items() if all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)
                                                             for a, b in zip(got, v, strict=True))), None)  # fmt: skip
        scores = compare_tensors(what, torch.tensor(got), torch.tensor(expected), atol=1e-4, rtol=1e-4, hint=hint)
        results.append(scores)
        if scores:
            hint = "the best choice has the highest calibrated score" if got_best != best else None
            results.append(compare_values(f"the chosen index ({what})", got_best, best, hint))
    return combine("check_calibrated_choice", results)


_SHOTS = (("sea otter", "loutre de mer"), ("cheese", "fromage"), ("peppermint", "menthe poivrée"))


def _prompt_slips(description: str, examples, query: str, k: int) -> dict[str, str]:
    """The usual slips of a few-shot prompt, as the text they give, with the hint that names each one."""
    shown = list(examples[:k])
    head = [description] if description else []
    lines = [f"{x} => {y}" for x, y in shown]
    return {
        "\n".join([*head, *lines, f"{query} => "]): "the query line ends with the separator and nothing after it: "
        "the answer's leading space is the model's to write",
        "\n".join([*head, *[f"{x} => {y}" for x, y in examples], f"{query} =>"]): "k is how many solved examples the "
        "prompt shows: the first k, not all of them",
        "\n".join([*lines, f"{query} =>"]): "the task description comes first, on a line of its own",
        "\n".join([*head, *[f"{y} => {x}" for x, y in shown], f"{query} =>"]): "each example reads the English word, "
        "the separator, then its French: the same order as the query",
        " ".join([*head, *lines, f"{query} =>"]): "one line each: the description, every example, the query",
    }


def check_few_shot_prompt(prompt_fn: Callable[[str, Any, str, int], str]) -> CheckResult:
    """``prompt_fn(description, examples, query, k)`` must write GPT-3's prompt as gptmini's ``few_shot_prompt``
    does (" =>" between an English word and its French), and refuse a k larger than the examples."""
    from ...zeroshot import few_shot_prompt

    require_callable(prompt_fn, "prompt_fn", "check_few_shot_prompt")
    tries = [("Translate English to French:", 0), ("Translate English to French:", 1),
             ("Translate English to French:", 3), ("", 2)]  # fmt: skip
    results = []
    for description, k in tries:
        case = Case(
            f"prompt with k={k}" + ("" if description else ", no description"),
            (description, _SHOTS, "cat", k),
            few_shot_prompt(description, _SHOTS, "cat", k),
            {"slips": _prompt_slips(description, _SHOTS, "cat", k)},
        )
        value, error = call_learner(case.what, prompt_fn, *case.args)
        if error is not None:
            return error
        results.append(_judge_prompt(case, value))
    too_many = len(_SHOTS) + 1
    try:
        prompt_fn("Translate English to French:", _SHOTS, "cat", too_many)
    except ValueError:
        results.append(passed(f"k = {too_many} with {len(_SHOTS)} examples raises ValueError"))
    except Exception as err:  # noqa: BLE001 - the learner's code: say what it raised instead
        results.append(failed(f"k = {too_many} with {len(_SHOTS)} examples", f"raised {type(err).__name__}",
                              "raise ValueError, saying so"))  # fmt: skip
    else:
        results.append(failed(f"k = {too_many} with {len(_SHOTS)} examples", "gave a prompt",
                              "there are not that many examples to show: raise ValueError, saying so"))  # fmt: skip
    return combine("check_few_shot_prompt", results)


def _judge_prompt(case: Case, value: Any) -> CheckResult:
    hint = case.data["slips"].get(value) if isinstance(value, str) and value != case.expected else None
    return compare_values(case.what, value, case.expected, hint)


def check_token_f1(f1_fn: Callable[[str, str], float]) -> CheckResult:
    """``f1_fn(prediction, reference)`` must give SQuAD's token F1 (after normalising both strings)."""
    from ...metrics import token_f1

    pairs = (
        ("The Tempest", "tempest"),
        ("Prospero, Duke of Milan", "the Duke of Milan"),
        ("a rose by any other name", "rose"),
        ("Verona", "Padua"),
        ("to be or not to be", "to be"),
    )
    cases = (Case(f"F1({p!r}, {r!r})", (p, r), token_f1(p, r)) for p, r in pairs)
    return run_cases("check_token_f1", "f1_fn", f1_fn, cases, _judge_f1)


def _judge_f1(case: Case, value: Any) -> CheckResult:
    prediction, hint = case.args[0], None
    if isinstance(value, (int, float)) and value != case.expected and prediction.lower().startswith(("the", "a ")):
        hint = "normalise first: lower-case, drop punctuation and the articles a/an/the"
    return compare_values(case.what, float(value) if isinstance(value, int) else value, case.expected, hint)


def check_training_flops(flops_fn: Callable[[float, float], float]) -> CheckResult:
    """``flops_fn(n_params, n_tokens)`` must give the usual training-compute estimate ≈ 6·N·D (gptmini.sizes.flops)."""
    from ...sizes import flops

    runs = ((124e6, 10e9, "GPT-2 small on 10B tokens"), (175e9, 300e9, "GPT-3 on 300B tokens"))
    cases = (Case(f"training FLOPs of {name}", (n, d), flops(n, d)) for n, d, name in runs)
    return run_cases("check_training_flops", "flops_fn", flops_fn, cases, _judge_flops)


def _judge_flops(case: Case, value: Any) -> CheckResult:
    (n, d), hint = case.args, None
    try:
        v = float(value)
        if math.isclose(v, 2 * n * d, rel_tol=1e-6):
            hint = "2·N·D is the forward pass only; the backward pass costs about twice that again"
    except (TypeError, ValueError):
        pass
    return compare_values(case.what, float(value) if isinstance(value, int) else value, case.expected, hint)


def _continuation_logprob(model, context_ids: list[int], continuation_ids: list[int]) -> float:
    from ...zeroshot import score_continuations

    return score_continuations(model, [context_ids], [continuation_ids])[0].logprob


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "continuation_logprob": lambda: _continuation_logprob,
    "few_shot_prompt": lambda: _few_shot_prompt,
    "calibrated_choice": lambda: calibrated_choice,
}


def _few_shot_prompt(description: str, examples, query: str, k: int) -> str:
    from ...zeroshot import few_shot_prompt

    return few_shot_prompt(description, examples, query, k)
