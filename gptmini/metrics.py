"""Scores for the evaluations of notebooks 07 and 10: accuracy, perplexity, and SQuAD's EM / token F1.

Question answering is judged on *normalised* strings, as SQuAD does, so that "The Tempest." and
"tempest" count as the same answer: lower-case, drop punctuation and the articles a / an / the, and
collapse whitespace. Exact match then asks for equal strings; token F1 gives partial credit for overlap.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, remove punctuation, remove a/an/the, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _references(ground_truths: str | Sequence[str]) -> list[str]:
    refs = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
    if not refs:
        raise ValueError("need at least one reference answer (a string or a non-empty list of strings)")
    return refs


def exact_match(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in _references(ground_truths)))


def _f1(prediction: str, reference: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:  # see token_f1: both empty is 1.0 (SQuAD 2.0), one empty is 0.0
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """Harmonic mean of token precision and recall after normalisation; the best over the references.

    Tokens count as a multiset ("cat cat" against "cat" shares one token, not two), as in SQuAD. When an
    answer normalises to nothing (it was only "the", or only punctuation), the scripts disagree: SQuAD
    v1.1's ``f1_score`` finds no common token and returns 0, even when both are empty; SQuAD 2.0's
    ``compute_f1`` returns 1 if both are empty and 0 if one is. We follow SQuAD 2.0 on purpose: an empty
    answer to a question whose answer is empty is right, and it agrees with :func:`exact_match`, which
    scores two empty strings as equal (1.0) in both versions.
    """
    return max(_f1(prediction, ref) for ref in _references(ground_truths))


def accuracy(predictions: Iterable, labels: Iterable) -> float:
    """Fraction of positions where prediction == label (works for ints, strings, 0-d tensors)."""
    preds, labs = list(predictions), list(labels)
    if len(preds) != len(labs):
        raise ValueError(f"got {len(preds)} predictions for {len(labs)} labels; they must pair up one to one")
    if not preds:
        raise ValueError("accuracy of an empty set is undefined; pass at least one prediction")
    return sum(_as_item(p) == _as_item(y) for p, y in zip(preds, labs, strict=True)) / len(preds)


def _as_item(value):
    return value.item() if hasattr(value, "item") else value


def perplexity(total_logprob: float, n_tokens: int) -> float:
    """exp(-(sum of natural-log probabilities) / number of tokens): the model's average branching factor."""
    if n_tokens <= 0:
        raise ValueError(f"perplexity needs at least one scored token, got n_tokens={n_tokens}")
    if total_logprob > 1e-9:
        raise ValueError(f"a sum of log-probabilities cannot be positive (got {total_logprob}); pass log P, not -log P")
    return math.exp(-total_logprob / n_tokens)
