"""Notebook 01 (text to tokens): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ...tokenizers import CharTokenizer
from ._report import (
    NONE_MESSAGE,
    STUB_MESSAGE,
    CheckResult,
    call_learner,
    combine,
    compare_values,
    failed,
    not_yet,
    passed,
    raised,
    require_callable,
)

__all__ = [
    "check_char_tokenizer",
    "check_tokenizer_builder",
    "check_pairs",
    "check_batch",
    "check_get_batch",
    "check_follower",
    "check_lower_vocab_size",
]


def check_char_tokenizer(
    encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], text: str
) -> CheckResult:
    """Your ``encode``/``decode`` against ``CharTokenizer.from_text(text)``: the same ids, and a round trip.

    The vocabulary is expected to be the *sorted* set of characters of ``text`` (so ids are the same on
    every machine); ``text`` is the text the vocabulary was built from, or a piece of it.
    """
    require_callable(encode, "encode", "check_char_tokenizer")
    require_callable(decode, "decode", "check_char_tokenizer")
    if not isinstance(text, str) or not text:
        raise TypeError("check_char_tokenizer(encode, decode, text): text must be a non-empty string")
    sample = text[:2000]
    reference = CharTokenizer.from_text(text)
    ids, error = call_learner("encode(text)", encode, sample, may_return_none=True)
    if error is not None:
        return error
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    first = compare_values(
        "encode(text)",
        list(ids) if isinstance(ids, (list, tuple)) else ids,
        reference.encode(sample),
        hint="ids are positions in sorted(set(text)); e.g. stoi = {ch: i for i, ch in enumerate(chars)}",
    )
    back, error = call_learner("decode(encode(text))", decode, reference.encode(sample), may_return_none=True)
    if error is not None:
        return combine("char tokenizer", [first, error])
    second = compare_values(
        "decode(encode(text))", back, sample, hint="decode should join itos[i] for each id into one string"
    )
    return combine("char tokenizer", [first, second])


_OTHER_TEXT = "to be, or not to be: that is the question"


def check_tokenizer_builder(build: Callable[[str], Any], text: str) -> CheckResult:
    """``build(text)`` -> ``(encode, decode)``: a character tokenizer whose vocabulary is ``text``'s sorted characters.

    Tried on ``text`` (a piece of it encoded) and on a short text of its own, whose vocabulary is different: the
    ids must be those of ``CharTokenizer.from_text`` and ``decode(encode(s))`` must give ``s`` back.
    """
    require_callable(build, "build", "check_tokenizer_builder")
    if not isinstance(text, str) or not text:
        raise TypeError("check_tokenizer_builder(build, text): text must be a non-empty string")
    results = []
    for source, label in ((text, "the corpus"), (_OTHER_TEXT, "a short text")):
        what = f"the tokenizer of {label}"
        pair, error = call_learner(what, build, source)
        if error is not None:
            return error
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(callable(f) for f in pair)):
            return failed(what, f"should be the pair (encode, decode) of functions, got {type(pair).__name__}")
        encode, decode = pair
        sample = source[:2000]
        reference = CharTokenizer.from_text(source)
        expected = reference.encode(sample)
        try:
            ids = encode(sample)
        except NotImplementedError:
            return not_yet(f"encode, with {what}", STUB_MESSAGE)
        except Exception as err:  # the learner's code: where it failed, and why when a character is missing
            hint = None
            if isinstance(err, KeyError) and source is not text:
                hint = "a character of this text has no id: build the vocabulary from the text you are given"
            return raised(f"encode, with {what}", err, hint)
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        ids = list(ids) if isinstance(ids, (list, tuple)) else ids
        hint = _id_slip(ids, expected, sample, text) if isinstance(ids, list) and ids != expected else None
        results.append(compare_values(f"encode for {label}", ids, expected, hint))
        if not results[-1]:
            break
        back, error = call_learner(f"decode, with {what}", decode, expected)
        if error is not None:
            return error
        hint = None
        if isinstance(back, (list, tuple)) and "".join(map(str, back)) == sample:
            hint = "decode gives one string: the characters of the ids, joined"
        results.append(compare_values(f"decode(encode(s)) for {label}", back, sample, hint))
    return combine("check_tokenizer_builder", results)


def _id_slip(ids: list, expected: list[int], sample: str, corpus: str) -> str | None:
    """The usual slips of a vocabulary, recognised from the ids they give."""
    if all(isinstance(i, int) for i in ids) and ids == [i + 1 for i in expected]:
        return "ids are places in the vocabulary, and the first place is 0"
    if sample != corpus[: len(sample)] and ids == CharTokenizer.from_text(corpus).encode(sample):
        return "those are the corpus's ids: build the vocabulary from the text you are given"
    if len(ids) == len(sample):
        seen: dict[str, Any] = {}
        consistent = all(seen.setdefault(ch, i) == i for ch, i in zip(sample, ids, strict=True))
        if consistent and len(set(seen.values())) == len(seen):
            return (
                "each character has an id of its own, but not gptmini's: number the characters in sorted order, "
                "the same on every machine (a set has no fixed order)"
            )
    return None


def check_pairs(pairs: Sequence[tuple[Sequence[int], int]], chunk: Sequence[int]) -> CheckResult:
    """The (context, next token) pairs hidden in one chunk of ``k + 1`` ids: ``(chunk[:t+1], chunk[t+1])``.

    A chunk of k + 1 tokens holds k training examples, with contexts of length 1, 2, ..., k.
    """
    if isinstance(chunk, torch.Tensor):
        chunk = chunk.tolist()
    chunk = list(chunk)
    if len(chunk) < 2:
        raise ValueError("check_pairs(pairs, chunk): chunk needs at least 2 ids (one context, one next token)")
    expected = [(chunk[: t + 1], chunk[t + 1]) for t in range(len(chunk) - 1)]
    if pairs is None:
        return not_yet("pairs", NONE_MESSAGE)
    if not isinstance(pairs, (list, tuple)):
        return failed("pairs", f"should be a list of (context, next) tuples, got a {type(pairs).__name__}")
    got = []
    for item in pairs:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            return failed("pairs", f"should hold (context, next) tuples, found {item!r}")
        context, nxt = item
        if isinstance(context, torch.Tensor):
            context = context.tolist()
        if isinstance(nxt, torch.Tensor):
            nxt = nxt.item()
        got.append((list(context), int(nxt)))
    return compare_values(
        f"your list of {len(expected)} (context, next) pairs",
        got,
        expected,
        hint="pair t holds the first t + 1 ids as its context and the id right after them as its next token",
    )


def check_batch(x: torch.Tensor, y: torch.Tensor, data: torch.Tensor, block_size: int | None = None) -> CheckResult:
    """A batch of windows: each row of ``x`` is a piece of ``data`` and ``y`` is the same piece shifted by one.

    Random starts cannot be compared with a reference, so this checks the property that matters: for every
    row b there is a start i with ``x[b] == data[i:i+T]`` and ``y[b] == data[i+1:i+T+1]``.
    """
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data, dtype=torch.long)
    for name, value in (("x", x), ("y", y)):
        if value is None:
            return not_yet(name, NONE_MESSAGE)
        if not isinstance(value, torch.Tensor):
            return failed(name, f"should be a torch tensor of shape (batch, block_size), got a {type(value).__name__}")
        if value.dim() != 2:
            return failed(name, f"should have shape (batch, block_size), got shape {tuple(value.shape)}")
    if x.shape != y.shape:
        return failed("y", f"should have the same shape as x {tuple(x.shape)}, got {tuple(y.shape)}")
    if block_size is not None and x.size(1) != block_size:
        return failed("x", f"has {x.size(1)} columns, expected block_size = {block_size}")
    if x.dtype != torch.long:
        return failed(
            "x", f"should hold token ids as torch.long, got {x.dtype}", hint="use .long() or dtype=torch.long"
        )
    t = x.size(1)
    data = data.to(x.device)
    windows = data.unfold(0, t, 1)  # every window of length t in data: (len - t + 1, t)
    for b in range(x.size(0)):
        starts = (windows == x[b]).all(dim=1).nonzero().flatten().tolist()
        if not starts:
            return failed(
                f"row {b} of x",
                "is not a contiguous piece of data",
                hint="each row of x is one window of block_size consecutive ids of the data",
            )
        if not any(i + 1 + t <= len(data) and torch.equal(data[i + 1 : i + 1 + t], y[b]) for i in starts):
            if torch.equal(x[b], y[b]):
                return failed(f"row {b} of y", "equals x; y must be x shifted one token to the left")
            return failed(
                f"row {b} of y",
                "is not x shifted by one",
                hint="each row of y is its x window moved one token later: the token after each position of x",
            )
    return passed(
        f"batch of {x.size(0)} windows × {t} tokens: every y is its x shifted by one, as in gptmini.data.get_batch"
    )


def check_get_batch(get_batch_fn: Callable[..., Any], data: torch.Tensor, batch_size: int = 4, block_size: int = 8):
    """``get_batch_fn(data, batch_size, block_size)`` -> (x, y): windows of ``data`` and the same shifted by one."""

    require_callable(get_batch_fn, "get_batch_fn", "check_get_batch")
    value, error = call_learner("get_batch(data, batch_size, block_size)", get_batch_fn, data, batch_size, block_size)
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


def _char_tokenizer(text: str) -> tuple[Callable[[str], list[int]], Callable[[list[int]], str]]:
    from ...tokenizers import CharTokenizer

    tok = CharTokenizer.from_text(text)
    return tok.encode, tok.decode


def _get_batch(data: torch.Tensor, batch_size: int, block_size: int):
    from ...data import get_batch

    return get_batch(data, batch_size, block_size)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "char_tokenizer": _char_tokenizer,  # called with the text: returns (encode, decode)
    "get_batch": lambda: _get_batch,
}
