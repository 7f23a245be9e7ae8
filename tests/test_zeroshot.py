"""Zero-shot scoring against hand-computed log-probabilities, the exact format of every prompt, answers from a model
that starts on a new line, standard errors, PMI scoring and calibrated classification."""

import math

import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.tokenizers import CharTokenizer
from gptmini.zeroshot import (
    ENGLISH_FRENCH_WORDS,
    ContinuationScore,
    answer,
    choose,
    classify_by_likelihood,
    classify_by_pmi,
    classify_by_similarity,
    cloze_choice,
    complete,
    describe_accuracy,
    extract_answer,
    few_shot_prompt,
    first_line,
    first_sentences,
    last_word_eval,
    mean_hidden_states,
    pmi_scores,
    qa_prompt,
    score_continuations,
    score_texts,
    shot_name,
    split_last_word,
    standard_error,
    start_ids,
    summarize,
    tldr_prompt,
    translate,
    translation_prompt,
    winograd,
)

ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:?!=\n_'"


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer(ALPHABET)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()


def hand_logprob(model, context, continuation):
    """The chain rule, one token at a time: sum_j log P(cont_j | everything before it), one model call each.

    A context too long for the window loses its beginning: the sequence is cut to its last block + 1
    tokens (so that all but the last token fit the window), and every token is conditioned on what is
    left before it.
    """
    block = model.config.block_size
    seq = (list(context) + list(continuation))[-(block + 1) :]
    first = len(seq) - len(continuation)
    total = 0.0
    with torch.no_grad():
        for pos in range(first, len(seq)):
            logits, _ = model(torch.tensor([seq[:pos]]))
            total += F.log_softmax(logits[0, -1].double(), dim=-1)[seq[pos]].item()
    return total


# ------------------------------------------------------------------------------- scoring
def test_scores_equal_the_hand_computed_chain_rule(model):
    g = torch.Generator().manual_seed(1)
    pairs = [
        ([3], [4]),
        ([1, 2, 3, 4, 5], [6, 7, 8]),
        (torch.randint(0, 60, (10,), generator=g).tolist(), torch.randint(0, 60, (5,), generator=g).tolist()),
        (torch.randint(0, 60, (50,), generator=g).tolist(), torch.randint(0, 60, (4,), generator=g).tolist()),
        ([9], torch.randint(0, 60, (32,), generator=g).tolist()),  # the continuation fills the whole window
    ]
    scores = score_continuations(model, [c for c, _ in pairs], [x for _, x in pairs], batch_size=3)
    for (ctx, cont), score in zip(pairs, scores, strict=True):
        assert score.n_tokens == len(cont)
        assert score.logprob == pytest.approx(hand_logprob(model, ctx, cont), abs=1e-4)
    one_by_one = score_continuations(model, [c for c, _ in pairs], [x for _, x in pairs], batch_size=1)
    assert [s.logprob for s in one_by_one] == pytest.approx([s.logprob for s in scores], abs=1e-5)


def test_greedy_flag(model):
    context = [5, 6, 7]
    greedy = model.generate(context, 4, temperature=0)[3:]
    assert score_continuations(model, [context], [greedy])[0].greedy
    with torch.no_grad():
        logits, _ = model(torch.tensor([context + greedy[:3]]))
    worst = int(logits[0, -1].argmin())
    assert not score_continuations(model, [context], [greedy[:3] + [worst]])[0].greedy


def test_scoring_rejects_bad_pairs(model):
    with pytest.raises(ValueError, match="context"):
        score_continuations(model, [[]], [[1]])
    with pytest.raises(ValueError, match="at least one token"):
        score_continuations(model, [[1]], [[]])
    with pytest.raises(ValueError, match="does not fit"):
        score_continuations(model, [[1]], [[2] * 33])
    with pytest.raises(ValueError, match="pairs"):
        score_continuations(model, [[1], [2]], [[3]])


def test_mean_logprob():
    assert ContinuationScore(-6.0, 3, False).mean_logprob == -2.0


def test_score_texts_moves_the_space_and_uses_start_ids(model, tok):
    [score] = score_texts(model, tok, ["to be "], ["or"])
    assert score.logprob == pytest.approx(hand_logprob(model, tok.encode("to be"), tok.encode(" or")), abs=1e-4)
    assert start_ids(tok) == tok.encode("\n")
    [empty] = score_texts(model, tok, [""], ["or"])
    assert empty.logprob == pytest.approx(hand_logprob(model, tok.encode("\n"), tok.encode("or")), abs=1e-4)


def test_choose_picks_the_highest_score(model, tok):
    choices = ["through", "yonder", "window", "x"]
    best, scores = choose(model, tok, "what light ", choices)
    expected = [hand_logprob(model, tok.encode("what light"), tok.encode(" " + c)) for c in choices]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert best == max(range(4), key=expected.__getitem__)
    best_norm, means = choose(model, tok, "what light ", ["through", "yonder"], normalize=True)
    assert means == pytest.approx([expected[0] / 8, expected[1] / 7], abs=1e-4)


# ------------------------------------------------------------------------------- cloze, CBT, Winograd
def test_split_last_word():
    assert split_last_word("to be or not to be") == ("to be or not to", " be")
    assert split_last_word("so quick bright things come to confusion.\n") == (
        "so quick bright things come to",
        " confusion.",
    )
    with pytest.raises(ValueError, match="two words"):
        split_last_word("alone")


def test_last_word_eval_matches_hand_computation(model, tok):
    texts = ["to be or not to be", "a rose by any other name", "all the world is a stage"]
    total, tokens, right = 0.0, 0, 0
    for text in texts:
        context, word = split_last_word(text)
        ctx, target = tok.encode(context), tok.encode(word)
        total += hand_logprob(model, ctx, target)
        tokens += len(target)
        right += model.generate(ctx, len(target), temperature=0)[len(ctx) :] == target
    result = last_word_eval(model, tok, texts)
    assert result["n"] == 3
    assert result["perplexity"] == pytest.approx(math.exp(-total / tokens), rel=1e-4)
    assert result["accuracy"] == right / 3


def test_last_word_accuracy_on_a_memorised_line(tok):
    """A model that has learnt one line by heart gets its last word right and a wrong word wrong."""
    torch.manual_seed(0)
    parrot = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    data = torch.tensor(tok.encode("to be or not to be that is the question\n" * 8))
    opt = torch.optim.AdamW(parrot.parameters(), lr=1e-2)
    for _ in range(150):
        starts = torch.randint(len(data) - 33, (16,))
        x = torch.stack([data[i : i + 32] for i in starts])
        y = torch.stack([data[i + 1 : i + 33] for i in starts])
        opt.zero_grad()
        parrot(x, y)[1].backward()
        opt.step()
    parrot.eval()
    good = last_word_eval(parrot, tok, ["that is the question\nto be or not to be that is the question"])
    bad = last_word_eval(parrot, tok, ["that is the question\nto be or not to be that is the answer"])
    assert good["accuracy"] == 1.0 and bad["accuracy"] == 0.0
    assert good["perplexity"] < 1.5 < bad["perplexity"]


def test_cloze_choice_scores_choice_plus_rest_of_query(model, tok):
    context, query = "the king is dead. ", "long live the XXXXX of england."
    choices = ["king", "queen", "dog"]
    best, scores = cloze_choice(model, tok, context, query, choices)
    prefix = tok.encode("the king is dead. long live the")
    expected = [hand_logprob(model, prefix, tok.encode(" " + c + " of england.")) for c in choices]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert best == max(range(3), key=expected.__getitem__)
    with pytest.raises(ValueError, match="exactly once"):
        cloze_choice(model, tok, context, "no blank here", choices)


def test_winograd_full_and_partial(model, tok):
    sentence = "cup in box: _ is big."  # short: the tiny model's window is 32 characters
    cands = ["cup", "box"]
    scores = winograd(model, tok, sentence, cands)
    start = tok.encode("\n")
    full = [hand_logprob(model, start, tok.encode(sentence.replace("_", c))) for c in cands]
    partial = [hand_logprob(model, tok.encode("cup in box: " + c), tok.encode(" is big.")) for c in cands]
    assert scores.full == pytest.approx(full, abs=1e-4)
    assert scores.partial == pytest.approx(partial, abs=1e-4)
    assert scores.full_choice == max(range(2), key=full.__getitem__)
    assert scores.partial_choice == max(range(2), key=partial.__getitem__)
    with pytest.raises(ValueError, match="placeholder"):
        winograd(model, tok, "no placeholder", cands)


# ------------------------------------------------------------------------------- zero-shot classification
def test_classify_by_likelihood(model, tok):
    texts = ["i love it", "i hate it"]
    preds, scores = classify_by_likelihood(model, tok, texts, ["good", "bad"], template="{text}\nReview:")
    assert scores.shape == (2, 2)
    for i, text in enumerate(texts):
        for j, label in enumerate(["good", "bad"]):
            expected = hand_logprob(model, tok.encode(text + "\nReview:"), tok.encode(" " + label))
            assert scores[i, j].item() == pytest.approx(expected, abs=1e-4)
        assert preds[i] == int(scores[i].argmax())
    with pytest.raises(ValueError, match="text"):
        classify_by_likelihood(model, tok, texts, ["a"], template="no slot")


def test_mean_hidden_states_ignore_padding(model, tok):
    texts = ["short", "a much longer line of text"]
    reps = mean_hidden_states(model, tok, texts)
    for i, text in enumerate(texts):
        with torch.no_grad():
            x = model.hidden_states(torch.tensor([tok.encode(text)]))
        torch.testing.assert_close(reps[i], x[0].mean(dim=0), rtol=1e-5, atol=1e-5)


def test_classify_by_similarity(model, tok):
    labels = ["kings and queens", ["mirth", "merry jest"]]
    preds, sims = classify_by_similarity(model, tok, ["kings and queens", "mirth"], labels)
    assert sims.shape == (2, 2)
    assert sims[0, 0].item() == pytest.approx(1.0, abs=1e-5)  # identical text: cosine 1
    reps = mean_hidden_states(model, tok, ["mirth", "mirth", "merry jest"])
    expected = F.cosine_similarity(reps[0], (reps[1] + reps[2]) / 2, dim=0)
    assert sims[1, 1].item() == pytest.approx(expected.item(), abs=1e-5)
    assert preds == sims.argmax(dim=1).tolist()


# ------------------------------------------------------------------------------- prompts
def test_tldr_prompt():
    assert tldr_prompt("Romeo meets Juliet.  \n") == "Romeo meets Juliet.\nTL;DR:"


def test_translation_prompt():
    pairs = [("sea otter", "loutre de mer"), ("cheese", "fromage")]
    assert translation_prompt(pairs, "good night") == "sea otter = loutre de mer\ncheese = fromage\ngood night ="


def test_qa_prompt():
    examples = [("Who wrote Hamlet?", "Shakespeare")]
    expected = "Q: Who wrote Hamlet?\nA: Shakespeare\nQ: Where is Elsinore?\nA:"
    assert qa_prompt(examples, "Where is Elsinore?") == expected
    with_context = qa_prompt([], "Who is the prince?", context="Hamlet is the prince of Denmark.")
    assert with_context == "Hamlet is the prince of Denmark.\nQ: Who is the prince?\nA:"


def test_few_shot_prompts():
    examples = [("sea otter", "loutre de mer"), ("peppermint", "menthe poivree")]
    desc = "Translate English to French:"
    assert few_shot_prompt(desc, examples, "cheese", k=0) == "Translate English to French:\ncheese =>"
    assert few_shot_prompt(desc, examples, "cheese", k=1) == (
        "Translate English to French:\nsea otter => loutre de mer\ncheese =>"
    )
    assert few_shot_prompt(desc, examples, "cheese") == (
        "Translate English to French:\nsea otter => loutre de mer\npeppermint => menthe poivree\ncheese =>"
    )
    assert few_shot_prompt("", examples, "cheese", k=1, sep=":") == "sea otter: loutre de mer\ncheese:"
    assert [shot_name(k) for k in (0, 1, 5)] == ["zero-shot", "one-shot", "few-shot"]
    with pytest.raises(ValueError, match="between 0"):
        few_shot_prompt(desc, examples, "cheese", k=3)


def test_first_sentences():
    text = " It was cold. Who goes there? Stand! Unfold yourself. More"
    assert first_sentences(text) == "It was cold. Who goes there? Stand!"
    assert first_sentences("no end in sight") == "no end in sight"
    assert first_sentences("One. Two.", n=1) == "One."


# ------------------------------------------------------------------------------- generation recipes
def test_summarize_samples_top2_for_100_tokens_and_keeps_3_sentences(model, tok):
    article = "the queen is dead. the king weeps."
    prompt = tok.encode(tldr_prompt(article))
    sampled = model.generate(prompt, 100, temperature=1.0, top_k=2, seed=3)[len(prompt) :]
    assert summarize(model, tok, article, seed=3) == first_sentences(tok.decode(sampled), 3)


def test_translate_and_answer_are_greedy_to_the_end_of_line(model, tok):
    pairs = [("sea", "mer"), ("cat", "chat")]
    prompt = translation_prompt(pairs, "dog")
    ids = tok.encode(prompt)
    greedy = tok.decode(model.generate(ids, 40, temperature=0)[len(ids) :])
    assert translate(model, tok, pairs, "dog") == greedy.split("\n")[0].strip()
    ids = tok.encode(qa_prompt([("who", "me")], "why"))
    greedy = tok.decode(model.generate(ids, 20, temperature=0)[len(ids) :])
    assert answer(model, tok, [("who", "me")], "why", extract=first_line)[0] == greedy.split("\n")[0].strip()
    greedy = tok.decode(model.generate(tok.encode("ab"), 5, temperature=0)[2:])
    assert complete(model, tok, "ab", 5, stop="\n") == greedy.split("\n")[0]


# ----------------------------------------- answers from a model that starts on a new line, honest numbers
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
    # cut at the first newline
    assert answer(speaker, tok, examples, "who is she", max_new_tokens=30, extract=first_line)[0] == ""
    got, raw = answer(speaker, tok, examples, "who is she", max_new_tokens=30)
    assert got == "Miranda"
    assert raw == "\nHAMLET:\nMiranda\nQ: who"
    assert speaker.prompts[-1] == qa_prompt(examples, "who is she")


def test_ask_on_a_real_model_is_its_greedy_text_extracted(model, tok):
    prompt = qa_prompt([("who", "me")], "why")
    ids = tok.encode(prompt)
    greedy = tok.decode(model.generate(ids, 20, temperature=0)[len(ids) :])
    assert answer(model, tok, [("who", "me")], "why") == (extract_answer(greedy), greedy)


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
