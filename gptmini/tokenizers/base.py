"""What every tokenizer in the course shares: the interface, readable token labels, special tokens, saving.

The model only ever sees integer ids, so every tokenizer offers the same few methods; the training CLI and
the widgets code against this interface, never against one class.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Collection, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import regex

from ..fields import Fields, read_json_object

TOKENIZER_FILE = "tokenizer.json"

#: GPT-2's pre-tokenisation pattern, as released with GPT-2: contractions, words (letters), numbers,
#: runs of punctuation, and whitespace. A leading space stays attached to the word after it, and
#: ``\s+(?!\S)`` leaves the last space of a run for that word, so BPE never merges across these classes.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

AllowedSpecial = Literal["all"] | Collection[str]

#: The one default for every tokenizer here, as in tiktoken: no special token is allowed, and finding the
#: text of one is an error (pass ``disallowed_special=()`` to encode it as plain text).
DEFAULT_ALLOWED: AllowedSpecial = frozenset()
DEFAULT_DISALLOWED: AllowedSpecial = "all"


@runtime_checkable
class Tokenizer(Protocol):
    """The interface shared by all tokenizers (checked with ``isinstance(tok, Tokenizer)``)."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_token_id(self) -> int | None: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def token_strings(self, ids: list[int]) -> list[str]: ...

    def save(self, path: str | Path) -> Path: ...


# --------------------------------------------------------------------------------------------- labels
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def token_label(piece: bytes | str) -> str:
    """A printable label for one token: valid UTF-8 shown as text, stray bytes as ``\\xNN``.

    Control characters (newline, tab, ...) are escaped too, so a label always fits on one line of a
    table; spaces are kept as spaces (GPT-2's ``Ġthe`` is shown as `` the``).
    """
    text = piece.decode("utf-8", errors="backslashreplace") if isinstance(piece, bytes) else piece
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


# ------------------------------------------------------------------------------------- special tokens
def resolve_special(
    text: str,
    special_tokens: Collection[str],
    allowed_special: AllowedSpecial,
    disallowed_special: AllowedSpecial,
) -> frozenset[str]:
    """Which special tokens may appear in ``text``, following tiktoken's rules.

    ``allowed_special="all"`` allows every special token. By default every special token that is not
    allowed is *disallowed*, and finding one in the text is an error: a document that merely contains the
    string ``<|endoftext|>`` must not be able to end a sequence by accident. ``disallowed_special=()``
    turns the check off (the string is then encoded as ordinary text).
    """
    specials = frozenset(special_tokens)
    allowed = specials if allowed_special == "all" else frozenset(allowed_special)
    unknown = allowed - specials
    if unknown:
        raise ValueError(f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}")
    disallowed = specials - allowed if disallowed_special == "all" else frozenset(disallowed_special)
    if disallowed:
        found = special_pattern(disallowed).search(text)
        if found:
            raise ValueError(
                f"The text contains the special token {found.group()!r}, which is not allowed here. "
                f"Pass allowed_special={{{found.group()!r}}} (or 'all') to encode it as its special id, "
                f"or disallowed_special=() to encode it as plain text."
            )
    return allowed


def special_pattern(tokens: Collection[str]) -> regex.Pattern:
    """A regex matching any of ``tokens``, longest first so that overlapping tokens resolve the same way."""
    ordered = sorted(tokens, key=lambda t: (-len(t), t))
    return regex.compile("|".join(regex.escape(t) for t in ordered))


def split_special(text: str, allowed: Collection[str]) -> Iterator[tuple[str, bool]]:
    """Cut ``text`` around the allowed special tokens: yields ``(piece, is_special)`` in order."""
    if not allowed:
        if text:
            yield text, False
        return
    start = 0
    for match in special_pattern(allowed).finditer(text):
        if match.start() > start:
            yield text[start : match.start()], False
        yield match.group(), True
        start = match.end()
    if start < len(text):
        yield text[start:], False


def fix_surrogates(text: str) -> str:
    """Lone surrogates cannot be UTF-8 encoded; replace them with U+FFFD, as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class SpecialTokenizer:
    """The special-token half of ``encode``, written once for the BPE, GPT-2 and GPT-1 tokenizers.

    A subclass keeps ``special_tokens`` (text -> id) and says how to encode a piece of ordinary text
    (:meth:`_encode_ordinary`); this class cuts the text around the allowed special tokens, following
    tiktoken's rules (:func:`resolve_special`) with one default for all of them.
    """

    special_tokens: dict[str, int]

    def _encode_ordinary(self, piece: str) -> list[int]:
        raise NotImplementedError

    def encode(
        self,
        text: str,
        allowed_special: AllowedSpecial = DEFAULT_ALLOWED,
        disallowed_special: AllowedSpecial = DEFAULT_DISALLOWED,
    ) -> list[int]:
        """Text -> ids; a special token's text becomes its id only where ``allowed_special`` allows it."""
        return self._encode_pieces(text, allowed_special, disallowed_special, self._encode_ordinary)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode with no special-token handling (their text is plain text)."""
        return self.encode(text, disallowed_special=())

    def _encode_pieces(
        self,
        text: str,
        allowed_special: AllowedSpecial,
        disallowed_special: AllowedSpecial,
        encode_ordinary: Callable[[str], list[int]],
    ) -> list[int]:
        allowed = resolve_special(text, self.special_tokens, allowed_special, disallowed_special)
        return self._encode_resolved(text, allowed, encode_ordinary)

    def _encode_resolved(
        self, text: str, allowed: frozenset[str], encode_ordinary: Callable[[str], list[int]]
    ) -> list[int]:
        """Encode ``text`` once the allowed special tokens are known (a fast path may replace this)."""
        ids: list[int] = []
        for piece, is_special in split_special(fix_surrogates(text), allowed):
            if is_special:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(encode_ordinary(piece))
        return ids


# --------------------------------------------------------------------------------------- save / load
def tokenizer_path(path: str | Path) -> Path:
    """``path`` itself when it names a ``.json`` file, else ``path/tokenizer.json`` (a checkpoint folder)."""
    path = Path(path)
    return path if path.suffix == ".json" else path / TOKENIZER_FILE


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    target = tokenizer_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return target


def read_json(path: str | Path, expected_type: str | None = None) -> dict[str, Any]:
    """The tokenizer file's JSON object; a broken file is a ``ValueError`` naming it (a missing one: OSError)."""
    source = tokenizer_path(path)
    if not source.exists():
        raise FileNotFoundError(f"no tokenizer file at {source}; save one with tokenizer.save({str(path)!r})")
    payload = read_json_object(source)
    kind = Fields(payload, source).str("type")
    if expected_type is not None and kind != expected_type:
        raise ValueError(f"{source} holds a {kind!r} tokenizer, not {expected_type!r}")
    return payload


def load_fields(path: str | Path, expected_type: str) -> Fields:
    """:func:`read_json` as typed :class:`~gptmini.fields.Fields` (errors name the file and the field)."""
    return Fields(read_json(path, expected_type), tokenizer_path(path))


def merge_by_rank(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply learned merges best-first: merge the adjacent pair with the lowest rank, until none is a merge.

    Order matters: a merge learned early (low rank) must happen before later merges that build on it,
    which is why this is not a single left-to-right pass. GPT-1 and GPT-2 encode words with this loop.
    """
    while len(symbols) > 1:
        best = min(pairwise(symbols), key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols
