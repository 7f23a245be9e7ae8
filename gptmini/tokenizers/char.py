"""The simplest tokenizer: one id per character, the vocabulary being the characters of a text.

It is the first rung of the ladder (notebook 01): every idea of a tokenizer (a vocabulary, ``encode``,
``decode``, a fixed number of ids) with nothing else in the way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .base import load_fields, token_label, write_json


class CharTokenizer:
    """Maps each character of a fixed alphabet to an id (its position in ``chars``).

    A character outside the alphabet is an error, naming the character, unless ``unk`` names a character
    of the alphabet to stand in for it (then the mapping is lossy, and says so by its presence).
    """

    def __init__(self, chars: Iterable[str] | str, unk: str | None = None):
        chars = list(chars)
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"every vocabulary entry must be a single character, got {ch!r}")
        if len(set(chars)) != len(chars):
            dups = sorted(ch for ch, n in Counter(chars).items() if n > 1)
            raise ValueError(f"the vocabulary repeats characters {dups!r}; each may appear once")
        if not chars:
            raise ValueError("the vocabulary is empty; build it from a non-empty text with CharTokenizer.from_text")
        if unk is not None and unk not in chars:
            raise ValueError(f"unk={unk!r} must be one of the vocabulary's characters (add it to chars)")
        self.itos: list[str] = chars
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(chars)}
        self.unk = unk

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> CharTokenizer:
        """The sorted set of characters of ``text`` (sorting makes the ids the same on every machine)."""
        chars = sorted(set(text))
        if unk is not None and unk not in chars:
            chars = sorted(chars + [unk])
        return cls(chars, unk=unk)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def eos_token_id(self) -> int | None:
        return None

    def encode(self, text: str) -> list[int]:
        if self.unk is not None:
            fallback = self.stoi[self.unk]
            return [self.stoi.get(ch, fallback) for ch in text]
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError:
            missing = sorted({ch for ch in text if ch not in self.stoi})
            shown = ", ".join(repr(ch) for ch in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise ValueError(
                f"{len(missing)} character(s) not in the vocabulary: {shown}. Build the tokenizer from a text "
                f"that contains them, or pass unk=<a character of the vocabulary> to map unknown ones to it."
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            out.append(self.itos[i])
        return "".join(out)

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        return [token_label(self.decode([i])) for i in ids]

    def save(self, path: str | Path) -> Path:
        """Write ``path/tokenizer.json`` (or ``path`` itself if it ends in ``.json``)."""
        return write_json(path, {"type": "char", "chars": self.itos, "unk": self.unk})

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        fields = load_fields(path, "char")
        chars, unk = fields.list("chars"), fields.str("unk", None, allow_none=True)
        try:
            return cls(chars, unk=unk)
        except ValueError as err:
            raise ValueError(f"{fields.source}: {err}") from err

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unk={self.unk!r})"
