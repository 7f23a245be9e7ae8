"""GPT2Tokenizer against tiktoken's GPT-2 encoding, built offline from the same two files.

The reference is assembled here with tiktoken's own loader (``data_gym_to_mergeable_bpe_ranks``) and
the pattern published with GPT-2, so it shares no code with the pure-Python encoder under test.
"""

import json

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from gptmini.data import shakespeare_plays
from gptmini.tokenizers import GPT2Tokenizer, Tokenizer, bytes_to_unicode, load_tokenizer
from gptmini.tokenizers.gpt2 import gpt2_data_files

# GPT-2's pre-tokenisation pattern as released (and as written in the course notes)
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

SAMPLES = {
    "code": 'def f(x: int) -> int:\n    """Square."""\n    return x ** 2  # 42\n\nif __name__ == "__main__":\n'
    "\tprint(f(3), {'a': [1, 2.5e-3]})\r\n",
    "json": '{"key": "value", "list": [1,2,3], "nested": {"ok": true, "n": null}}',
    "emoji": "I ❤️ tokens 😀😃🎉 👩‍👩‍👧‍👦 👍🏽 🇰🇷🇫🇷 ☕️",
    "cjk": "自然言語処理は面白い。日本語のテキスト、中文文本和标点符号！",
    "hangul": "트랜스포머는 자기 주의 메커니즘을 사용합니다. 한국어 문장 테스트",
    "arabic": "المحولات هي نماذج لغوية كبيرة، تعمل على النصوص العربية ١٢٣",
    "devanagari": "ट्रांसफॉर्मर एक भाषा मॉडल है। हिन्दी पाठ ९८७",
    "mixed_scripts": "Ελληνικά Русский עברית ไทย Tiếng Việt naïve café façade Ωmega µ ß ﬁ",
    "whitespace": "a  b   c\n\nd\n\n\ne\t\tf \t g  \n  h\r\n\r\ni     \n\n   j\u00a0k\u3000l   ",
    "only_spaces": "      ",
    "newlines_end": "end\n\n\n",
    "contractions": "I'm, you're, they'll, we've, she'd, it's, don't, can't. I'M YOU'RE 'S 'T ''' y'all",
    "digits": "1 12 123 1234 12345 1234567890 3.14159 1,000,000 v2.0.1 0x1F 1e-9 ² ½ ٣٤٥ ۴ १२",
    "punctuation": "!!! ??? ... --- *** ((( ))) <<<>>> @#$%^&*_+=|\\/~` «quotes» “smart” ‘single’ — –",
    "empty": "",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    encoder_json, vocab_bpe = gpt2_data_files()
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))  # tiktoken's loader caches files: keep it in tmp
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(encoder_json))
    finally:
        mp.undo()
    return tiktoken.Encoding(
        name="gpt2-reference",
        pat_str=GPT2_PAT,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
        explicit_n_vocab=50257,
    )


@pytest.fixture(scope="module")
def pure():
    return GPT2Tokenizer()


@pytest.fixture(scope="module")
def fast():
    return GPT2Tokenizer(fast=True)


def test_vocabulary_facts(pure):
    assert pure.vocab_size == 50257
    assert pure.eos_token_id == pure.eot_token == 50256
    assert isinstance(pure, Tokenizer)


def test_byte_table():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())


def test_fast_path_uses_the_same_ranks(pure, reference):
    ranks = pure.mergeable_ranks()
    assert len(ranks) == 50256
    assert all(reference.encode_single_token(token) == rank for token, rank in ranks.items())
    assert pure.tiktoken().n_vocab == reference.n_vocab == 50257


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_matches_tiktoken(name, pure, fast, reference):
    text = SAMPLES[name]
    expected = reference.encode(text)
    assert pure.encode(text) == expected
    assert fast.encode(text) == expected
    assert pure.decode(expected) == text


def test_matches_tiktoken_on_shakespeare(pure, fast, reference):
    play = next(p for p in shakespeare_plays() if p.slug == "hamlet")
    expected = reference.encode(play.text)
    assert len(expected) > 30_000
    assert pure.encode(play.text) == expected
    assert fast.encode(play.text) == expected
    assert pure.decode(expected) == play.text


def test_known_ids(pure):
    assert pure.encode("Hello world") == [15496, 995]
    assert pure.token_strings(pure.encode(" the cat\n")) == [" the", " cat", "\\n"]


def test_special_token_rules_mirror_tiktoken(pure, fast, reference):
    text = "The end.<|endoftext|>A new start"
    for tok in (pure, fast):
        with pytest.raises(ValueError):
            reference.encode(text)
        with pytest.raises(ValueError, match="allowed_special"):
            tok.encode(text)
        for kwargs in (
            {"allowed_special": "all"},
            {"allowed_special": {"<|endoftext|>"}},
            {"disallowed_special": ()},
            {"allowed_special": set(), "disallowed_special": ()},
        ):
            assert tok.encode(text, **kwargs) == reference.encode(text, **kwargs), kwargs
        assert 50256 in tok.encode(text, allowed_special="all")
        assert 50256 not in tok.encode(text, disallowed_special=())
        assert tok.encode_ordinary(text) == reference.encode_ordinary(text)
        assert tok.decode(tok.encode(text, allowed_special="all")) == text


def test_decode_of_a_cut_character_replaces(pure, reference):
    ids = pure.encode("😀")
    assert len(ids) > 1
    for cut in (ids[:1], ids[1:], ids[:-1]):
        assert pure.decode(cut) == reference.decode(cut)
        assert "\ufffd" in pure.decode(cut)
    assert pure.token_strings(ids[:1])[0].startswith("\\x")
    with pytest.raises(ValueError, match="outside"):
        pure.decode([50257])


def test_lone_surrogates_are_replaced_like_tiktoken(pure, reference):
    text = "a\ud800b"
    assert pure.encode(text) == reference.encode(text)


def test_save_and_load(tmp_path, fast):
    path = fast.save(tmp_path)
    assert json.loads(path.read_text()) == {"type": "gpt2", "fast": True}
    again = load_tokenizer(tmp_path)
    assert isinstance(again, GPT2Tokenizer) and again.fast
    assert again.encode("Hello world") == [15496, 995]


TRICKY = list("ab Z'sdtmlrve \n\t\r\u00a0\u3000 1²٣.,!?-_😀é한字\u0301\u200d") + ["'s", "'ll", "<|endoftext|>"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(TRICKY)).map("".join)))
def test_any_unicode_round_trips_and_matches_tiktoken(pure, reference, s):
    ids = pure.encode(s, disallowed_special=())
    assert ids == reference.encode(s, disallowed_special=())
    assert pure.decode(ids) == s
