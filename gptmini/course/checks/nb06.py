"""Notebook 06 (byte-pair encoding): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._report import CheckResult, call_learner, combine, compare_values, failed, not_yet, passed, require_callable

__all__ = ["check_bpe_merges", "check_bpe_encode", "check_gpt2_split", "check_merge_pair"]


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
    from ...tokenizers.bpe import merge_pair

    require_callable(merge_fn, "merge_fn", "check_merge_pair")
    for ids, pair, new_id in MERGE_CASES:
        what = f"merge({ids}, {pair}, {new_id})"
        value, error = call_learner(what, merge_fn, list(ids), pair, new_id)
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


# Short texts with repeated pairs, ties and overlapping runs ("aaaa"): enough to catch the usual slips.
BPE_TEXTS = (
    "to be, or not to be: that is the question",
    "banana bandana banana",
    "yoyo abab aaaa",
)


def _reference_bpe(text: str, num_merges: int):
    from ...tokenizers import BPETokenizer

    # pattern=None: the learner's trainer in notebook 06 works on the raw bytes of the whole string
    return BPETokenizer(pattern=None).train(text, vocab_size=256 + num_merges, progress=False)


def _as_merge_list(value: Any) -> list[tuple[tuple[int, int], int | None, int | None]] | None:
    """Accept ``[(pair, new_id, count)]``, ``[(pair, new_id)]``, ``[pair]`` or ``{pair: new_id}``."""
    if isinstance(value, dict):
        value = [(pair, new_id) for pair, new_id in value.items()]
    if not isinstance(value, (list, tuple)):
        return None
    out = []
    for item in value:
        try:
            if len(item) == 2 and all(isinstance(x, int) for x in item):
                out.append(((int(item[0]), int(item[1])), None, None))
                continue
            pair = (int(item[0][0]), int(item[0][1]))
            new_id = int(item[1]) if len(item) > 1 else None
            count = int(item[2]) if len(item) > 2 else None
            out.append((pair, new_id, count))
        except (TypeError, ValueError, IndexError):
            return None
    return out


def _pair_label(tok, pair: tuple[int, int]) -> str:
    a, b = pair
    try:
        return repr(
            tok.decode_bytes([a]).decode("utf-8", "backslashreplace")
            + "+"
            + tok.decode_bytes([b]).decode("utf-8", "backslashreplace")
        )
    except ValueError:
        return repr(pair)


def check_bpe_merges(train_fn: Callable[[str, int], Any], num_merges: int = 6) -> CheckResult:
    """``train_fn(text, num_merges)`` must return the merges in order, each ``((a, b), new_id, count)``.

    The reference is gptmini's ``BPETokenizer(pattern=None)``: most frequent adjacent pair first, ties
    broken by the smaller ``(a, b)``, new ids 256, 257, ...
    """
    require_callable(train_fn, "train_fn", "check_bpe_merges")
    results = []
    for text in BPE_TEXTS:
        what = f"merges for {text!r}"
        value, error = call_learner(what, train_fn, text, num_merges)
        if error is not None:
            return error
        got = _as_merge_list(value)
        if got is None:
            return failed(
                what,
                f"should be a list of ((a, b), new_id, count) tuples, got {type(value).__name__}",
                "append (pair, new_id, count) to a list after each merge and return that list",
            )
        ref = _reference_bpe(text, num_merges)
        expected = ref.history
        if len(got) != len(expected):
            results.append(
                failed(what, f"has {len(got)} merges, expected {len(expected)}", "loop exactly num_merges times")
            )
            continue
        problem = None
        counts = ref.history and _pair_counts_before(ref, text)
        for i, ((pair, new_id, count), (e_pair, e_new, e_count)) in enumerate(zip(got, expected, strict=True)):
            if pair != e_pair:
                hint = "pick the pair with the highest count"
                if counts and counts[i].get(pair) == e_count:
                    hint = (
                        f"{pair} and {e_pair} are tied at {e_count}; break ties by the smaller pair "
                        "(compare the two pairs themselves)"
                    )
                elif counts and counts[i].get(pair, 0) < e_count:
                    hint = f"{pair} occurs {counts[i].get(pair, 0)} times but {e_pair} occurs {e_count} times"
                problem = failed(
                    what,
                    f"differs at merge {i}: got {pair} {_pair_label(ref, pair)}, expected {e_pair} "
                    f"{_pair_label(ref, e_pair)}",
                    hint,
                )
                break
            if new_id is not None and new_id != e_new:
                problem = failed(
                    what, f"merge {i} got new id {new_id}, expected {e_new}", "new ids are 256 + merge index"
                )
                break
            if count is not None and count != e_count:
                problem = failed(
                    what,
                    f"merge {i} {e_pair} has count {count}, expected {e_count}",
                    "count the pair in the current ids (after the earlier merges), overlaps included",
                )
                break
        results.append(problem if problem is not None else passed(f"{what} match gptmini's BPETokenizer"))
    return combine("check_bpe_merges", results)


def _pair_counts_before(tok, text: str) -> list[dict[tuple[int, int], int]]:
    """Pair counts before each merge of ``tok.history`` (used only to explain a wrong pick)."""
    from ...tokenizers.bpe import count_pairs, merge_pair

    ids = list(text.encode("utf-8"))
    out = []
    for pair, new_id, _ in tok.history:
        out.append(dict(count_pairs(ids)))
        ids = merge_pair(ids, pair, new_id)
    return out


def check_bpe_encode(encode_fn: Callable[[str, dict], Sequence[int]]) -> CheckResult:
    """``encode_fn(text, merges)`` with ``merges = {(a, b): new_id}`` must give gptmini's BPE ids."""
    require_callable(encode_fn, "encode_fn", "check_bpe_encode")
    train_text = "to be, or not to be: that is the question; the rest is silence"
    tok = _reference_bpe(train_text, 20)
    results = []
    for text in ("to be or not", "the question is the rest", "that is that", "zebra"):
        what = f"encode({text!r})"
        value, error = call_learner(what, encode_fn, text, dict(tok.merges))
        if error is not None:
            return error
        got = list(value) if isinstance(value, (list, tuple)) else value
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        expected = tok.encode(text)
        hint = None
        if isinstance(got, list) and got != expected:
            if tok.decode(got) != text:
                hint = "the ids do not decode back to the text: a merge replaced the wrong positions"
            else:
                hint = "apply the earliest-learned merge first (the smallest new id), until no learned pair is left"
        results.append(compare_values(what, got, expected, hint))
    return combine("check_bpe_encode", results)


GPT2_SPLIT_TEXTS = (
    "Hello world",
    "I'll pay 1000 ducats, Antonio!!",
    "  two  spaces\n\nand newlines\n",
    "Don't you've they're",
    "café über 42x 3.14",
)


def check_gpt2_split(split_fn: Callable[[str], Sequence[str]] | str | None) -> CheckResult:
    """``split_fn(text)`` must cut text into the same chunks as GPT-2's pattern.

    A regex pattern (a string) may be given instead of a function: it splits with ``regex.findall``.
    """
    import regex

    from ...tokenizers import GPT2_PATTERN

    if split_fn is None:
        return not_yet("the pattern")
    if isinstance(split_fn, str):
        pattern = split_fn
        split_fn = lambda text: regex.findall(pattern, text)  # noqa: E731
    require_callable(split_fn, "split_fn", "check_gpt2_split")
    results = []
    for text in GPT2_SPLIT_TEXTS:
        what = f"split({text!r})"
        value, error = call_learner(what, split_fn, text)
        if error is not None:
            return error
        expected = regex.findall(GPT2_PATTERN, text)
        got = list(value) if isinstance(value, (list, tuple)) else value
        hint = None
        if isinstance(got, list) and got != expected:
            if "".join(map(str, got)) != text:
                hint = "the chunks must join back into the text: keep every space and newline"
            elif any(regex.search(r"\p{L}", c) and regex.search(r"[\p{N}\p{P}]", c) for c in got):
                hint = "a chunk mixes letters with digits or punctuation: those belong in separate chunks"
            else:
                hint = "a space belongs to the start of the word after it (' world'), not the end of the one before"
        results.append(compare_values(what, got, expected, hint))
    return combine("check_gpt2_split", results)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    from ...tokenizers.bpe import merge_pair

    return merge_pair(ids, pair, new_id)


def _train_bpe(text: str, num_merges: int):
    from ...tokenizers import BPETokenizer

    return BPETokenizer(pattern=None).train(text, vocab_size=256 + num_merges, progress=False).history


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "merge": lambda: _merge,
    "train_bpe": lambda: _train_bpe,
}
