"""GPT-1's tokenizer: BPE over characters of lower-cased words, with ``</w>`` marking where a word ends.

GPT-1 (2018) learned 40,000 merges on BooksCorpus. Unlike GPT-2 it works on characters, not bytes, so a
character missing from its vocabulary becomes ``<unk>``; and since a word's last symbol carries ``</w>``,
"the" at the end of a word and "the" inside "there" are different tokens. Its vocabulary
(``vocab.json``: token -> id, ``merges.txt``: the merges, best first) is on the Hugging Face hub as
``openai-community/openai-gpt``.

What is simplified here: the original cleaned text with ``ftfy`` and split it into words with spaCy. This
class lower-cases and splits with one regex instead (:data:`GPT1_WORD_PATTERN`): runs of letters/digits
are words, and every punctuation character is a word of its own (close to what spaCy does on plain
English; it differs on things like "U.S." or "can't", which spaCy keeps as "ca" + "n't"). Accents are kept
and newlines are treated as spaces. Decoding cannot restore the original spacing or case: it puts one
space after every word, so ``"Hi, you"`` comes back as ``"hi , you"``.

For fine-tuning, GPT-1 added new tokens after its vocabulary (start, delimiter, extract):
:meth:`GPT1Tokenizer.add_special_tokens` does the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import regex

from .base import SpecialTokenizer, load_fields, merge_by_rank, token_label, write_json

WORD_END = "</w>"
HUB_NAME = "openai-community/openai-gpt"

#: ASCII punctuation (``!``..``/``, ``:``..``@``, ``[``..`````, ``{``..``~``) plus Unicode punctuation.
_PUNCT = r"!-/:-@\[-`{-~\p{P}"
#: A word is a run of anything but whitespace and punctuation; each punctuation character stands alone.
GPT1_WORD_PATTERN = rf"[^\s{_PUNCT}]+|[{_PUNCT}]"


def read_merges(path: str | Path) -> list[tuple[str, str]]:
    """Parse a ``merges.txt``: an optional ``#version`` header, then one ``left right`` pair per line."""
    merges = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, line {number}: expected two symbols separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class GPT1Tokenizer(SpecialTokenizer):
    """GPT-1's BPE. Build it with :meth:`from_pretrained` (network, once) or :meth:`from_files`."""

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        special_tokens: Iterable[str] | None = None,
        unk_token: str = "<unk>",
    ):
        if not vocab:
            raise ValueError("the vocabulary is empty")
        self.vocab: dict[str, int] = dict(vocab)
        self.merges: list[tuple[str, str]] = [tuple(m) for m in merges]  # type: ignore[misc]
        self.ranks: dict[tuple[str, str], int] = {pair: r for r, pair in enumerate(self.merges)}
        self.unk_token = unk_token
        self.decoder: dict[int, str] = {i: t for t, i in self.vocab.items()}
        self.special_tokens: dict[str, int] = {}
        self.pattern = regex.compile(GPT1_WORD_PATTERN)
        self.cache: dict[str, list[int]] = {}
        if special_tokens:
            self.add_special_tokens(list(special_tokens))

    # -------------------------------------------------------------------------------- constructors
    @classmethod
    def from_files(
        cls, vocab_json_path: str | Path, merges_txt_path: str | Path, special_tokens: Iterable[str] | None = None
    ) -> GPT1Tokenizer:
        vocab = json.loads(Path(vocab_json_path).read_text(encoding="utf-8"))
        return cls(vocab, read_merges(merges_txt_path), special_tokens=special_tokens)

    @classmethod
    def from_pretrained(cls, name: str = HUB_NAME, special_tokens: Iterable[str] | None = None) -> GPT1Tokenizer:
        """Download (once; then cached) GPT-1's ``vocab.json`` and ``merges.txt`` from the hub."""
        from huggingface_hub import hf_hub_download

        try:
            vocab_path = hf_hub_download(repo_id=name, filename="vocab.json")
            merges_path = hf_hub_download(repo_id=name, filename="merges.txt")
        except Exception as err:  # offline, unknown repo, hub outage: one clear message
            raise OSError(
                f"could not get GPT-1's vocabulary from the Hugging Face hub ({name!r}): {err}. "
                f"It needs the network once (then it is cached); offline, use "
                f"GPT1Tokenizer.from_files('vocab.json', 'merges.txt') with local copies."
            ) from err
        return cls.from_files(vocab_path, merges_path, special_tokens=special_tokens)

    # -------------------------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self.decoder)

    @property
    def eos_token_id(self) -> int | None:
        return None  # GPT-1 had no end-of-text token

    @property
    def unk_token_id(self) -> int | None:
        return self.vocab.get(self.unk_token)

    def add_special_tokens(self, tokens: list[str]) -> list[int]:
        """Give each new token the next free id after the vocabulary (GPT-1's start/delimiter/extract)."""
        ids = []
        for token in tokens:
            if token in self.special_tokens:
                ids.append(self.special_tokens[token])
                continue
            if token in self.vocab:
                raise ValueError(f"{token!r} is already an ordinary token of the vocabulary")
            new_id = max(self.decoder) + 1
            self.special_tokens[token] = new_id
            self.decoder[new_id] = token
            ids.append(new_id)
        return ids

    # ------------------------------------------------------------------------------------ encoding
    def words(self, text: str) -> list[str]:
        """Pre-tokenisation: lower-case, then split into words and single punctuation marks."""
        return self.pattern.findall(text.lower())

    def bpe(self, word: str) -> list[str]:
        """Split a word into characters (the last one carrying ``</w>``), then apply merges best-first."""
        symbols = [*word[:-1], word[-1] + WORD_END]
        return merge_by_rank(symbols, self.ranks)

    def _encode_word(self, word: str) -> list[int]:
        ids = self.cache.get(word)
        if ids is None:
            ids = []
            for symbol in self.bpe(word):
                if symbol in self.vocab:
                    ids.append(self.vocab[symbol])
                elif self.unk_token_id is not None:
                    ids.append(self.unk_token_id)
                else:
                    raise ValueError(
                        f"{symbol!r} (in {word!r}) is not in the vocabulary and it has no {self.unk_token!r} token"
                    )
            self.cache[word] = ids
        return ids

    def _encode_ordinary(self, piece: str) -> list[int]:
        """Words of ordinary text -> ids. Added special tokens (start, delimiter, extract) are recognised only
        where ``encode`` allows them (``allowed_special="all"``), as for every tokenizer here."""
        ids: list[int] = []
        for word in self.words(piece):
            ids.extend(self._encode_word(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        return [self.decoder[i] for i in self.encode(text)]

    # ------------------------------------------------------------------------------------ decoding
    def _token(self, i: int) -> str:
        token = self.decoder.get(int(i))
        if token is None:
            raise ValueError(f"id {int(i)} is outside the vocabulary (size {self.vocab_size})")
        return token

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text: ``</w>`` (and each special token) becomes the end of a word, followed by a space."""
        out = []
        for i in ids:
            token = self._token(i)
            if token in self.special_tokens:
                out.append(token + " ")
            else:
                out.append(token[: -len(WORD_END)] + " " if token.endswith(WORD_END) else token)
        return "".join(out).rstrip(" ")

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """The tokens as GPT-1 stores them (``the</w>`` ends a word, ``the`` does not)."""
        return [token_label(self._token(i)) for i in ids]

    # -------------------------------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Plain JSON with the whole vocabulary and merges (about 1 MB for the real GPT-1)."""
        payload = {
            "type": "gpt1",
            "vocab": self.vocab,
            "merges": [f"{a} {b}" for a, b in self.merges],
            "special_tokens": list(self.special_tokens),
            "unk_token": self.unk_token,
        }
        return write_json(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> GPT1Tokenizer:
        """Read :meth:`save`'s JSON back; ids that are not integers and malformed merges are refused."""
        fields = load_fields(path, "gpt1")
        vocab = fields.object("vocab")
        for token, i in vocab.items():
            if isinstance(i, bool) or not isinstance(i, int) or i < 0:
                raise ValueError(f"{fields.source}: vocab[{token!r}] must be a non-negative integer id, got {i!r}")
        if len(set(vocab.values())) != len(vocab):
            raise ValueError(f"{fields.source}: field 'vocab' gives the same id to two tokens")
        merges = []
        for rank, merge in enumerate(fields.list("merges")):
            parts = merge.split(" ") if isinstance(merge, str) else []
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{fields.source}: merge {rank} must be 'left right', got {merge!r}")
            merges.append((parts[0], parts[1]))
        specials = fields.list("special_tokens", [])
        if not all(isinstance(t, str) and t for t in specials):
            raise ValueError(f"{fields.source}: field 'special_tokens' must be a list of non-empty strings")
        try:
            return cls(vocab, merges, special_tokens=specials, unk_token=fields.str("unk_token", "<unk>"))
        except ValueError as err:
            raise ValueError(f"{fields.source}: {err}") from err

    def __repr__(self) -> str:
        return (
            f"GPT1Tokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)!r})"
        )
