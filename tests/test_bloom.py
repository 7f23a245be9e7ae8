"""The 8-gram Bloom filter: no false negatives, a false-positive rate near its target, stable hashing."""

import math
import os
import random
import subprocess
import sys

import pytest

from gptmini.bloom import BloomFilter, build_filter, ngrams, optimal_size, overlap, words

TEXT = (
    "Now is the winter of our discontent made glorious summer by this sun of York; and all the clouds "
    "that lour'd upon our house in the deep bosom of the ocean buried. Now are our brows bound with "
    "victorious wreaths; our bruised arms hung up for monuments; our stern alarums changed to merry meetings."
)


def test_optimal_size_hand_worked():
    m, k = optimal_size(1000, 0.01)
    assert m == math.ceil(1000 * math.log(100) / math.log(2) ** 2) == 9586
    assert k == 7  # (m / n) ln 2 = 6.64
    # the textbook false-positive rate of that size is the target
    assert (1 - math.exp(-k * 1000 / m)) ** k == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("capacity, rate", [(0, 0.01), (10, 0.0), (10, 1.0)])
def test_bad_sizes_are_rejected(capacity, rate):
    with pytest.raises(ValueError):
        BloomFilter(capacity, rate)


def test_words_and_ngrams():
    assert words("The cat, the HAT!") == ["the", "cat", "the", "hat"]
    assert ngrams("The cat, the HAT!", 2) == ["the cat", "cat the", "the hat"]
    assert ngrams("too short", 8) == []
    assert len(ngrams(TEXT, 8)) == len(words(TEXT)) - 7


def test_every_inserted_ngram_is_found():
    from gptmini.data import shakespeare_plays

    text = shakespeare_plays()[0].text
    grams = ngrams(text, 8)
    bloom = build_filter([text], n=8, error_rate=1e-3)
    assert len(grams) > 10_000
    assert all(g in bloom for g in grams)


def test_measured_false_positive_rate_is_near_target():
    rng = random.Random(0)
    inserted = {f"{rng.getrandbits(64):x} in" for _ in range(5000)}
    bloom = BloomFilter(len(inserted), error_rate=0.01)
    bloom.update(inserted)
    assert all(item in bloom for item in inserted)
    probes = [f"{rng.getrandbits(64):x} out" for _ in range(20000)]
    rate = sum(p in bloom for p in probes) / len(probes)
    assert 0.005 < rate < 0.02  # target 1 %; the binomial spread at 20,000 probes is 0.07 %
    assert bloom.expected_error_rate() == pytest.approx(0.01, rel=0.2)


def test_hashing_is_stable_across_processes():
    import gptmini.bloom

    # load the module file alone (bloom.py imports nothing of ours) so the child need not import torch
    code = (
        "import importlib.util as u;"
        f"s = u.spec_from_file_location('bloom', {gptmini.bloom.__file__!r}); m = u.module_from_spec(s);"
        "s.loader.exec_module(m);"
        "b = m.BloomFilter(100, 0.01); b.update(['to be or not to be that is']);"
        "print(b.bits.hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}  # a different salt for Python's own hash()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    out = out.stdout.strip()
    here = BloomFilter(100, 0.01)
    here.update(["to be or not to be that is"])
    assert out == here.bits.hex()
    assert sum(bin(b).count("1") for b in here.bits) <= here.num_hashes


def test_overlap_hand_worked():
    train = " ".join(f"w{i}" for i in range(20))
    test = " ".join([f"w{i}" for i in range(10, 20)] + [f"x{i}" for i in range(10)])
    # test has 20 words -> 13 eight-grams; only those inside w10..w19 (3 of them) occur in train
    assert overlap([train], [test], n=8, error_rate=1e-6) == pytest.approx(3 / 13)
    assert overlap([train], [train], n=8) == 1.0
    with pytest.raises(ValueError, match="8-grams"):
        overlap([train], ["too short"], n=8)
