"""Notebook 10's reading questions: built from two-speaker exchanges, balanced, answers read from a model's text."""

from dataclasses import dataclass

import pytest

from gptmini.speaker_qa import QUESTIONS, extract_speaker, speaker_questions
from gptmini.zeroshot import extract_answer


@dataclass
class FakePlay:
    lines: list


PLAY = FakePlay(
    [
        ("ROMEO", "But soft, what light?"),
        ("JULIET", "Ay me!"),
        ("ROMEO", "She speaks."),
        ("ROMEO", "O, speak again, bright angel!"),  # the same speech: no exchange starts here
        ("NURSE", "Madam!"),
        ("Servant", "Here, sir."),  # a role, not a name in capitals: never asked about
        ("JULIET", "I come, anon."),
        ("NURSE", "Your lady mother is coming to your chamber."),
    ]
)


def test_items_are_exchanges_with_both_names_and_alternate_questions():
    items = speaker_questions([PLAY], 3, seed=1)
    exchanges = {(i.candidates, i.passage) for i in items}
    assert exchanges == {
        (("ROMEO", "JULIET"), "ROMEO:\nBut soft, what light?\n\nJULIET:\nAy me!\n"),
        (("JULIET", "ROMEO"), "JULIET:\nAy me!\n\nROMEO:\nShe speaks.\n"),
        (("JULIET", "NURSE"), "JULIET:\nI come, anon.\n\nNURSE:\nYour lady mother is coming to your chamber.\n"),
    }
    assert [i.question for i in items] == [QUESTIONS[0], QUESTIONS[1], QUESTIONS[0]]
    for item in items:
        first = item.question == QUESTIONS[0]
        assert item.answer == item.candidates[0 if first else 1] and item.label == (0 if first else 1)


def test_fits_and_line_length_drop_long_exchanges_and_too_few_is_a_clear_error():
    short = speaker_questions([PLAY], 2, max_line_chars=25)
    assert all("chamber" not in i.passage for i in short)
    fitting = speaker_questions([PLAY], 1, fits=lambda item: len(item.passage) < 40)  # only the shortest exchange fits
    assert fitting[0].passage == "JULIET:\nAy me!\n\nROMEO:\nShe speaks.\n"
    with pytest.raises(ValueError, match="only 3 exchanges"):
        speaker_questions([PLAY], 4)
    with pytest.raises(ValueError, match="at least 1"):
        speaker_questions([PLAY], 0)


@pytest.mark.parametrize(
    "text, expected",
    [
        (" ROMEO", "ROMEO"),
        ("\nROMEO:\nI know not how to tell thee who I am.", "ROMEO"),  # newline first, then a speaker tag
        ("\n\nFIRST CITIZEN:\nWe are accounted poor.", "FIRST CITIZEN"),
        (" JULIET, I think.\nQ: Who speaks second?", "JULIET"),
        ("\nI know not, my lord.", "I know not, my lord."),  # no name: the words, as extract_answer reads them
        ("\nQ: Who speaks first?\nA: ROMEO", ""),  # a new question before any answer
        ("\n\n", ""),
    ],
)
def test_extract_speaker_takes_a_tag_as_the_name(text, expected):
    assert extract_speaker(text) == expected


def test_extract_answer_would_have_skipped_the_tag():
    # why extract_speaker exists: for "who" questions the tag is the answer, and extract_answer drops it
    assert extract_answer("\nROMEO:\nI know not.") == "I know not."
    assert extract_speaker("\nROMEO:\nI know not.") == "ROMEO"


def test_the_validation_plays_give_150_distinct_balanced_questions():
    from gptmini.data import shakespeare, shakespeare_plays, train_val_split

    _, val_text = train_val_split(shakespeare())
    plays = [p for p in shakespeare_plays() if p.text in val_text]
    assert [p.title for p in plays] == ["Othello", "Romeo and Juliet", "Timon of Athens"]
    items = speaker_questions(plays, 150)
    assert len({i.passage for i in items}) == 150
    assert sum(i.label == 0 for i in items) == 75  # always naming the first speaker is right exactly half the time
    for item in items:
        first, second = item.candidates
        assert first != second and item.passage.startswith(f"{first}:\n") and f"\n\n{second}:\n" in item.passage
        assert item.passage in val_text  # the exchange is the corpus's own text, not a rearrangement
