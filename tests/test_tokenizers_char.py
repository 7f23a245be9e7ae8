"""CharTokenizer: one id per character, unknown characters are an error (or the explicit ``unk``)."""

import pytest

from gptmini.tokenizers import CharTokenizer, Tokenizer, load_tokenizer


def test_from_text_sorts_unique_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.itos == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.vocab_size == 8
    assert tok.stoi["h"] == 3
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode([3, 2, 4, 4, 5]) == "hello"
    assert tok.eos_token_id is None
    assert isinstance(tok, Tokenizer)


def test_round_trip_on_its_own_text():
    text = "To be, or not to be: that is the question.\nWhether 'tis nobler\tin the mind — to suffer"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


def test_unknown_character_names_it_and_suggests_unk():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError) as err:
        tok.encode("abz!")
    message = str(err.value)
    assert "'z'" in message and "'!'" in message and "unk=" in message


def test_explicit_unk_maps_unknown_characters():
    tok = CharTokenizer.from_text("abc", unk="?")
    assert "?" in tok.stoi
    assert tok.decode(tok.encode("abz")) == "ab?"
    with pytest.raises(ValueError, match="unk"):
        CharTokenizer(["a", "b"], unk="?")


def test_constructor_checks_its_vocabulary():
    assert CharTokenizer("cab").encode("abc") == [1, 2, 0]  # ids follow the given order
    with pytest.raises(ValueError, match="repeats"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")
    with pytest.raises(ValueError, match="outside"):
        CharTokenizer("ab").decode([2])


def test_token_strings_are_printable():
    tok = CharTokenizer.from_text("a b\n\t")
    assert tok.token_strings(tok.encode("a\n\tb ")) == ["a", "\\n", "\\t", "b", " "]


def test_save_and_load(tmp_path):
    tok = CharTokenizer.from_text("héllo wörld\n", unk="?")
    path = tok.save(tmp_path / "ckpt")
    assert path == tmp_path / "ckpt" / "tokenizer.json"
    again = load_tokenizer(tmp_path / "ckpt")
    assert isinstance(again, CharTokenizer)
    assert again.itos == tok.itos and again.unk == "?"
    assert again.encode("wörld!") == tok.encode("wörld!")
