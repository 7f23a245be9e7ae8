"""Byte-level byte-pair encoding, trained from scratch (notebook 06).

Start from the 256 byte values, then repeatedly glue the most frequent adjacent pair of ids into a new id.
Text is first cut with GPT-2's pattern into chunks (words, numbers, punctuation, spaces) and pairs are only
counted inside a chunk, so a merge never joins a letter to a digit or to punctuation.

Training is quick enough for a classroom because of two tricks:

* the text is reduced to its *unique* chunks with their frequencies (Shakespeare's five million characters
  are a few tens of thousands of distinct chunks), and a pair's count is the sum of its chunks' frequencies;
* pair counts are computed once and then *updated* after each merge, touching only the chunks that held the
  merged pair (an index remembers where each pair occurs), with a heap to find the next best pair.

Ties are broken by a fixed rule, so training is deterministic: the most frequent pair wins, and among pairs
with the same count the smallest ``(first id, second id)`` wins. Counts are of adjacent positions, so
``aaa`` holds the pair ``(a, a)`` twice; merging replaces occurrences left to right.
"""

from __future__ import annotations

import heapq
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import regex
from tqdm.auto import tqdm

from ..fields import is_int
from .base import (
    DEFAULT_ALLOWED,
    DEFAULT_DISALLOWED,
    GPT2_PATTERN,
    AllowedSpecial,
    SpecialTokenizer,
    fix_surrogates,
    load_fields,
    split_special,
    token_label,
    write_json,
)

Pair = tuple[int, int]


def count_pairs(ids: Sequence[int]) -> Counter[Pair]:
    """How often each adjacent pair occurs in ``ids`` (overlaps count: ``aaa`` has ``(a, a)`` twice)."""
    return Counter(pairwise(ids))


def merge_pair(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right."""
    out: list[int] = []
    i, n = 0, len(ids)
    first, second = pair
    while i < n:
        if i + 1 < n and ids[i] == first and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer(SpecialTokenizer):
    """A byte-level BPE tokenizer that you train yourself.

    >>> tok = BPETokenizer().train(text, vocab_size=512)      # 256 bytes + 256 merges
    >>> tok.history[0]                                        # ((first, second), new_id, count)

    ``special_tokens`` (e.g. ``["<|endoftext|>"]``) get the ids right after the merges and are never split
    or merged; ``encode`` only produces them when allowed (``allowed_special``, as in tiktoken).
    ``pattern=None`` skips the pre-tokenisation split (merges may then cross words: fine for a short demo,
    slow on a long text).
    """

    def __init__(self, special_tokens: Iterable[str] | None = None, pattern: str | None = GPT2_PATTERN):
        names = list(special_tokens or [])
        if any(not isinstance(t, str) or not t for t in names) or len(set(names)) != len(names):
            raise ValueError(f"special_tokens must be distinct non-empty strings, got {names!r}")
        self.pattern = pattern
        self._regex = regex.compile(pattern) if pattern else None
        self._special_names = names
        self._set_merges([])

    # ------------------------------------------------------------------------------------ state
    def _set_merges(self, history: list[tuple[Pair, int, int]]) -> None:
        """Rebuild merges, vocabulary and special ids from the merge history (the single source of truth)."""
        self.history: list[tuple[Pair, int, int]] = history
        self.merges: dict[Pair, int] = {pair: new_id for pair, new_id, _ in history}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id, _ in history:
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        first_special = 256 + len(history)
        self.special_tokens: dict[str, int] = {t: first_special + i for i, t in enumerate(self._special_names)}
        for name, i in self.special_tokens.items():
            self.vocab[i] = name.encode("utf-8")
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    @property
    def num_merges(self) -> int:
        return len(self.merges)

    @property
    def eos_token_id(self) -> int | None:
        return self.special_tokens.get("<|endoftext|>")

    def _chunks(self, text: str) -> list[str]:
        if self._regex is None:
            return [text] if text else []
        return self._regex.findall(text)

    # ---------------------------------------------------------------------------------- training
    def train(self, text: str, vocab_size: int, verbose: bool = False, progress: bool = True) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``; returns ``self``.

        ``verbose`` prints every merge; ``progress`` shows a progress bar. If the text runs out of pairs
        first, training stops early with a warning (the vocabulary is then smaller than asked).
        """
        num_merges = vocab_size - 256 - len(self._special_names)
        if num_merges < 0:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the 256 byte values and "
                f"{len(self._special_names)} special token(s) already need {256 + len(self._special_names)}"
            )

        # 1. unique chunks and their frequencies (special tokens are cut out and never learned from)
        freq: Counter[str] = Counter()
        for piece, is_special in split_special(fix_surrogates(text), self._special_names):
            if not is_special:
                freq.update(self._chunks(piece))
        words = [list(chunk.encode("utf-8")) for chunk in freq]
        weights = list(freq.values())

        # 2. count every pair once, remembering which chunks hold it
        counts: dict[Pair, int] = defaultdict(int)
        where: dict[Pair, set[int]] = defaultdict(set)
        for w, (word, weight) in enumerate(zip(words, weights, strict=True)):
            for pair in pairwise(word):
                counts[pair] += weight
                where[pair].add(w)
        heap = [(-c, pair) for pair, c in counts.items()]
        heapq.heapify(heap)

        # 3. merge, updating only the chunks that contain the chosen pair
        history: list[tuple[Pair, int, int]] = []
        pieces = {i: bytes([i]) for i in range(256)}  # only for printing with verbose=True
        bar = tqdm(total=num_merges, desc="BPE merges", disable=not progress, leave=False)
        while len(history) < num_merges:
            best = self._pop_best(heap, counts)
            if best is None:
                warnings.warn(
                    f"the text ran out of pairs after {len(history)} merges (asked for {num_merges}); "
                    f"vocab_size is {256 + len(history) + len(self._special_names)}",
                    stacklevel=2,
                )
                break
            pair, count = best
            new_id = 256 + len(history)
            delta: dict[Pair, int] = defaultdict(int)
            for w in where.pop(pair):
                word, weight = words[w], weights[w]
                for old in pairwise(word):
                    delta[old] -= weight
                word = merge_pair(word, pair, new_id)
                words[w] = word
                for new in pairwise(word):
                    delta[new] += weight
                    where[new].add(w)
            for p, d in delta.items():
                if d:
                    counts[p] += d
                    if counts[p] > 0:
                        heapq.heappush(heap, (-counts[p], p))
                    else:
                        del counts[p]
            history.append((pair, new_id, count))
            pieces[new_id] = pieces[pair[0]] + pieces[pair[1]]
            if verbose:
                left, right = (token_label(pieces[i]) for i in pair)
                print(f"merge {len(history)}/{num_merges}: {pair} -> {new_id} ({left!r}+{right!r}) x{count}")
            bar.update(1)
        bar.close()
        self._set_merges(history)
        return self

    @staticmethod
    def _pop_best(heap: list[tuple[int, Pair]], counts: dict[Pair, int]) -> tuple[Pair, int] | None:
        """The most frequent pair (smallest pair on ties); stale heap entries are skipped, not updated."""
        while heap:
            neg, pair = heap[0]
            if counts.get(pair, 0) == -neg:
                return pair, -neg
            heapq.heappop(heap)
        return None

    # ---------------------------------------------------------------------------------- encoding
    def encode(
        self,
        text: str,
        allowed_special: AllowedSpecial = DEFAULT_ALLOWED,
        disallowed_special: AllowedSpecial = DEFAULT_DISALLOWED,
        max_merges: int | None = None,
    ) -> list[int]:
        """Text -> ids. ``max_merges=k`` uses only the first ``k`` merges (the merge explorer's slider).

        Special tokens follow tiktoken: produced only when in ``allowed_special``; by default finding one
        in the text is an error (see :class:`~gptmini.tokenizers.base.SpecialTokenizer`).
        """
        if max_merges is not None and max_merges < 0:
            raise ValueError(f"max_merges must be >= 0, got {max_merges}")
        limit = self.num_merges if max_merges is None else min(max_merges, self.num_merges)
        return self._encode_pieces(text, allowed_special, disallowed_special, lambda p: self._encode_piece(p, limit))

    def _encode_ordinary(self, piece: str) -> list[int]:
        return self._encode_piece(piece, self.num_merges)

    def _encode_piece(self, piece: str, limit: int) -> list[int]:
        ids: list[int] = []
        for chunk in self._chunks(piece):
            ids.extend(self._encode_chunk(chunk, limit))
        return ids

    def _encode_chunk(self, chunk: str, limit: int) -> list[int]:
        full = limit == self.num_merges
        if full and chunk in self._cache:
            return self._cache[chunk]
        ids = list(chunk.encode("utf-8"))
        last_allowed = 256 + limit  # merge ids are 256, 257, ... in training order
        while len(ids) >= 2:
            # apply the earliest-learned merge present; repeating this reproduces the training order
            pair = min(pairwise(ids), key=lambda p: self.merges.get(p, last_allowed))
            new_id = self.merges.get(pair, last_allowed)
            if new_id >= last_allowed:
                break
            ids = merge_pair(ids, pair, new_id)
        if full:
            self._cache[chunk] = ids
        return ids

    # ---------------------------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as err:
            raise ValueError(f"id {err.args[0]} is not in the vocabulary (size {self.vocab_size})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Byte sequences that are not valid UTF-8 become U+FFFD instead of raising."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        return [token_label(self.decode_bytes([i])) for i in ids]

    # -------------------------------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Write plain JSON: the pattern, the special tokens and the merges in order (with their counts)."""
        payload = {
            "type": "bpe",
            "pattern": self.pattern,
            "special_tokens": self._special_names,
            "merges": [[a, b, count] for (a, b), _, count in self.history],
        }
        return write_json(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read :meth:`save`'s JSON back; ids that are not integers, or refer to later merges, are refused."""
        fields = load_fields(path, "bpe")
        specials = fields.list("special_tokens", [])
        pattern = fields.str("pattern", GPT2_PATTERN, allow_none=True)
        try:
            tok = cls(special_tokens=specials, pattern=pattern)
        except (ValueError, regex.error) as err:
            raise ValueError(f"{fields.source}: {err}") from err
        history = []
        for rank, merge in enumerate(fields.list("merges")):
            ok = isinstance(merge, list) and len(merge) == 3 and all(is_int(x) and x >= 0 for x in merge)
            if not ok:
                raise ValueError(f"{fields.source}: merge {rank} must be [first id, second id, count], got {merge!r}")
            a, b, count = merge
            if not (a < 256 + rank and b < 256 + rank):
                raise ValueError(f"{fields.source}: merge {rank} uses ids ({a}, {b}) that do not exist yet")
            history.append(((a, b), 256 + rank, count))
        tok._set_merges(history)
        return tok

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={self.num_merges}, "
            f"special_tokens={self._special_names!r})"
        )
