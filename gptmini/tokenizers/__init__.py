"""Tokenizers, one idea per class: characters, BPE trained from scratch, GPT-2's and GPT-1's own.

All share one interface (:class:`Tokenizer`): ``vocab_size``, ``encode``, ``decode``, ``token_strings``,
``eos_token_id`` and ``save(directory)``; :func:`load_tokenizer` reads any of them back.
"""

from __future__ import annotations

from pathlib import Path

from .base import GPT2_PATTERN, SpecialTokenizer, Tokenizer, read_json, token_label, tokenizer_path
from .bpe import BPETokenizer
from .char import CharTokenizer
from .gpt1 import GPT1Tokenizer
from .gpt2 import GPT2Tokenizer, bytes_to_unicode, unicode_to_bytes

_TYPES = {"char": CharTokenizer, "bpe": BPETokenizer, "gpt2": GPT2Tokenizer, "gpt1": GPT1Tokenizer}


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read back whatever tokenizer was saved at ``path`` (a folder holding ``tokenizer.json``, or the file)."""
    kind = read_json(path)["type"]  # read_json checked that it is a string
    if kind not in _TYPES:
        raise ValueError(f"{tokenizer_path(path)} has unknown tokenizer type {kind!r}; known: {sorted(_TYPES)}")
    return _TYPES[kind].load(path)


__all__ = [
    "GPT2_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "GPT1Tokenizer",
    "GPT2Tokenizer",
    "SpecialTokenizer",
    "Tokenizer",
    "bytes_to_unicode",
    "load_tokenizer",
    "token_label",
    "unicode_to_bytes",
]
