"""An n-gram Bloom filter, as GPT-2 used to measure how much of a test set already occurs in training text.

A Bloom filter answers "have I seen this item?" with a bit array and k hash functions: adding an item
sets k bits, a query checks them. It never says "no" for an item that was added (no false negatives)
and says "yes" for an unseen item with a small, tunable probability (false positives), all in a few bits
per item instead of storing the items themselves.

Each item's k positions are k *distinct* bits drawn from a stream of blake2b digests (a uniformly random
k-subset of the m bits). blake2b is stable across runs and machines; Python's built-in ``hash()`` is
salted per process, so a filter built with it could not be saved and reused.

Sizing: the textbook m = -n ln p / (ln 2)^2 and k = (m / n) ln 2 are approximations that fail for small
filters (two items at p = 1e-4 would get 39 bits). So :func:`optimal_size` starts there and grows m
until the false-positive rate *computed exactly* for n items (:func:`false_positive_rate`) is at most p.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterable, Iterator

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_EIGHT_U64 = struct.Struct("<8Q")  # one 64-byte blake2b digest = eight 64-bit numbers
_PERSONS = [block.to_bytes(16, "little") for block in range(1 << 12)]  # digest blocks: enough for any k < m
_EXACT_LIMIT = 600  # n * k up to which the false-positive rate is computed exactly (a small dynamic program)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def false_positive_rate(capacity: int, num_bits: int, num_hashes: int) -> float:
    """The false-positive rate of a filter of ``num_bits`` holding ``capacity`` items, k distinct bits each.

    A probe is a false positive when its k bits are all set: C(X, k) / C(m, k) for X bits set. X is the
    size of the union of n random k-subsets; its distribution is computed item by item (an item adds j
    new bits with the hypergeometric probability C(m - x, j) C(x, k - j) / C(m, k)). For large n * k the
    union is concentrated and the rate is (1 - (1 - k/m)^n)^k.
    """
    n, m, k = capacity, num_bits, num_hashes
    if k > m:
        return 1.0
    if n * k > _EXACT_LIMIT:
        return (1.0 - (1.0 - k / m) ** n) ** k
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + 1)))])

    def log_choose(a: np.ndarray, b: int | np.ndarray) -> np.ndarray:
        return log_fact[a] - log_fact[b] - log_fact[a - b]

    x = np.arange(m + 1)
    log_total = log_choose(np.array(m), k)
    dist = np.zeros(m + 1)
    dist[0] = 1.0
    for _ in range(n):
        nxt = np.zeros(m + 1)
        for j in range(k + 1):  # x bits set, the item adds j new ones: x from k - j to m - j
            xs = x[max(0, k - j) : m - j + 1]
            nxt[xs + j] += dist[xs] * np.exp(log_choose(m - xs, j) + log_choose(xs, k - j) - log_total)
        dist = nxt
    xs = x[k:]
    return float(np.sum(dist[xs] * np.exp(log_choose(xs, k) - log_total)))


def optimal_size(capacity: int, error_rate: float) -> tuple[int, int]:
    """(bits m, hash count k): the smallest m (from the textbook size up) whose exact rate is <= ``error_rate``.

    For large filters this is the textbook m = -n ln p / (ln 2)^2, k = (m / n) ln 2 (or a few bits more);
    for small ones it is larger, because the textbook formula assumes many items.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be an integer of at least 1 item, got {capacity!r}")
    if not 0.0 < error_rate < 1.0:
        raise ValueError(f"error_rate must be a probability strictly between 0 and 1, got {error_rate}")
    m = max(8, math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2))
    while True:
        best = min(m // 2, max(1, round(m / capacity * math.log(2))))  # m >= 2k: distinct bits come cheap
        for k in sorted({best, max(1, best - 1), min(m // 2, best + 1)}, key=lambda k: (abs(k - best), k)):
            if false_positive_rate(capacity, m, k) <= error_rate:
                return m, k
        m += max(1, m // 100)


class BloomFilter:
    """A set-like filter of strings: ``add``, ``in``; sized for ``capacity`` items at ``error_rate``."""

    def __init__(self, capacity: int, error_rate: float = 1e-3, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not -(2**127) <= seed < 2**127:
            raise ValueError(f"seed must be an integer in [-2**127, 2**127) (it salts the hash), got {seed!r}")
        self.capacity = capacity
        self.error_rate = error_rate
        self.num_bits, self.num_hashes = optimal_size(capacity, error_rate)
        self.bits = bytearray((self.num_bits + 7) // 8)
        self.seed = seed
        self._salt = seed.to_bytes(16, "little", signed=True)  # negative seeds are as good as positive ones
        self.count = 0  # items added (duplicates included)

    def _positions(self, item: str) -> Iterator[int]:
        """k distinct bit positions, uniformly random given the item: digests of (item, block) read 8 bytes
        at a time; a position already taken is skipped (m >= 2k, so that is rare)."""
        data, m, k = item.encode("utf-8"), self.num_bits, self.num_hashes
        seen: set[int] = set()
        for person in _PERSONS:
            digest = hashlib.blake2b(data, digest_size=64, salt=self._salt, person=person).digest()
            for value in _EIGHT_U64.unpack(digest):
                pos = value % m
                if pos not in seen:
                    seen.add(pos)
                    yield pos
                    if len(seen) == k:
                        return

    def add(self, item: str) -> None:
        bits = self.bits
        for pos in self._positions(item):
            bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def update(self, items: Iterable[str]) -> None:
        for item in items:
            self.add(item)

    def __contains__(self, item: str) -> bool:
        return all(self.bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(item))

    def bits_set(self) -> int:
        return sum(bin(byte).count("1") for byte in self.bits)

    def fill_ratio(self) -> float:
        """Fraction of bits set."""
        return self.bits_set() / self.num_bits

    def expected_error_rate(self) -> float:
        """This filter's false-positive rate given the bits actually set: C(set, k) / C(m, k)."""
        x, k = self.bits_set(), self.num_hashes
        return 0.0 if x < k else math.exp(_log_choose(x, k) - _log_choose(self.num_bits, k))

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


def _progress(items: Iterable[str], total: int, desc: str, show: bool) -> Iterable[str]:
    """``items`` behind a tqdm bar when ``show`` (hashing a whole corpus takes ten seconds or more)."""
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit=" n-grams", mininterval=0.5)


def build_filter(
    texts: Iterable[str], n: int = 8, error_rate: float = 1e-4, seed: int = 0, progress: bool = False
) -> BloomFilter:
    """A filter holding every word n-gram of ``texts`` (sized from their count).

    ``progress=True`` shows a bar while the n-grams are hashed in: on a whole corpus that is the slow part.
    """
    grams = {g for text in texts for g in ngrams(text, n)}
    bloom = BloomFilter(max(1, len(grams)), error_rate, seed=seed)
    bloom.update(_progress(grams, len(grams), f"{n}-grams into the filter", progress))
    return bloom


def overlap(
    train_texts: Iterable[str],
    test_texts: Iterable[str],
    n: int = 8,
    error_rate: float = 1e-4,
    bloom: BloomFilter | None = None,
    progress: bool = False,
) -> float:
    """Fraction of the test set's distinct word n-grams that occur in the training texts.

    The answer can only err upwards, by about ``error_rate`` (a false positive), never downwards.
    Pass a ready ``bloom`` (from :func:`build_filter`) to test several sets against one training set;
    ``progress=True`` shows bars while n-grams are hashed.
    """
    if bloom is None:
        bloom = build_filter(train_texts, n, error_rate, progress=progress)
    grams = {g for text in test_texts for g in ngrams(text, n)}
    if not grams:
        raise ValueError(f"the test texts contain no {n}-grams (every text has fewer than {n} words)")
    return sum(g in bloom for g in _progress(grams, len(grams), f"{n}-grams looked up", progress)) / len(grams)
