"""Tokenizer files that are broken are refused with a ValueError naming the file; special tokens are handled
by one implementation with one default for the BPE, GPT-2 and GPT-1 tokenizers."""

import inspect
import json

import pytest

from gptmini.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    GPT1Tokenizer,
    GPT2Tokenizer,
    SpecialTokenizer,
    load_tokenizer,
)

TEXT = "to be or not to be, that is the question: whether 'tis nobler in the mind " * 20


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer(special_tokens=["<|endoftext|>"]).train(TEXT, vocab_size=290, progress=False)


def gpt1():
    vocab = {"<unk>": 0, "a</w>": 1, "b</w>": 2, "a": 3, "b": 4, "ab</w>": 5}
    return GPT1Tokenizer(vocab, [("a", "b</w>")], special_tokens=["<s>"])


def write(tmp_path, payload):
    path = tmp_path / "tokenizer.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


@pytest.mark.parametrize(
    "payload",
    [
        "[]",
        "null",
        "{",
        '"char"',
        {"chars": ["a"]},
        {"type": None},
        {"type": ["char"]},
        {"type": "nope"},
        {"type": "char"},
        {"type": "char", "chars": "ab"},
        {"type": "char", "chars": [1, 2]},
        {"type": "char", "chars": ["ab"]},
        {"type": "char", "chars": ["a", "a"]},
        {"type": "char", "chars": []},
        {"type": "char", "chars": ["a"], "unk": 3},
        {"type": "char", "chars": ["a"], "unk": "z"},
        {"type": "gpt2", "fast": "yes"},
        {"type": "bpe"},
        {"type": "bpe", "merges": [["97", "98", 3]]},
        {"type": "bpe", "merges": [[97.0, 98, 3]]},
        {"type": "bpe", "merges": [[97.5, 98, 3]]},
        {"type": "bpe", "merges": [[True, 98, 3]]},
        {"type": "bpe", "merges": [[97, 98]]},
        {"type": "bpe", "merges": [[97, 300, 1]]},
        {"type": "bpe", "merges": [[-1, 98, 1]]},
        {"type": "bpe", "merges": {"a": 1}},
        {"type": "bpe", "merges": [], "special_tokens": [["x"]]},
        {"type": "bpe", "merges": [], "special_tokens": ["x", "x"]},
        {"type": "bpe", "merges": [], "pattern": 5},
        {"type": "bpe", "merges": [], "pattern": "(unclosed"},
        {"type": "gpt1", "vocab": {"a</w>": "1"}, "merges": []},
        {"type": "gpt1", "vocab": {"a</w>": 1.0}, "merges": []},
        {"type": "gpt1", "vocab": {"a</w>": 1, "b</w>": 1}, "merges": []},
        {"type": "gpt1", "vocab": [], "merges": []},
        {"type": "gpt1", "vocab": {}, "merges": []},
        {"type": "gpt1", "vocab": {"a</w>": 0}, "merges": ["a"]},
        {"type": "gpt1", "vocab": {"a</w>": 0}, "merges": [["a", "b"]]},
        {"type": "gpt1", "vocab": {"a</w>": 0}, "merges": [], "special_tokens": [None]},
        {"type": "gpt1", "vocab": {"a</w>": 0}, "merges": [], "special_tokens": ["a</w>"]},
        {"type": "gpt1", "vocab": {"a</w>": 0}, "merges": [], "unk_token": 0},
    ],
)
def test_broken_tokenizer_files_are_refused(tmp_path, payload):
    path = write(tmp_path, payload)
    with pytest.raises(ValueError) as err:
        load_tokenizer(tmp_path)
    assert str(path) in str(err.value)


def test_float_and_string_ids_are_not_truncated(tmp_path, bpe):
    bpe.save(tmp_path)
    payload = json.loads((tmp_path / "tokenizer.json").read_text())
    payload["merges"][0][0] = float(payload["merges"][0][0]) + 0.5
    write(tmp_path, payload)
    with pytest.raises(ValueError, match=r"merge 0 must be \[first id, second id, count\]"):
        BPETokenizer.load(tmp_path)


@pytest.mark.parametrize("make", [lambda b: b, lambda b: GPT2Tokenizer(), lambda b: gpt1()])
def test_round_trip_still_works(tmp_path, bpe, make):
    tok = make(bpe)
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    text = "ab ba to be"
    assert again.encode(text, disallowed_special=()) == tok.encode(text, disallowed_special=())


def test_char_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer.from_text("hello", unk="h")
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("hex") == tok.encode("hex")


@pytest.mark.parametrize("cls", [BPETokenizer, GPT2Tokenizer, GPT1Tokenizer])
def test_one_special_token_implementation_with_one_default(cls):
    assert issubclass(cls, SpecialTokenizer)
    params = inspect.signature(cls.encode).parameters
    assert params["allowed_special"].default == frozenset()
    assert params["disallowed_special"].default == "all"
    assert cls.encode_ordinary is SpecialTokenizer.encode_ordinary
    assert cls is BPETokenizer or cls.encode is SpecialTokenizer.encode  # BPE adds max_merges, nothing else


@pytest.mark.parametrize(
    "make, special",
    [(lambda b: b, "<|endoftext|>"), (lambda b: GPT2Tokenizer(), "<|endoftext|>"), (lambda b: gpt1(), "<s>")],
)
def test_special_tokens_behave_the_same_everywhere(bpe, make, special):
    tok = make(bpe)
    text = f"ab {special} ba"
    with pytest.raises(ValueError, match="not allowed here"):
        tok.encode(text)
    ids = tok.encode(text, allowed_special="all")
    assert tok.special_tokens[special] in ids
    assert ids == tok.encode(text, allowed_special={special})
    plain = tok.encode_ordinary(text)
    assert tok.special_tokens[special] not in plain and plain == tok.encode(text, disallowed_special=())
    with pytest.raises(ValueError, match="does not have"):
        tok.encode(text, allowed_special={"<nope>"})


def test_gpt2_fast_and_pure_agree_on_specials():
    import tiktoken  # noqa: F401  (the fast path)

    pure, fast = GPT2Tokenizer(), GPT2Tokenizer(fast=True)
    text = "Hello<|endoftext|> world \ud800 done"
    for kwargs in ({"allowed_special": "all"}, {"disallowed_special": ()}):
        assert pure.encode(text, **kwargs) == fast.encode(text, **kwargs) == fast.tiktoken().encode(text, **kwargs)
