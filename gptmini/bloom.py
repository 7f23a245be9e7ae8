"""An n-gram Bloom filter, as GPT-2 used to measure how much of a test set already occurs in training text.

A Bloom filter answers "have I seen this item?" with a bit array and k hash functions: adding an item
sets k bits, a query checks them. It never says "no" for an item that was added (no false negatives)
and says "yes" for an unseen item with a small, tunable probability (false positives), all in a few bits
per item instead of storing the items themselves.

The k positions come from one blake2b digest split into two 64-bit numbers h1, h2 and combined as
``h1 + i * h2 (mod m)`` (double hashing). blake2b is stable across runs and machines; Python's built-in
``hash()`` is salted per process, so a filter built with it could not be saved and reused.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator

_WORD = re.compile(r"[a-z0-9]+")


def optimal_size(capacity: int, error_rate: float) -> tuple[int, int]:
    """(bits m, hash count k) for ``capacity`` items at false-positive rate ``error_rate``.

    m = -n ln p / (ln 2)^2 and k = (m / n) ln 2 minimise the false-positive rate for a given memory.
    """
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1 item, got {capacity}")
    if not 0.0 < error_rate < 1.0:
        raise ValueError(f"error_rate must be a probability strictly between 0 and 1, got {error_rate}")
    m = max(8, math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2))
    k = max(1, round(m / capacity * math.log(2)))
    return m, k


class BloomFilter:
    """A set-like filter of strings: ``add``, ``in``; sized for ``capacity`` items at ``error_rate``."""

    def __init__(self, capacity: int, error_rate: float = 1e-3, seed: int = 0) -> None:
        self.capacity = capacity
        self.error_rate = error_rate
        self.num_bits, self.num_hashes = optimal_size(capacity, error_rate)
        self.bits = bytearray((self.num_bits + 7) // 8)
        self.seed = seed
        self._salt = seed.to_bytes(8, "little", signed=False)
        self.count = 0  # items added (duplicates included)

    def _positions(self, item: str) -> Iterator[int]:
        digest = hashlib.blake2b(item.encode("utf-8"), digest_size=16, salt=self._salt).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1  # odd, so the k positions do not collapse onto one
        m = self.num_bits
        for i in range(self.num_hashes):
            yield (h1 + i * h2) % m

    def add(self, item: str) -> None:
        for pos in self._positions(item):
            self.bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def update(self, items: Iterable[str]) -> None:
        for item in items:
            self.add(item)

    def __contains__(self, item: str) -> bool:
        return all(self.bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(item))

    def fill_ratio(self) -> float:
        """Fraction of bits set; the false-positive rate is about fill_ratio ** num_hashes."""
        return sum(bin(byte).count("1") for byte in self.bits) / self.num_bits

    def expected_error_rate(self) -> float:
        """The false-positive rate predicted from the bits actually set."""
        return self.fill_ratio() ** self.num_hashes

    def __repr__(self) -> str:
        return (
            f"BloomFilter(bits={self.num_bits}, hashes={self.num_hashes}, items={self.count}, "
            f"target_error={self.error_rate})"
        )


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words: the normalisation GPT-2 applied before comparing n-grams."""
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int = 8) -> list[str]:
    """The word n-grams of ``text`` as space-joined strings (none if the text has fewer than n words)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    toks = words(text)
    return [" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def build_filter(texts: Iterable[str], n: int = 8, error_rate: float = 1e-4, seed: int = 0) -> BloomFilter:
    """A filter holding every word n-gram of ``texts`` (sized from their count)."""
    grams = {g for text in texts for g in ngrams(text, n)}
    bloom = BloomFilter(max(1, len(grams)), error_rate, seed=seed)
    bloom.update(grams)
    return bloom


def overlap(
    train_texts: Iterable[str],
    test_texts: Iterable[str],
    n: int = 8,
    error_rate: float = 1e-4,
    bloom: BloomFilter | None = None,
) -> float:
    """Fraction of the test set's distinct word n-grams that occur in the training texts.

    The answer can only err upwards, by about ``error_rate`` (a false positive), never downwards.
    Pass a ready ``bloom`` (from :func:`build_filter`) to test several sets against one training set.
    """
    if bloom is None:
        bloom = build_filter(train_texts, n, error_rate)
    grams = {g for text in test_texts for g in ngrams(text, n)}
    if not grams:
        raise ValueError(f"the test texts contain no {n}-grams (every text has fewer than {n} words)")
    return sum(g in bloom for g in grams) / len(grams)
