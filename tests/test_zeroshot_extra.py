"""Answers from a model that starts on a new line, standard errors, PMI scoring and calibrated classification."""

import math

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.tokenizers import CharTokenizer
from gptmini.zeroshot import (
    ENGLISH_FRENCH_WORDS,
    answer,
    ask,
    classify_by_likelihood,
    classify_by_pmi,
    describe_accuracy,
    extract_answer,
    pmi_scores,
    qa_prompt,
    score_texts,
    standard_error,
)

ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:?!=\n_'"


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer(ALPHABET)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()


class SpeakerModel:
    """Writes what a play-trained model writes after "A:": a newline, a speaker tag, then the words."""

    def __init__(self, tok, continuation):
        self.tok, self.continuation = tok, continuation
        self.prompts = []

    def generate(self, ids, max_new_tokens, **kwargs):
        self.prompts.append(self.tok.decode(ids))
        return list(ids) + self.tok.encode(self.continuation)[:max_new_tokens]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\nHAMLET:\nThe prince of Denmark.\nQ: next", "The prince of Denmark."),
        ("\n\nFIRST CITIZEN: Verona, sir\n", "Verona, sir"),
        (" Miranda\nQ: Who", "Miranda"),
        ("\nA: Paris", "Paris"),
        ("\nQ: What is this?\nA: nothing", ""),
        ("Othello Q: who else", "Othello"),
        ("\n\n  \n", ""),
        ("I I I I I", "I I I I I"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_ask_survives_a_newline_first_where_answer_does_not(tok):
    speaker = SpeakerModel(tok, "\nHAMLET:\nMiranda\nQ: who")
    examples = [("who wrote it", "Shakespeare")]
    assert answer(speaker, tok, examples, "who is she", max_new_tokens=30) == ""  # cut at the first newline
    got, raw = ask(speaker, tok, examples, "who is she", max_new_tokens=30)
    assert got == "Miranda"
    assert raw == "\nHAMLET:\nMiranda\nQ: who"
    assert speaker.prompts[-1] == qa_prompt(examples, "who is she")


def test_ask_on_a_real_model_is_its_greedy_text_extracted(model, tok):
    prompt = qa_prompt([("who", "me")], "why")
    ids = tok.encode(prompt)
    greedy = tok.decode(model.generate(ids, 20, temperature=0)[len(ids) :])
    assert ask(model, tok, [("who", "me")], "why") == (extract_answer(greedy), greedy)


def test_standard_error():
    assert standard_error(0.5, 100) == pytest.approx(0.05)
    assert standard_error(1 / 3, 150) == pytest.approx(math.sqrt((1 / 3) * (2 / 3) / 150))
    assert standard_error(0.0, 10) == 0.0
    with pytest.raises(ValueError):
        standard_error(0.5, 0)
    with pytest.raises(ValueError):
        standard_error(1.5, 10)


def test_describe_accuracy_says_at_chance():
    assert describe_accuracy(50, 150, 1 / 3) == "33.3% ± 3.8% (n = 150; chance 33%): at chance: no better than guessing"
    assert describe_accuracy(80, 150, 1 / 3).endswith("above chance")
    assert describe_accuracy(10, 150, 1 / 3).endswith("below chance")
    assert describe_accuracy(30, 100, 0.25).endswith("at chance: no better than guessing")  # 1.2 SE above
    with pytest.raises(ValueError):
        describe_accuracy(11, 10, 0.5)


def test_pmi_scores_are_sums_means_and_differences(model, tok):
    context, choices = "to be or not to be that is the", [" question", " cat"]
    sums, means, pmi = pmi_scores(model, tok, context, choices, neutral_context="\n")
    given = score_texts(model, tok, [context] * 2, choices)
    prior = score_texts(model, tok, ["\n"] * 2, choices)
    assert sums == pytest.approx([s.logprob for s in given])
    assert means == pytest.approx([s.logprob / len(c) for s, c in zip(given, choices, strict=True)])
    assert pmi == pytest.approx([g.logprob - p.logprob for g, p in zip(given, prior, strict=True)])


def test_classify_by_pmi_removes_the_labels_prior(model, tok):
    texts = ["the cat sat", "a dog ran", "the sun is hot"]
    labels = ["yes", "no"]
    _, raw = classify_by_likelihood(model, tok, texts, labels, template="{text}\nAnswer:")
    _, prior = classify_by_likelihood(model, tok, ["none"], labels, template="{text}\nAnswer:")
    preds, values = classify_by_pmi(model, tok, texts, labels, template="{text}\nAnswer:", neutral_text="none")
    assert torch.allclose(values, raw - prior)
    assert preds == (raw - prior).argmax(dim=1).tolist()


def test_word_list_is_big_enough_for_a_standard_error_of_a_few_points():
    assert len(ENGLISH_FRENCH_WORDS) >= 104  # 4 shots + at least 100 test words
    assert all(len(pair) == 2 and all(pair) for pair in ENGLISH_FRENCH_WORDS)
    english, french = zip(*ENGLISH_FRENCH_WORDS, strict=True)
    assert len(set(english)) == len(english) and len(set(french)) == len(french)  # one right option each
    assert not [en for en, fr in ENGLISH_FRENCH_WORDS if en == fr]  # nothing to copy from the prompt
