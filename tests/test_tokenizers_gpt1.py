"""GPT1Tokenizer on small vocab/merges files written here: hand-derived tokenisations, and parity with
transformers' OpenAIGPTTokenizer built from the same files."""

import json
from collections import Counter
from itertools import pairwise

import pytest

from gptmini.data import shakespeare_plays
from gptmini.tokenizers import GPT1Tokenizer, Tokenizer, load_tokenizer

# ranked merges, best first; the expected tokenisations below follow from them by hand
MERGES = [
    ("l", "o"),  # 0
    ("lo", "w</w>"),  # 1  low</w>
    ("e", "r</w>"),  # 2  er</w>
    ("lo", "w"),  # 3  low
    ("low", "er</w>"),  # 4  lower</w>
    ("n", "e"),  # 5
    ("ne", "w</w>"),  # 6  new</w>
    ("e", "s"),  # 7
    ("es", "t</w>"),  # 8  est</w>
]


def small_vocab() -> dict[str, int]:
    symbols = ["<unk>", *"lowerstn", *(c + "</w>" for c in "lowerstnd"), ",</w>", ".</w>"]
    symbols += [a + b for a, b in MERGES]
    return {s: i for i, s in enumerate(symbols)}


@pytest.fixture
def files(tmp_path):
    vocab_path, merges_path = tmp_path / "vocab.json", tmp_path / "merges.txt"
    vocab_path.write_text(json.dumps(small_vocab()), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return vocab_path, merges_path


@pytest.fixture
def tok(files):
    return GPT1Tokenizer.from_files(*files)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("low", ["low</w>"]),  # l o w</w> -> lo w</w> -> low</w>
        ("lower", ["lower</w>"]),  # (e, r</w>) rank 2 goes before (lo, w) rank 3, then low + er</w>
        ("newest", ["ne", "w", "est</w>"]),  # (ne, w) is no merge: only (ne, w</w>) is
        ("Lowest,", ["low", "est</w>", ",</w>"]),  # lower-cased; the comma is a word of its own
        ("new  LOW.", ["new</w>", "low</w>", ".</w>"]),
        ("zoo", ["<unk>", "o", "o</w>"]),  # 'z' is not in the vocabulary
    ],
)
def test_hand_derived_tokenisations(tok, text, tokens):
    ids = tok.encode(text)
    assert tok.token_strings(ids) == tokens
    assert tok.tokenize(text) == tokens


def test_interface_and_lossy_decode(tok):
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == len(small_vocab())
    assert tok.eos_token_id is None
    assert tok.decode(tok.encode("Lower, newest")) == "lower , newest"  # lower-case, space after each word


def test_special_tokens_are_added_after_the_vocabulary(tok):
    n = tok.vocab_size
    ids = tok.add_special_tokens(["<s>", "<$>", "<e>"])
    assert ids == [n, n + 1, n + 2] and tok.vocab_size == n + 3
    assert tok.add_special_tokens(["<s>"]) == [n]  # adding again changes nothing
    ids = tok.encode("<s>low<$>new<e>", allowed_special="all")
    assert ids == [n, tok.vocab["low</w>"], n + 1, tok.vocab["new</w>"], n + 2]
    assert tok.decode(ids) == "<s> low <$> new <e>"
    # not allowed: the text is encoded as text ('<' and '>' are unknown here)
    assert n not in tok.encode("<s>low", disallowed_special=())
    with pytest.raises(ValueError, match="special token .<s>."):
        tok.encode("<s>low")  # the one default of every tokenizer here, as in tiktoken
    with pytest.raises(ValueError, match="already an ordinary token"):
        tok.add_special_tokens(["low</w>"])


def test_unknown_without_unk_token_is_an_error():
    vocab = {"a</w>": 0, "b</w>": 1}
    tok = GPT1Tokenizer(vocab, [])
    assert tok.encode("a b") == [0, 1]
    with pytest.raises(ValueError, match="'c</w>'"):
        tok.encode("a c")


def test_save_and_load(tmp_path, tok):
    tok.add_special_tokens(["<s>", "<e>"])
    tok.save(tmp_path / "ckpt")
    again = load_tokenizer(tmp_path / "ckpt")
    assert isinstance(again, GPT1Tokenizer)
    assert again.special_tokens == tok.special_tokens and again.merges == tok.merges
    text = "<s>Lower, newest lowest<e>"
    assert again.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_bad_merges_file(tmp_path):
    bad = tmp_path / "merges.txt"
    bad.write_text("#version: 0.2\na b c\n")
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    with pytest.raises(ValueError, match="line 2"):
        GPT1Tokenizer.from_files(tmp_path / "vocab.json", bad)


def test_from_pretrained_offline_says_what_to_do():
    # tests run with HF_HUB_OFFLINE=1 (conftest); an unknown repo can never be in the local cache
    with pytest.raises(OSError, match="from_files"):
        GPT1Tokenizer.from_pretrained("gptmini-tests/no-such-repo")


# ------------------------------------------------------------------ parity with transformers
def learn_gpt1_merges(words: Counter, num_merges: int) -> list[tuple[str, str]]:
    """A plain character-level BPE learner with GPT-1's ``</w>`` word ends (to make realistic files)."""
    splits = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    merges = []
    for _ in range(num_merges):
        counts = Counter()
        for w, symbols in splits.items():
            for pair in pairwise(symbols):
                counts[pair] += words[w]
        if not counts:
            break
        best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        for w, symbols in splits.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            splits[w] = out
    return merges


def test_parity_with_transformers_on_shakespeare():
    transformers = pytest.importorskip("transformers")
    plays = {p.slug: p for p in shakespeare_plays()}
    train_text, test_text = plays["macbeth"].text[:12_000], plays["hamlet"].text[:20_000]
    base = GPT1Tokenizer({"<unk>": 0}, [])
    words = Counter(base.words(train_text))
    merges = learn_gpt1_merges(words, 200)
    symbols = ["<unk>"] + sorted({c for w in words for c in w} | {c + "</w>" for w in words for c in w})
    symbols += [a + b for a, b in merges if a + b not in symbols]
    vocab = {s: i for i, s in enumerate(symbols)}

    ours = GPT1Tokenizer(vocab, merges)
    theirs = transformers.OpenAIGPTTokenizer(vocab=vocab, merges=merges)
    expected = theirs(test_text, add_special_tokens=False)["input_ids"]
    got = ours.encode(test_text)
    assert len(got) > 4000
    assert got == expected
    assert ours.unk_token_id in got  # Hamlet has letters Macbeth's excerpt lacks: both map them to <unk>
