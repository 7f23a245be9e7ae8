"""Check helpers for notebooks 06–10: byte-pair encoding, fine-tuning, GPT-2's block, decoding, prompting.

Each ``check_…`` calls the learner's function on a few small inputs, computes the same thing with gptmini,
and prints one line per comparison. Where a wrong answer matches a *known* mistake (merges across words,
post-LN instead of pre-LN, top-p that drops the token crossing p, ...), the message names that mistake.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._report import (
    CheckResult,
    call_answer,
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = [
    "check_bpe_merges",
    "check_bpe_encode",
    "check_gpt2_split",
    "check_classification_transform",
    "check_entailment_transform",
    "check_l3_loss",
    "check_pre_ln_block",
    "check_residual_init",
    "check_temperature",
    "check_top_k",
    "check_top_p",
    "check_greedy_decode",
    "check_decoding_limit",
    "check_continuation_logprob",
    "check_token_f1",
    "check_training_flops",
]

# Short texts with repeated pairs, ties and overlapping runs ("aaaa"): enough to catch the usual slips.
BPE_TEXTS = (
    "to be, or not to be: that is the question",
    "banana bandana banana",
    "yoyo abab aaaa",
)


# ------------------------------------------------------------------------------------------- 06: BPE
def _reference_bpe(text: str, num_merges: int):
    from ..tokenizers import BPETokenizer

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
        value, error = call_answer(what, train_fn, text, num_merges)
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
                        f"{pair} and {e_pair} are tied at {e_count}; break ties by the smaller pair, e.g. "
                        "min(counts, key=lambda p: (-counts[p], p))"
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
    from ..tokenizers.bpe import count_pairs, merge_pair

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
        value, error = call_answer(what, encode_fn, text, dict(tok.merges))
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

    from ..tokenizers import GPT2_PATTERN

    if split_fn is None:
        return not_yet("the pattern")
    if isinstance(split_fn, str):
        pattern = split_fn
        split_fn = lambda text: regex.findall(pattern, text)  # noqa: E731
    require_callable(split_fn, "split_fn", "check_gpt2_split")
    results = []
    for text in GPT2_SPLIT_TEXTS:
        what = f"split({text!r})"
        value, error = call_answer(what, split_fn, text)
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


# ------------------------------------------------------------------------------ 07: GPT-1 fine-tuning
def _ids_of(value: Any) -> Any:
    """A transformed sequence as a list of ints, whether given as a list, a tensor, (ids, pos) or an Encoded."""
    if hasattr(value, "ids"):
        value = value.ids
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (list, tuple, torch.Tensor)):
        value = value[0]
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    return value


def check_classification_transform(transform_fn: Callable[..., Any]) -> CheckResult:
    """``transform_fn(text_ids, special)`` -> ``<s> text <e>`` as ids, as ``gptmini.finetune.classification_input``.

    ``special`` is a :class:`gptmini.finetune.SpecialTokens` (``.start``, ``.delimiter``, ``.extract``).
    """
    from ..finetune import SpecialTokens, classification_input

    require_callable(transform_fn, "transform_fn", "check_classification_transform")
    results = []
    for text_ids, base in (([5, 6, 7], 100), ([42], 7), (list(range(10, 30)), 64)):
        special = SpecialTokens.for_vocab(base)
        what = f"classification input for {text_ids[:4]}{'...' if len(text_ids) > 4 else ''}"
        value, error = call_answer(what, transform_fn, list(text_ids), special)
        if error is not None:
            return error
        got = _ids_of(value)
        expected = classification_input(text_ids, special).ids
        hint = None
        if isinstance(got, list) and got != expected:
            if got[:1] != [special.start]:
                hint = "begin with the start token special.start (<s>)"
            elif got[-1:] != [special.extract]:
                hint = "end with special.extract (<e>): the classifier reads the final hidden state there"
            elif special.delimiter in got:
                hint = "a single text needs no delimiter $: <s> text <e>"
        results.append(compare_values(what, got, expected, hint))
    return combine("check_classification_transform", results)


def check_entailment_transform(transform_fn: Callable[..., Any]) -> CheckResult:
    """``transform_fn(premise_ids, hypothesis_ids, special)`` -> ``<s> premise $ hypothesis <e>`` as ids."""
    from ..finetune import SpecialTokens, entailment_input

    require_callable(transform_fn, "transform_fn", "check_entailment_transform")
    special = SpecialTokens.for_vocab(100)
    results = []
    for premise, hypothesis in (([5, 6], [7, 8, 9]), ([11], [12]), ([1, 2, 3, 4], [5])):
        what = f"entailment input for {premise} / {hypothesis}"
        value, error = call_answer(what, transform_fn, list(premise), list(hypothesis), special)
        if error is not None:
            return error
        got = _ids_of(value)
        expected = entailment_input(premise, hypothesis, special).ids
        hint = None
        if isinstance(got, list) and got != expected:
            if special.delimiter not in got:
                hint = "put the delimiter token special.delimiter ($) between premise and hypothesis"
            elif got.index(special.delimiter) != len(premise) + 1:
                hint = "the premise comes first, then $, then the hypothesis"
        results.append(compare_values(what, got, expected, hint))
    return combine("check_entailment_transform", results)


def check_l3_loss(l3_fn: Callable[..., Any]) -> CheckResult:
    """``l3_fn(class_logits, labels, lm_loss, lam)`` -> L3 = L2 + λ·L1, L2 the classifier's cross-entropy.

    ``lm_loss`` is L1 as a loss (the mean next-token cross-entropy on the same inputs).
    """
    import torch.nn.functional as F

    from ..finetune import combined_loss

    require_callable(l3_fn, "l3_fn", "check_l3_loss")
    g = torch.Generator().manual_seed(0)
    class_logits = torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 2, 1, 2])
    lm_loss = torch.tensor(2.75)
    results = []
    for lam in (0.5, 0.0, 2.0):
        what = f"L3 with λ={lam}"
        value, error = call_answer(what, l3_fn, class_logits, labels, lm_loss, lam)
        if error is not None:
            return error
        if isinstance(value, tuple):
            value = value[0]
        expected = combined_loss(class_logits, labels, lm_loss, lam)[0]
        l2 = float(F.cross_entropy(class_logits, labels))
        l1 = float(lm_loss)
        hint = None
        if isinstance(value, (torch.Tensor, float)) and torch.as_tensor(value).numel() == 1:
            v = float(value)
            if lam != 1.0 and math.isclose(v, l1 + lam * l2, rel_tol=1e-4):
                hint = "λ weighs the auxiliary language-model loss L1, not the task loss L2: L3 = L2 + λ·L1"
            elif lam and math.isclose(v, l2, rel_tol=1e-4):
                hint = "that is L2 alone: add the auxiliary language-model loss, λ·L1"
            elif math.isclose(v, l2 - lam * l1, rel_tol=1e-4) and lam:
                hint = "both terms are losses (cross-entropies), so they add: L3 = L2 + λ·L1"
            elif math.isclose(v, -l2, rel_tol=1e-4) or math.isclose(v, -(l2 + lam * l1), rel_tol=1e-4):
                hint = "use the cross-entropy (a positive loss), not the log-likelihood"
        results.append(compare_tensors(what, value, expected, hint=hint))
    return combine("check_l3_loss", results)


# ------------------------------------------------------------------------------------- 08: GPT-2
def check_pre_ln_block(forward_fn: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``forward_fn(block, x)`` must compute GPT-2's pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(·))."""
    from ..config import GPTConfig
    from ..model import Block

    require_callable(forward_fn, "forward_fn", "check_pre_ln_block")
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, norm="pre")
    block = Block(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm gains so that a missing LayerNorm shows
        for ln in (block.ln_1, block.ln_2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    x = torch.randn(2, 5, 16) * 3 + 1
    what = "your pre-LN block"
    with torch.no_grad():
        value, error = call_answer(what, forward_fn, block, x)
        if error is not None:
            return error
        if isinstance(value, tuple):
            value = value[0]
        expected = block(x)
        post = block.ln_1(x + block.attn(x))
        post = block.ln_2(post + block.mlp(post))
    hint = None
    if (
        isinstance(value, torch.Tensor)
        and value.shape == expected.shape
        and not torch.allclose(value, expected, atol=1e-5)
    ):
        if torch.allclose(value, post, atol=1e-5):
            hint = "that is GPT-1's post-LN order; GPT-2 normalises the *input* of each sub-block: x + attn(ln_1(x))"
        elif abs(float(value.std()) - 1) < 0.1 and abs(float(expected.std()) - 1) > 0.2:
            hint = "the output looks normalised; in pre-LN the residual x is added back *un*-normalised"
        else:
            hint = "keep the residual: x = x + attn(ln_1(x))[0]; then x = x + mlp(ln_2(x))"
    return compare_tensors("pre-LN block output", value, expected, hint=hint)


def check_residual_init(std_fn: Callable[[int], float]) -> CheckResult:
    """``std_fn(n_layer)`` must give GPT-2's init std of the residual projections: 0.02 / √(2·n_layer).

    Besides the formula, the answer for 12 layers is compared with the std measured in a freshly built
    gptmini GPT, so the check also shows that the model really does what the formula says.
    """
    from ..config import GPTConfig
    from ..model import GPT

    require_callable(std_fn, "std_fn", "check_residual_init")
    results = []
    for n_layer in (1, 4, 12, 48):
        what = f"residual init std for n_layer={n_layer}"
        value, error = call_answer(what, std_fn, n_layer)
        if error is not None:
            return error
        expected = 0.02 / math.sqrt(2 * n_layer)
        hint = None
        try:
            v = float(value)
            if math.isclose(v, 0.02 / math.sqrt(n_layer), rel_tol=1e-6) and n_layer > 1:
                hint = "N counts residual layers: each block adds two (attention and MLP), so N = 2·n_layer"
            elif math.isclose(v, 0.02 / (2 * n_layer), rel_tol=1e-6):
                hint = "the scale is 1/√N, a square root, not 1/N"
        except (TypeError, ValueError):
            pass
        results.append(compare_values(what, value, expected, hint))
    if all(results):
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=8, block_size=4, n_layer=12, n_head=2, n_embd=64, dropout=0.0, norm="pre")
        measured = float(GPT(config).transformer.h[0].mlp.c_proj.weight.detach().std())
        ok = math.isclose(float(std_fn(12)), measured, rel_tol=0.05)
        results.append(
            passed(f"a fresh 12-layer gptmini GPT has c_proj std {measured:.5f}, as your formula says")
            if ok
            else failed("the measured std", f"{measured:.5f} of a fresh 12-layer GPT differs from your formula")
        )
    return combine("check_residual_init", results)


# ------------------------------------------------------------------------------------ 09: decoding
def _test_logits() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    tied = torch.tensor([[3.0, 1.0, 3.0, 0.5, 2.0, 2.0, -1.0, 0.0]])  # ties at the 1st and 3rd place
    peaked = torch.tensor([[8.0, 1.0, 0.5, 0.0, -1.0, -2.0]])  # one token holds almost all the mass
    return [torch.randn(3, 40, generator=g) * 2, tied, peaked]


def _kept(x: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x) & (x > -1e9)


def _compare_filter(what: str, got: Any, expected: torch.Tensor, slips: list[tuple[torch.Tensor, str]], fallback: str):
    """Compare which tokens survive first (the usual mistake), then the surviving values.

    ``slips`` pairs the kept-token mask of a typical wrong answer with the hint that names it; ``fallback``
    is the hint when the learner's mask matches none of them.
    """
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        got_kept, exp_kept = _kept(got), _kept(expected)
        if not torch.equal(got_kept, exp_kept):
            row = int((got_kept != exp_kept).any(dim=-1).nonzero()[0])
            n_got, n_exp = int(got_kept[row].sum()), int(exp_kept[row].sum())
            hint = next((h for mask, h in slips if torch.equal(got_kept, mask)), None)
            if hint is None and n_got == 0:
                hint = "you removed every token: the most likely token must always stay"
            return failed(what, f"keeps {n_got} tokens in row {row} where gptmini keeps {n_exp}", hint or fallback)
        got = torch.where(got_kept, got, torch.full_like(got, float("-inf")))
    return compare_tensors(what, got, expected)


def check_temperature(temperature_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``temperature_fn(logits, T)`` must scale logits as gptmini.generate.apply_temperature does."""
    from ..generate import apply_temperature

    require_callable(temperature_fn, "temperature_fn", "check_temperature")
    results = []
    logits = _test_logits()[0]
    for t in (0.5, 1.0, 2.0):
        what = f"temperature {t}"
        value, error = call_answer(what, temperature_fn, logits.clone(), t)
        if error is not None:
            return error
        expected = apply_temperature(logits, t)
        hint = None
        if isinstance(value, torch.Tensor) and value.shape == logits.shape and t != 1.0:
            if torch.allclose(value, logits * t):
                hint = "divide the logits by T (T < 1 sharpens), do not multiply"
            elif torch.allclose(value, torch.softmax(logits / t, -1)):
                hint = "return the scaled logits, not probabilities; the softmax comes after all filters"
        results.append(compare_tensors(what, value, expected, hint=hint))
    return combine("check_temperature", results)


def _top_k_slips(logits: torch.Tensor, k: int) -> list[tuple[torch.Tensor, str]]:
    """Kept-token masks of the usual top-k mistakes, each with the hint that names it."""
    values, indices = torch.topk(logits, min(k + 1, logits.size(-1)), dim=-1)
    kth = values[..., k - 1 : k]
    exactly_k = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices[..., :k], True)
    return [
        (
            exactly_k,
            "ties at the k-th value are dropped: keep every logit >= the k-th largest value "
            "(torch.topk(logits, k).values[..., -1:]), not just the k indices topk returns",
        ),
        (logits > kth, "the k-th largest itself is removed: remove logits *below* it (<), keep those equal to it"),
        (logits >= values[..., -1:], "one token too many: the k-th largest is values[..., k - 1] (counting from 0)"),
        (logits < kth, "you removed the k largest: keep them and set the others to -inf"),
    ]


def check_top_k(top_k_fn: Callable[[torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """``top_k_fn(logits, k)`` must keep the k largest logits (ties kept) and set the rest to -inf."""
    from ..generate import top_k_filter

    require_callable(top_k_fn, "top_k_fn", "check_top_k")
    results = []
    for logits in _test_logits():
        for k in (1, 3, 5):
            what = f"top-k with k={k} on logits of shape {tuple(logits.shape)}"
            value, error = call_answer(what, top_k_fn, logits.clone(), k)
            if error is not None:
                return error
            expected = top_k_filter(logits, k)
            fallback = "keep every logit >= the k-th largest value (ties included), set the others to -inf"
            results.append(_compare_filter(what, value, expected, _top_k_slips(logits, k), fallback))
    return combine("check_top_k", results)


def _top_p_slips(logits: torch.Tensor, p: float) -> list[tuple[torch.Tensor, str]]:
    """Kept-token masks of the usual top-p mistakes, each with the hint that names it."""
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    total = sorted_probs.cumsum(-1)

    def unsort(keep_sorted: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)

    crossing = "keep the token whose probability takes the running total past p: keep where cumsum - prob < p"
    at_least_one = "the most likely token must always stay, even when it alone holds more than p"
    keep_right = total - sorted_probs < p
    ascending_probs, ascending_order = probs.sort(dim=-1)
    ascending = torch.zeros_like(keep_right).scatter(
        -1, ascending_order, ascending_probs.cumsum(-1) - ascending_probs < p
    )
    slips = [
        (unsort(total < p), crossing),
        (unsort(total <= p), crossing),
        (keep_right, "undo the sort: the mask is in sorted order; scatter it back with the sort's indices"),
        (ascending, "sort the probabilities from most to least likely (descending=True)"),
    ]
    first = torch.zeros_like(keep_right)
    first[..., 0] = True
    for mask in (total < p, total <= p):
        if (~mask[..., 0]).any():  # the top token alone passes p: the slip above kept nothing in that row
            slips.insert(0, (unsort(mask), at_least_one + "; and " + crossing))
        slips.append((unsort(mask | first), crossing))
    return slips


def check_top_p(top_p_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``top_p_fn(logits, p)`` must keep the smallest most-likely set whose probability reaches p."""
    from ..generate import top_p_filter

    require_callable(top_p_fn, "top_p_fn", "check_top_p")
    results = []
    for logits in _test_logits():
        for p in (0.5, 0.9, 0.99):
            what = f"top-p with p={p} on logits of shape {tuple(logits.shape)}"
            value, error = call_answer(what, top_p_fn, logits.clone(), p)
            if error is not None:
                return error
            expected = top_p_filter(logits, p)
            fallback = "sort the probabilities descending, take the cumulative sum, keep tokens until it reaches p"
            results.append(_compare_filter(what, value, expected, _top_p_slips(logits, p), fallback))
    return combine("check_top_p", results)


def _lively_model():
    """A small random GPT with large weights, so greedy decoding does not just repeat one token."""
    from ..config import GPTConfig
    from ..model import GPT

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0)).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.3)
    return model


def check_greedy_decode(
    decode_fn: Callable[..., Sequence[int]], model=None, prompt: Sequence[int] | None = None, steps: int = 8
) -> CheckResult:
    """``decode_fn(model, prompt_ids, steps)`` must continue the prompt as ``model.generate(..., temperature=0)``.

    It runs on a small random GPT (whose greedy text changes from token to token) and, if given, on ``model``.
    """
    require_callable(decode_fn, "decode_fn", "check_greedy_decode")
    cases = [("a small random GPT", _lively_model(), [1, 2, 3])]
    if model is not None:
        cases.append(("your model", model, [int(i) for i in (prompt or [0])]))
    results = []
    for name, m, ids in cases:
        what = f"greedy decoding of {steps} tokens with {name}"
        value, error = call_answer(what, decode_fn, m, list(ids), steps)
        if error is not None:
            return error
        expected = m.generate(list(ids), steps, temperature=0)
        got = value.tolist() if isinstance(value, torch.Tensor) else value
        if isinstance(got, list) and got and isinstance(got[0], list):
            got = got[0]
        hint = None
        if isinstance(got, (list, tuple)):
            got = [int(i) for i in got]
            if got == expected[len(ids) :]:
                results.append(failed(what, "returned only the new tokens", "return the prompt followed by them"))
                continue
            new = got[len(ids) :]
            if got != expected and len(set(new)) == 1 and len(new) > 1:
                hint = "every new token is the same: feed the new token back in (with the cache) so x changes"
        results.append(compare_values(what, got, expected, hint))
    return combine("check_greedy_decode", results)


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of weights one decoding step reads: every parameter once (``parameters()`` skips the tied copy)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _limit_mistakes(model, bandwidth: float) -> list[tuple[float, str]]:
    """(value, hint) for the usual slips in tokens/s <= bandwidth / weight bytes, bandwidth in GB/s."""
    right = weight_bytes(model)
    wte = model.transformer.wte.weight
    tied = wte.numel() * wte.element_size()
    params = sum(p.numel() for p in model.parameters())
    gb = bandwidth * 1e9
    return [
        (gb / (8 * right), "bits vs bytes: weights are counted in bytes, as the bandwidth is (8 bits = 1 byte)"),
        (8 * gb / right, "bits vs bytes: GB/s counts bytes; do not multiply the bandwidth by 8"),
        (
            gb / (right + tied),
            "lm_head is wte itself (weight tying): count it once; model.state_dict() lists it twice, parameters() once",
        ),
        (gb / (right - tied), "the output layer (lm_head) is the tied wte: it is read on every step, so count it"),
        (bandwidth * 2**30 / right, "GB vs GiB: a bandwidth in GB/s means 1e9 bytes per second, not 2**30"),
        (gb / right * 1e9 / 2**30, "GB vs GiB: a bandwidth in GB/s means 1e9 bytes per second, not 2**30"),
        (gb / params, "count bytes, not parameters: each one takes p.element_size() bytes (4 in float32, 2 in bf16)"),
        (gb / (4 * params), "the bytes per parameter depend on the dtype: use p.element_size(), not a fixed 4"),
        (bandwidth / right, "the bandwidth is in GB/s: multiply by 1e9 to get bytes per second"),
    ]


def check_decoding_limit(limit_fn: Callable[[float, torch.nn.Module], float], model=None) -> CheckResult:
    """``limit_fn(bandwidth_gb_s, model)`` -> the decoding limit in tokens/s: bandwidth / weight bytes per token.

    Batch 1: each new token needs every weight read from memory once. The cases are GPT-2 small in float32
    and in bfloat16 and GPT-1 (built on the meta device: no memory, no time), then ``model`` if given.
    The positions table ``wpe`` (one row read per token) may be counted or not: it is under 1 % of the bytes.
    """
    from ..config import GPTConfig
    from ..model import GPT

    require_callable(limit_fn, "limit_fn", "check_decoding_limit")
    with torch.device("meta"):
        gpt2 = GPT(GPTConfig.preset("gpt2"))
        cases = [
            ("GPT-2 small, float32, 19 GB/s", gpt2, 19.0),
            ("GPT-2 small, bfloat16, 19 GB/s", GPT(GPTConfig.preset("gpt2")).to(torch.bfloat16), 19.0),
            ("GPT-1, float32, 50 GB/s", GPT(GPTConfig.preset("gpt1")), 50.0),
        ]
    if model is not None:
        cases.append(("your model, 19 GB/s", model, 19.0))
    results = []
    for name, m, bandwidth in cases:
        what = f"decoding limit of {name}"
        value, error = call_answer(what, limit_fn, bandwidth, m)
        if error is not None:
            return error
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            results.append(compare_values(what, value, 1.0))
            continue
        expected = bandwidth * 1e9 / weight_bytes(m)
        without_wpe = (
            bandwidth
            * 1e9
            / (weight_bytes(m) - m.transformer.wpe.weight.numel() * m.transformer.wpe.weight.element_size())
        )
        if any(math.isclose(value, good, rel_tol=1e-3) for good in (expected, without_wpe)):
            results.append(passed(f"{what} matches gptmini ({value:.1f} tokens/s)"))
            continue
        hint = next((h for wrong, h in _limit_mistakes(m, bandwidth) if math.isclose(value, wrong, rel_tol=1e-2)), None)
        results.append(failed(what, f"differs: got {value:.6g} tokens/s, expected {expected:.6g}", hint))
    return combine("check_decoding_limit", results)


# ------------------------------------------------------------------------------------ 10: prompting
def check_continuation_logprob(logprob_fn: Callable[..., float], model) -> CheckResult:
    """``logprob_fn(model, context_ids, continuation_ids)`` -> Σ log P(continuation token | everything before)."""
    from .. import zeroshot

    require_callable(logprob_fn, "logprob_fn", "check_continuation_logprob")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    results = []
    for n_ctx, n_cont in ((5, 1), (4, 3), (1, 2)):
        context = torch.randint(vocab, (n_ctx,), generator=g).tolist()
        continuation = torch.randint(vocab, (n_cont,), generator=g).tolist()
        what = f"log P(continuation) with {n_ctx} context and {n_cont} continuation tokens"
        value, error = call_answer(what, logprob_fn, model, list(context), list(continuation))
        if error is not None:
            return error
        expected = zeroshot.score_continuations(model, [context], [continuation])[0].logprob
        hint = None
        try:
            v = float(value)
            if v > 0:
                hint = "a log-probability is <= 0: use log_softmax, and sum (not negate) it"
            elif not math.isclose(v, expected, rel_tol=1e-4, abs_tol=1e-5):
                hint = (
                    "continuation token j is scored by the logits one position *before* it; "
                    "sum over the continuation's tokens only, not the context's"
                )
        except (TypeError, ValueError):
            pass
        results.append(
            compare_values(what, value if not isinstance(value, torch.Tensor) else float(value), expected, hint)
        )
    return combine("check_continuation_logprob", results)


def check_token_f1(f1_fn: Callable[[str, str], float]) -> CheckResult:
    """``f1_fn(prediction, reference)`` must give SQuAD's token F1 (after normalising both strings)."""
    from ..metrics import token_f1

    require_callable(f1_fn, "f1_fn", "check_token_f1")
    cases = (
        ("The Tempest", "tempest"),
        ("Prospero, Duke of Milan", "the Duke of Milan"),
        ("a rose by any other name", "rose"),
        ("Verona", "Padua"),
        ("to be or not to be", "to be"),
    )
    results = []
    for prediction, reference in cases:
        what = f"F1({prediction!r}, {reference!r})"
        value, error = call_answer(what, f1_fn, prediction, reference)
        if error is not None:
            return error
        expected = token_f1(prediction, reference)
        hint = None
        if isinstance(value, (int, float)) and value != expected and prediction.lower().startswith(("the", "a ")):
            hint = "normalise first: lower-case, drop punctuation and the articles a/an/the"
        results.append(compare_values(what, float(value) if isinstance(value, int) else value, expected, hint))
    return combine("check_token_f1", results)


def check_training_flops(flops_fn: Callable[[float, float], float]) -> CheckResult:
    """``flops_fn(n_params, n_tokens)`` must give the usual training-compute estimate ≈ 6·N·D (gptmini.sizes.flops)."""
    from ..sizes import flops

    require_callable(flops_fn, "flops_fn", "check_training_flops")
    results = []
    for n, d, name in ((124e6, 10e9, "GPT-2 small on 10B tokens"), (175e9, 300e9, "GPT-3 on 300B tokens")):
        what = f"training FLOPs of {name}"
        value, error = call_answer(what, flops_fn, n, d)
        if error is not None:
            return error
        expected = flops(n, d)
        hint = None
        try:
            v = float(value)
            if math.isclose(v, 2 * n * d, rel_tol=1e-6):
                hint = "2·N·D is the forward pass only; the backward pass costs about twice that again"
        except (TypeError, ValueError):
            pass
        results.append(compare_values(what, float(value) if isinstance(value, int) else value, expected, hint))
    return combine("check_training_flops", results)
