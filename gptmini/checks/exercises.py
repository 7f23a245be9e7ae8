"""Checks whose reference answer used to sit in plain sight in a check cell (notebooks 01, 02, 04, 06, 08, 10).

A check cell that computes the answer next to the learner's hands it out; these helpers compute it out of
sight and, as the other checks do, name a typical mistake when they recognise one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from ._report import (
    CheckResult,
    call_answer,
    call_learner,
    combine,
    compare_values,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = [
    "check_get_batch",
    "check_follower",
    "check_lower_vocab_size",
    "check_counted_bigram",
    "check_block_params",
    "check_merge_pair",
    "check_embedding_params",
    "check_bloom_filter",
]


# ------------------------------------------------------------------------------------------------ 01
def check_get_batch(get_batch_fn: Callable[..., Any], data: torch.Tensor, batch_size: int = 4, block_size: int = 8):
    """``get_batch_fn(data, batch_size, block_size)`` -> (x, y): windows of ``data`` and the same shifted by one."""
    from .part1 import check_batch

    require_callable(get_batch_fn, "get_batch_fn", "check_get_batch")
    value, error = call_answer("get_batch(data, batch_size, block_size)", get_batch_fn, data, batch_size, block_size)
    if error is not None:
        return error
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        return failed("get_batch(data, batch_size, block_size)", "should return the pair (x, y)")
    x, y = value
    if isinstance(x, torch.Tensor) and x.dim() == 2 and x.size(0) != batch_size and x.size(0) == block_size:
        return failed("x", f"has shape {tuple(x.shape)}: rows and columns are swapped", "stack the windows: (batch, T)")
    return check_batch(x, y, data, block_size)


def _follower_counts(text: str, after: str) -> Counter:
    return Counter(b for a, b in zip(text, text[1:], strict=False) if a == after)


def check_follower(char: Any, share: Any, text: str, after: str = "q") -> CheckResult:
    """The character that most often follows ``after`` in ``text``, and the share of ``after``s it follows."""
    if char is None or share is None:
        return not_yet(f"the character after {after!r} and its share")
    counts = _follower_counts(text, after)
    if not counts:
        raise ValueError(f"check_follower: {after!r} never occurs in the text")
    best, n = counts.most_common(1)[0]
    expected_share = n / sum(counts.values())
    first = compare_values(f"the character after {after!r}", char, best, show=False)
    if not first:
        hint = None
        if isinstance(char, int) and not isinstance(char, bool):
            hint = "that looks like an id; decode it to a character (itos[id] or tok.decode([id]))"
        return failed(f"the character after {after!r}", f"differs: got {char!r}", hint)
    hint = None
    if isinstance(share, (int, float)) and not isinstance(share, bool):
        if share == n:
            hint = f"that is a count; divide by the number of {after!r}s followed by something"
        elif math.isclose(share, n / len(text), rel_tol=1e-6):
            hint = f"divide by the number of {after!r}s, not by the length of the text"
        elif math.isclose(share, 100 * expected_share, rel_tol=1e-6):
            hint = "a share is between 0 and 1, not a percentage"
    second = compare_values(f"the share of {after!r}s followed by {best!r}", share, expected_share, hint, show=False)
    if not second:
        return second.show()
    return passed(f"{best!r} follows {after!r} in {expected_share:.1%} of cases, as you found")


def check_lower_vocab_size(value: Any, text: str) -> CheckResult:
    """The number of distinct characters of ``text`` once it is lower-cased."""
    if value is None:
        return not_yet("lower_vocab_size")
    expected = len(set(text.lower()))
    hint = None
    if value == len(set(text)):
        hint = "that is the vocabulary with capitals; count the characters of text.lower()"
    elif value == len(text.lower()):
        hint = "that counts every character of the text; count the different ones, set(...)"
    return compare_values("vocabulary size of the lower-cased text", value, expected, hint)


# ------------------------------------------------------------------------------------------------ 02
def check_counted_bigram(value: Any, train_data: torch.Tensor, val_data: torch.Tensor, vocab_size: int):
    """Mean -log P(b | a) over the validation pairs, with P counted on ``train_data`` plus add-one smoothing."""
    if value is None:
        return not_yet("count_val_loss")
    v = vocab_size
    counts = torch.bincount(train_data[:-1] * v + train_data[1:], minlength=v * v).view(v, v).double()

    def loss(table: torch.Tensor, data: torch.Tensor) -> float:
        probs = table / table.sum(1, keepdim=True)
        return float(-probs[data[:-1], data[1:]].log().mean())

    expected = loss(counts + 1, val_data)
    got = float(value) if isinstance(value, (int, float, torch.Tensor)) else value
    hint = None
    if isinstance(got, float):
        if math.isinf(got) or math.isclose(got, loss(counts, val_data), rel_tol=1e-6):
            hint = "some validation pairs were never seen, so P = 0 and -log P = inf: add 1 to every count first"
        elif math.isclose(got, -expected, rel_tol=1e-6):
            hint = "the sign is flipped: the loss is the mean of -log P"
        elif math.isclose(got, loss(counts + 1, train_data), rel_tol=1e-6):
            hint = "that is the loss on the training pairs; evaluate on val_data"
        elif math.isclose(got, loss(counts.T + 1, val_data), rel_tol=1e-6):
            hint = "the table is transposed: row = the current character a, column = the next one b"
    return compare_values("validation loss of the counted bigram", got, expected, hint)


# ------------------------------------------------------------------------------------------------ 04
def check_block_params(block_params: Callable[[int], Any]) -> CheckResult:
    """``block_params(C)`` -> the number of parameters of gptmini's ``Block`` of width C (biases included)."""
    from ..config import GPTConfig
    from ..model import Block

    require_callable(block_params, "block_params", "check_block_params")
    results = []
    for width in (32, 768):
        what = f"parameters of a block with C = {width}"
        value, error = call_answer(what, block_params, width)
        if error is not None:
            return error
        with torch.device("meta"):
            block = Block(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=4, n_embd=width))
        expected = sum(p.numel() for p in block.parameters())
        c = width
        hint = None
        if value == 12 * c * c:
            hint = "that counts the weight matrices only; add the biases and the LayerNorms' gamma and beta"
        elif value == expected - 4 * c:
            hint = "the two LayerNorms are missing: each has gamma and beta, C numbers each"
        elif value == 4 * c * c + 6 * c:
            hint = "that is the attention alone; add the MLP (C -> 4C -> C)"
        results.append(compare_values(what, value, expected, hint))
    return combine("check_block_params", results)


# ------------------------------------------------------------------------------------------------ 06
MERGE_CASES = (
    ([1, 2, 3, 1, 2], (1, 2), 256),
    ([5, 5, 5, 5], (5, 5), 300),
    ([5, 5, 5], (5, 5), 300),
    ([7, 8], (8, 7), 256),
    ([], (1, 2), 256),
)


def _merge_without_skip(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """The usual slip: after a match, step by one, so the pair's second id stays (and may pair again)."""
    return [new_id if (a, b) == pair else a for a, b in zip(ids, ids[1:], strict=False)] + ids[-1:]


def check_merge_pair(merge_fn: Callable[[list[int], tuple[int, int], int], Any]) -> CheckResult:
    """``merge_fn(ids, pair, new_id)``: every occurrence of ``pair`` replaced, left to right, without overlaps."""
    from ..tokenizers.bpe import merge_pair

    require_callable(merge_fn, "merge_fn", "check_merge_pair")
    for ids, pair, new_id in MERGE_CASES:
        what = f"merge({ids}, {pair}, {new_id})"
        value, error = call_answer(what, merge_fn, list(ids), pair, new_id)
        if error is not None:
            return error
        expected = merge_pair(list(ids), pair, new_id)
        got = list(value) if isinstance(value, (list, tuple)) else value
        if got == expected:
            continue
        hint = None
        if got == _merge_without_skip(list(ids), pair, new_id):
            hint = "the second id of each merged pair is still there: after a merge, skip both ids (i += 2)"
        elif isinstance(got, list) and len(got) < len(expected):
            hint = "an id went missing: when the loop reaches the last id, it has no partner, so append it as it is"
        return compare_values(what, got, expected, hint)
    return passed(f"merge matches gptmini's merge_pair on {len(MERGE_CASES)} cases (overlaps and the empty list)")


# ------------------------------------------------------------------------------------------------ 08
def check_embedding_params(value: Any) -> CheckResult:
    """GPT-2 small's token table plus position table, counted on a real ``GPT(GPTConfig.preset("gpt2"))``."""
    from ..config import GPTConfig
    from ..model import GPT

    if value is None:
        return not_yet("embedding_params")
    with torch.device("meta"):  # shapes only, no memory
        model = GPT(GPTConfig.preset("gpt2"))
    wte, wpe = model.transformer.wte.weight.numel(), model.transformer.wpe.weight.numel()
    expected = wte + wpe
    hint = None
    if value == wte:
        hint = "that is the token table alone; add the position table (1,024 × 768)"
    elif value == 2 * wte + wpe:
        hint = "the output layer shares the token table (weight tying): count it once"
    elif value == 50000 * 768 + wpe:
        hint = "the vocabulary is 50,257 tokens: 50,000 merges + 256 bytes + <|endoftext|>"
    result = compare_values("embedding parameters of GPT-2 small", value, expected, hint, show=False)
    if not result:
        return result.show()
    total = model.num_params(non_embedding=False)
    return passed(f"{expected:,} of GPT-2 small's {total:,} parameters ({expected / total:.0%}) are the two tables")


# ------------------------------------------------------------------------------------------------ 10
def _bloom_items(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i} gram of eight words in a row {i * 7}" for i in range(n)]


def check_bloom_filter(bloom_class: type, num_bits: int = 2000, num_hashes: int = 4) -> CheckResult:
    """``bloom_class(num_bits, num_hashes)`` with ``add(item)`` and ``item in filter``: a working Bloom filter.

    Added items must always be found (no false negatives); 200 items in 2,000 bits with 4 hashes should
    wrongly "find" about 1 - 2 % of items never added, as gptmini's ``BloomFilter`` does.
    """
    if not isinstance(bloom_class, type):
        raise TypeError(f"check_bloom_filter expects your class (not an instance), got {type(bloom_class).__name__}")
    bloom, error = call_learner("your Bloom filter(num_bits, num_hashes)", bloom_class, num_bits, num_hashes)
    if error is not None:
        return error
    added, others = _bloom_items("seen", 200), _bloom_items("unseen", 2000)
    for item in added:
        _, error = call_learner("add(item)", bloom.add, item)
        if error is not None:
            return error
    found, error = call_learner("item in filter", lambda items: [item in bloom for item in items], added + others)
    if error is not None:
        return error
    missing = sum(not f for f in found[: len(added)])
    false_rate = sum(found[len(added) :]) / len(others)
    expected_rate = (1 - math.exp(-num_hashes * len(added) / num_bits)) ** num_hashes  # about 1.2 %
    if missing:
        return failed(
            "your Bloom filter",
            f"lost {missing} of {len(added)} added items",
            "add must set all k bits of the item, and `in` must read the very same k positions",
        )
    if false_rate > 0.5:
        return failed(
            "your Bloom filter",
            f"says {false_rate:.0%} of items never added are present",
            "an item is present only if ALL its k bits are set (all(...), not any(...))",
        )
    if false_rate > 5 * expected_rate + 0.01:
        return failed(
            "your Bloom filter",
            f"has a false-positive rate of {false_rate:.1%}, expected about {expected_rate:.1%}",
            "use k different positions per item (e.g. (h1 + i * h2) % num_bits), and check all of them",
        )
    return passed(
        f"your Bloom filter finds all {len(added)} added items and wrongly finds {false_rate:.1%} of "
        f"{len(others)} others (theory: {expected_rate:.1%})"
    )
