"""The checks of the exercises the student edition leaves blank, and the exercises of the notebooks.

The editions themselves (nbgrader: release, autograde) are tested in tests/test_nbgrader.py.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from gptmini.config import GPTConfig
from gptmini.course.checks import package_version
from gptmini.course.checks._report import CheckResult
from gptmini.course.checks.nb01 import check_follower, check_get_batch, check_lower_vocab_size
from gptmini.course.checks.nb02 import check_counted_bigram
from gptmini.course.checks.nb03 import check_softmax
from gptmini.course.checks.nb04 import check_block, check_block_params, check_multihead
from gptmini.course.checks.nb06 import check_gpt2_split, check_merge_pair
from gptmini.course.checks.nb08 import check_embedding_params
from gptmini.course.checks.nb10 import check_bloom_filter
from gptmini.course.nbgrader_source import BEGIN, HINT, regions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Every notebook of the course is written in the marked-solution pattern (teacher edition).
CONVERTED = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


# ----------------------------------------------------------------------------------- the new checks
def _ok(result: CheckResult) -> bool:
    return bool(result) and "✅" in result.message


def _said(result: CheckResult) -> str:
    """Everything a check printed: its verdict and the lines of its sub-checks."""
    return "\n".join([result.message, *(_said(r) for r in result.details)])


def test_check_get_batch():
    data = torch.arange(100)
    assert _ok(check_get_batch(package_version("get_batch"), data))
    swapped = check_get_batch(lambda d, b, t: (d[:t].repeat(b, 1).T, d[1 : t + 1].repeat(b, 1).T), data, 4, 8)
    assert not swapped and "swapped" in swapped.message
    same = check_get_batch(lambda d, b, t: (d[:t].repeat(b, 1), d[:t].repeat(b, 1)), data)
    assert not same and "shifted" in same.message


def test_check_follower_and_vocab():
    text = "quick quiet qatar queen qu"
    assert _ok(check_follower("u", 4 / 5, text))
    assert "that is a count" in check_follower("u", 4, text).message
    assert "not by the length" in check_follower("u", 4 / len(text), text).message
    assert "looks like an id" in check_follower(17, 0.8, text).message
    assert check_follower(None, None, text).pending
    assert _ok(check_lower_vocab_size(len(set("AbBa".lower())), "AbBa"))
    assert "with capitals" in check_lower_vocab_size(4, "AbBa").message


def test_check_counted_bigram():
    g = torch.Generator().manual_seed(0)
    train, val = torch.randint(5, (400,), generator=g), torch.randint(5, (50,), generator=g)
    val[:2] = torch.tensor([4, 4])
    train[train == 4] = 3  # the pair (4, 4) is never seen in training: unsmoothed counts give inf
    counts = torch.zeros(5, 5).index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)

    def loss(table, data):
        return float(-(table / table.sum(1, keepdim=True)).log()[data[:-1], data[1:]].mean())

    assert _ok(check_counted_bigram(loss(counts + 1, val), train, val, 5))
    assert "add 1 to every count" in check_counted_bigram(math.inf, train, val, 5).message
    assert "training pairs" in check_counted_bigram(loss(counts + 1, train), train, val, 5).message
    assert "sign" in check_counted_bigram(-loss(counts + 1, val), train, val, 5).message


def test_check_block_params():
    assert _ok(check_block_params(lambda c: 12 * c * c + 13 * c))
    assert "weight matrices only" in _said(check_block_params(lambda c: 12 * c * c))
    assert "LayerNorms are missing" in _said(check_block_params(lambda c: 12 * c * c + 9 * c))


def test_check_merge_pair():
    assert _ok(check_merge_pair(package_version("merge")))

    def no_skip(ids, pair, new_id):  # after a match, steps by one: the pair's second id survives
        out, i = [], 0
        while i < len(ids):
            out.append(new_id if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair else ids[i])
            i += 1
        return out

    def drops_last(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids) - 1:
            out.append(new_id if (ids[i], ids[i + 1]) == pair else ids[i])
            i += 2 if (ids[i], ids[i + 1]) == pair else 1
        return out

    assert "skip both ids" in check_merge_pair(no_skip).message
    assert "went missing" in check_merge_pair(drops_last).message
    assert check_merge_pair(lambda ids, pair, new_id: None).pending


def test_check_gpt2_split_accepts_a_pattern():
    from gptmini.tokenizers import GPT2_PATTERN

    assert _ok(check_gpt2_split(GPT2_PATTERN))
    partial = check_gpt2_split(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\s+")
    assert not partial and "join back" in _said(partial)
    assert check_gpt2_split(None).pending


def test_check_embedding_params():
    assert _ok(check_embedding_params(50257 * 768 + 1024 * 768))
    assert "token table alone" in check_embedding_params(50257 * 768).message
    assert "count it once" in check_embedding_params(2 * 50257 * 768 + 1024 * 768).message


class _Bloom:
    """A small Bloom filter; ``any_bit`` reproduces the classic mistake of testing one bit out of k."""

    any_bit = False

    def __init__(self, num_bits, num_hashes):
        self.bits, self.k = [False] * num_bits, num_hashes

    def positions(self, item):
        digest = hashlib.blake2b(item.encode(), digest_size=16).digest()  # not hash(): that changes per process
        h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
        return [(h1 + i * h2) % len(self.bits) for i in range(self.k)]

    def add(self, item):
        for p in self.positions(item):
            self.bits[p] = True

    def __contains__(self, item):
        test = any if self.any_bit else all
        return test(self.bits[p] for p in self.positions(item))


class _AnyBloom(_Bloom):
    any_bit = True


class _ForgetfulBloom(_Bloom):
    def add(self, item):
        self.bits[self.positions(item)[0]] = True


def test_check_bloom_filter():
    assert _ok(check_bloom_filter(_Bloom))
    assert "ALL its k bits" in check_bloom_filter(_AnyBloom).message
    assert "lost" in check_bloom_filter(_ForgetfulBloom).message


def test_package_versions_pass_their_checks():
    config = GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=4, n_embd=32, dropout=0.0)
    assert _ok(check_softmax(package_version("softmax")))
    assert _ok(check_multihead(package_version("MultiHeadAttention")(config), config))
    assert _ok(check_block(package_version("PostLNBlock")(config), config.replace(norm="post")))
    assert _ok(check_block(package_version("PreLNBlock")(config), config.replace(norm="pre")))
    with pytest.raises(KeyError):
        package_version("nothing")


def test_the_converted_notebooks_carry_markers_and_no_details():
    marked = {p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if BEGIN in p.read_text(encoding="utf-8")}
    assert len(CONVERTED) == 13 and set(CONVERTED) == marked  # tests/test_nbgrader.py releases and grades each
    with_details = [name for name in CONVERTED if "<details>" in (NOTEBOOKS / name).read_text(encoding="utf-8")]
    assert not with_details, f"answers belong in marked regions (nbgrader clears them), not <details>: {with_details}"


@pytest.mark.parametrize("name", CONVERTED, ids=[n.split("_")[0] for n in CONVERTED])
def test_every_notebook_has_a_few_exercises_each_with_a_hint(name):
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    found = [(i, r) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" for r in regions(_source(c))]
    fewest = 2 if name.startswith("00") else 3  # notebook 00 is a tour of the set-up: two short exercises
    assert fewest <= len(found) <= 8, f"{name}: {len(found)} exercises"
    for i, (begin, _) in found:
        assert _source(nb["cells"][i]).split("\n")[begin + 1].strip().startswith(HINT), f"{name}, cell {i}: no hint"


def test_not_yet_is_one_falsy_line_and_wins_over_a_combined_verdict(capsys):
    from gptmini.course.checks import combine, not_yet, passed
    from gptmini.course.checks.nb08 import check_residual_init
    from gptmini.course.checks.nb09 import check_top_k

    result = check_residual_init(lambda n_layer: None)  # a stub that returns nothing
    assert not result and result.pending
    result = check_top_k(lambda logits, k: (_ for _ in ()).throw(NotImplementedError()))  # a stub that raises
    assert not result and result.pending and "still a stub" in result.message
    capsys.readouterr()
    merged = combine("two parts", [passed("part one"), not_yet("part two")])
    assert merged.pending and capsys.readouterr().out.count("\n") == 2  # no third, combined line
