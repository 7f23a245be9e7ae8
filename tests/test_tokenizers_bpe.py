"""BPETokenizer: hand-checked merges, the incremental trainer equals a naive one, specials, save/load."""

import json
from collections import Counter
from itertools import pairwise

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from gptmini.data import shakespeare
from gptmini.tokenizers import GPT2_PATTERN, BPETokenizer, Tokenizer, load_tokenizer
from gptmini.tokenizers.bpe import count_pairs, merge_pair

A, B, C, D = (ord(c) for c in "abcd")


@pytest.fixture(scope="module")
def excerpt():
    return shakespeare()[:40_000]


@pytest.fixture(scope="module")
def trained(excerpt):
    return BPETokenizer(special_tokens=["<|endoftext|>"]).train(excerpt, vocab_size=400, progress=False)


def test_hand_checkable_merges():
    # "aaabdaaabac": aa x4 (overlaps count), ab x2, then ties: (97, 98) beats (256, 97) because the smaller
    # pair wins; at the end all pairs occur once and (97, 99) = "ac" is the smallest
    ids = list(b"aaabdaaabac")
    assert count_pairs(ids).most_common(2) == [((A, A), 4), ((A, B), 2)]
    assert merge_pair(ids, (A, A), 256) == [256, A, B, D, 256, A, B, A, C]
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=260, progress=False)
    assert tok.history == [((A, A), 256, 4), ((A, B), 257, 2), ((256, 257), 258, 2), ((A, C), 259, 1)]
    assert tok.merges == {(A, A): 256, (A, B): 257, (256, 257): 258, (A, C): 259}
    assert tok.vocab[258] == b"aaab" and tok.vocab[259] == b"ac"
    assert tok.encode("aaabdaaabac") == [258, D, 258, 259]
    assert tok.vocab_size == 260 and tok.num_merges == 4
    assert isinstance(tok, Tokenizer)


def naive_train(text: str, num_merges: int) -> list[tuple[tuple[int, int], int, int]]:
    """Recount every pair after every merge: slow but obviously right (same tie rule)."""
    chunks = Counter(regex.findall(GPT2_PATTERN, text))
    words = [(list(chunk.encode("utf-8")), n) for chunk, n in chunks.items()]
    history = []
    for step in range(num_merges):
        counts = Counter()
        for ids, n in words:
            for pair in pairwise(ids):
                counts[pair] += n
        pair, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        new_id = 256 + step
        for k, (ids, n) in enumerate(words):
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            words[k] = (out, n)
        history.append((pair, new_id, count))
    return history


def test_incremental_training_equals_full_recount(excerpt):
    text = excerpt[:15_000]
    tok = BPETokenizer().train(text, vocab_size=256 + 120, progress=False)
    assert tok.history == naive_train(text, 120)


def test_training_is_deterministic(excerpt, trained):
    again = BPETokenizer(special_tokens=["<|endoftext|>"]).train(excerpt, vocab_size=400, progress=False)
    assert again.history == trained.history
    assert trained.vocab_size == 400 and trained.num_merges == 400 - 256 - 1


def test_merges_never_cross_letters_digits_punctuation():
    text = "hello world 2024, hello!! world2024 hello... 42 apples; 42 pears?? I'm here, you're there.\n" * 20
    tok = BPETokenizer().train(text, vocab_size=256 + 40, progress=False)
    assert tok.num_merges == 40
    for new_id in range(256, tok.vocab_size):
        token = tok.vocab[new_id].decode("utf-8")
        body = token[1:] if token.startswith(" ") else token
        kinds = {
            "letter" if ch.isalpha() else "digit" if ch.isdigit() else "space" if ch.isspace() else "punct"
            for ch in body
        }
        assert len(kinds) == 1 or token.startswith("'"), token  # contractions: "'m", "'re"
    # without the split, merges do cross word boundaries
    joined = BPETokenizer(pattern=None).train(text, vocab_size=256 + 40, progress=False)
    assert any(b" " in joined.vocab[i].strip() for i in range(256, 296))


def test_round_trip_and_compression(excerpt, trained):
    ids = trained.encode(excerpt)
    assert trained.decode(ids) == excerpt
    assert len(ids) < 0.6 * len(excerpt.encode("utf-8"))  # 144 merges already halve the length
    assert trained.encode_ordinary(excerpt) == ids


def test_max_merges_equals_a_shorter_training(excerpt, trained):
    text = excerpt[20_000:22_000]
    assert trained.encode(text, max_merges=0) == list(text.encode("utf-8"))
    for k in (1, 10, 50):
        shorter = BPETokenizer().train(excerpt, vocab_size=256 + k, progress=False)
        assert shorter.history == trained.history[:k]
        assert trained.encode(text, max_merges=k) == shorter.encode(text)
    assert trained.encode(text, max_merges=10_000) == trained.encode(text)
    with pytest.raises(ValueError, match="max_merges"):
        trained.encode(text, max_merges=-1)


def test_special_tokens_follow_tiktoken_rules(trained):
    eot = trained.special_tokens["<|endoftext|>"]
    assert eot == 399 == trained.eos_token_id
    text = "Exit.<|endoftext|>Enter"
    with pytest.raises(ValueError, match="allowed_special"):
        trained.encode(text)
    ids = trained.encode(text, allowed_special="all")
    assert ids.count(eot) == 1
    assert ids == trained.encode(text, allowed_special={"<|endoftext|>"})
    assert trained.decode(ids) == text
    plain = trained.encode(text, disallowed_special=())
    assert eot not in plain and trained.decode(plain) == text
    # the special token's text was never learned from: no merge contains its pieces
    assert not any(b"<|" in trained.vocab[i] for i in range(256, eot))


def test_special_tokens_are_cut_out_of_training():
    tok = BPETokenizer(special_tokens=["<|endoftext|>"])
    tok.train("<|endoftext|>" * 50 + "ab ab", vocab_size=256 + 2 + 1, progress=False)
    assert [tok.vocab[new] for _, new, _ in tok.history] == [b"ab", b" ab"]


def test_bad_sizes_and_early_stop():
    with pytest.raises(ValueError, match="too small"):
        BPETokenizer(special_tokens=["<s>"]).train("abc", vocab_size=256)
    with pytest.warns(UserWarning, match="ran out of pairs"):
        tok = BPETokenizer().train("ab", vocab_size=300, progress=False)
    assert tok.vocab_size == 257


def test_decode_never_raises_on_broken_bytes(trained):
    assert trained.decode([0xE2, 0x80]) == b"\xe2\x80".decode("utf-8", errors="replace") == "\ufffd"
    assert trained.decode([0x68, 0xFF, 0x69]) == "h\ufffdi"
    assert trained.decode(list("é".encode())) == "é"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        trained.decode([10_000])


def test_token_strings(trained):
    ids = trained.encode(" the\n")
    labels = trained.token_strings(ids)
    assert "".join(labels) == " the\\n"
    assert trained.token_strings([0xE2]) == ["\\xe2"]


def test_verbose_prints_merges(capsys):
    BPETokenizer().train("aaabdaaabac", vocab_size=258, verbose=True, progress=False)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("merge 1/2: (97, 97) -> 256 ('a'+'a') x4")
    assert len(out) == 2


def test_save_and_load(tmp_path, trained, excerpt):
    path = trained.save(tmp_path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["type"] == "bpe" and len(payload["merges"]) == trained.num_merges
    for loaded in (BPETokenizer.load(tmp_path), load_tokenizer(tmp_path), BPETokenizer.load(path)):
        assert isinstance(loaded, BPETokenizer)
        assert loaded.history == trained.history
        assert loaded.special_tokens == trained.special_tokens
        assert loaded.encode(excerpt[:3000], allowed_special="all") == trained.encode(excerpt[:3000])
    trained.save(tmp_path / "bpe.json")
    assert BPETokenizer.load(tmp_path / "bpe.json").vocab == trained.vocab


def test_load_rejects_other_types(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"type": "char", "chars": ["a"]}')
    with pytest.raises(ValueError, match="not 'bpe'"):
        BPETokenizer.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        BPETokenizer.load(tmp_path / "missing")


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_round_trip_on_any_unicode(trained, s):
    assert trained.decode(trained.encode(s, disallowed_special=())) == s
