"""Metrics against hand-worked examples (SQuAD-style normalisation, EM, token F1, accuracy, perplexity)."""

import math

import pytest
import torch

from gptmini.metrics import accuracy, exact_match, normalize_answer, perplexity, token_f1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Tempest!", "tempest"),
        ("An apple, a pear and THE plum.", "apple pear and plum"),
        ("  theatre  ", "theatre"),  # "the" inside a word is not an article
        ("O, Romeo,\tRomeo!", "o romeo romeo"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_uses_normalisation_and_any_reference():
    assert exact_match("the Tempest.", "Tempest") == 1.0
    assert exact_match("Tempest", ["Hamlet", "a tempest"]) == 1.0
    assert exact_match("The Tempest storm", "Tempest") == 0.0


def test_token_f1_hand_worked():
    # prediction tokens [cat, sat, on, mat], reference [cat, on, mat]: 3 shared, P = 3/4, R = 1
    assert token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(2 * 0.75 * 1 / 1.75)
    # repeated tokens count at most as often as in the other answer: {to:2, be:1} vs {to:1, be:2} share 2
    assert token_f1("to to be", "to be be") == pytest.approx(2 / 3)
    assert token_f1("Hamlet", "Ophelia") == 0.0
    # best over references
    assert token_f1("cat on mat", ["dog", "the cat on a mat"]) == 1.0


def test_token_f1_empty_after_normalisation():
    # SQuAD 2.0's convention, chosen on purpose (SQuAD v1.1's script would give 0.0 for the first line)
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert token_f1("...", "") == 1.0 == exact_match("...", "")  # F1 agrees with exact match here
    assert token_f1("the", "cat") == 0.0  # one empty: wrong
    assert token_f1("cat", "the") == 0.0
    assert token_f1("the", ["cat", "an"]) == 1.0  # the best reference wins


def test_references_must_not_be_empty():
    with pytest.raises(ValueError, match="reference"):
        exact_match("x", [])


def test_accuracy():
    assert accuracy([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)
    assert accuracy(torch.tensor([0, 1]), torch.tensor([0, 1])) == 1.0
    assert accuracy(["a", "b"], ["a", "c"]) == 0.5
    with pytest.raises(ValueError, match="pair up"):
        accuracy([1], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_perplexity_hand_worked():
    # P = 1/2 then 1/4: average log-prob ln(1/8)/2, perplexity sqrt(8)
    assert perplexity(math.log(0.5) + math.log(0.25), 2) == pytest.approx(math.sqrt(8))
    # a uniform guess over V symbols has perplexity V
    assert perplexity(10 * math.log(1 / 65), 10) == pytest.approx(65)
    with pytest.raises(ValueError, match="positive"):
        perplexity(1.0, 2)
    with pytest.raises(ValueError, match="at least one"):
        perplexity(-1.0, 0)
