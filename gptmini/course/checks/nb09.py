"""Notebook 09 (real GPT-2 weights and decoding): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from ...config import GPTConfig
from ...model import GPT, causal_mask
from ...pretrained import CONV1D_WEIGHTS, HEAD, IGNORED_SUFFIXES, WTE, our_key
from ._cases import Case, run_cases
from ._report import (
    STUB_MESSAGE,
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    raised,
    require_callable,
)

__all__ = [
    "check_temperature",
    "check_top_k",
    "check_top_p",
    "check_greedy_decode",
    "weight_bytes",
    "check_decoding_limit",
    "to_hf_layout",
    "from_hf_layout",
    "check_from_hf_layout",
    "attend_with_cache",
    "check_attend_with_cache",
]


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
            if n_got == n_exp:  # the right number of tokens, not the right ones: name one of each
                wrong = int((got_kept[row] & ~exp_kept[row]).nonzero()[0])
                lost = int((exp_kept[row] & ~got_kept[row]).nonzero()[0])
                detail = (
                    f"keeps {n_got} tokens in row {row}, as many as gptmini, but not the same ones: "
                    f"it keeps token {wrong} (gptmini removes it) and removes token {lost} (gptmini keeps it)"
                )
                return failed(what, detail, hint or fallback)
            return failed(what, f"keeps {n_got} tokens in row {row} where gptmini keeps {n_exp}", hint or fallback)
        got = torch.where(got_kept, got, torch.full_like(got, float("-inf")))
    return compare_tensors(what, got, expected)


def check_temperature(temperature_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``temperature_fn(logits, T)`` must scale logits as gptmini.generate.apply_temperature does."""
    from ...generate import apply_temperature

    logits = _test_logits()[0]
    cases = (
        Case(f"temperature {t}", (logits.clone(), t), apply_temperature(logits, t), dict(t=t)) for t in (0.5, 1.0, 2.0)
    )
    return run_cases("check_temperature", "temperature_fn", temperature_fn, cases, partial(_judge_temperature, logits))


def _judge_temperature(logits: torch.Tensor, case: Case, value: Any) -> CheckResult:
    t, hint = case.data["t"], None
    if isinstance(value, torch.Tensor) and value.shape == logits.shape and t != 1.0:
        if torch.allclose(value, logits * t):
            hint = "divide the logits by T (T < 1 sharpens), do not multiply"
        elif torch.allclose(value, torch.softmax(logits / t, -1)):
            hint = "return the scaled logits, not probabilities; the softmax comes after all filters"
    return compare_tensors(case.what, value, case.expected, hint=hint)


def _top_k_slips(logits: torch.Tensor, k: int) -> list[tuple[torch.Tensor, str]]:
    """Kept-token masks of the usual top-k mistakes, each with the hint that names it."""
    values, indices = torch.topk(logits, min(k + 1, logits.size(-1)), dim=-1)
    kth = values[..., k - 1 : k]
    exactly_k = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices[..., :k], True)
    return [
        (
            exactly_k,
            "ties at the k-th value are dropped: keep every logit >= the k-th largest value, "
            "not just the k indices topk returns",
        ),
        (logits > kth, "the k-th largest itself is removed: remove logits *below* it (<), keep those equal to it"),
        (logits >= values[..., -1:], "one token too many: the k-th largest is values[..., k - 1] (counting from 0)"),
        (logits < kth, "you removed the k largest: keep them and set the others to -inf"),
    ]


def check_top_k(top_k_fn: Callable[[torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """``top_k_fn(logits, k)`` must keep the k largest logits (ties kept) and set the rest to -inf."""
    from ...generate import top_k_filter

    fallback = "keep every logit >= the k-th largest value (ties included), set the others to -inf"
    cases = _filter_cases("top-k with k", (1, 3, 5), top_k_filter, _top_k_slips, fallback)
    return run_cases("check_top_k", "top_k_fn", top_k_fn, cases, _judge_filter)


def _filter_cases(what: str, settings: tuple, reference: Callable, slips: Callable, fallback: str) -> Iterator[Case]:
    """One case per test logits and setting (k or p): gptmini's filter as the answer, the usual slips beside it."""
    for logits in _test_logits():
        for value in settings:
            yield Case(
                f"{what}={value} on logits of shape {tuple(logits.shape)}",
                (logits.clone(), value),
                reference(logits, value),
                dict(slips=slips(logits, value), fallback=fallback),
            )


def _judge_filter(case: Case, value: Any) -> CheckResult:
    return _compare_filter(case.what, value, case.expected, case.data["slips"], case.data["fallback"])


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
    from ...generate import top_p_filter

    fallback = "sort the probabilities descending, take the cumulative sum, keep tokens until it reaches p"
    cases = _filter_cases("top-p with p", (0.5, 0.9, 0.99), top_p_filter, _top_p_slips, fallback)
    return run_cases("check_top_p", "top_p_fn", top_p_fn, cases, _judge_filter)


def _lively_model():
    """A small random GPT with large weights, so greedy decoding does not just repeat one token."""

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
        value, error = call_learner(what, decode_fn, m, list(ids), steps)
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
        value, error = call_learner(what, limit_fn, bandwidth, m)
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


PREFIX = "transformer."


def to_hf_layout(model: torch.nn.Module, mask_buffers: bool = True) -> dict[str, torch.Tensor]:
    """``model``'s weights as the hub stores GPT-2: no prefix, Conv1D weights (in, out), no ``lm_head``.

    With ``mask_buffers`` each layer also gets ``h.N.attn.bias``, the (1, 1, T, T) causal mask that files
    converted from older checkpoints carry: not a weight, so a loader has to skip it.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key == HEAD:
            continue  # tied to wte: the hub's GPT-2 file does not store it
        key = key.removeprefix(PREFIX)
        value = value.detach().cpu()
        state[key] = value.t().contiguous() if key.endswith(CONV1D_WEIGHTS) else value.clone()
    if mask_buffers:
        t = model.config.block_size
        mask = torch.ones(t, t, dtype=torch.bool).tril().view(1, 1, t, t)
        for i in range(model.config.n_layer):
            state[f"h.{i}.attn.bias"] = mask.clone()  # one tensor each, as a file stores them
    return state


def from_hf_layout(hf_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """gptmini's state dict from a hub-layout one: the key mapping and transposes of :mod:`gptmini.pretrained`.

    Accepts keys with or without the ``transformer.`` prefix (``save_pretrained`` writes it, the hub's
    files do not); mask buffers are skipped; ``lm_head.weight`` is the tied ``wte``.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in hf_state.items():
        ours = our_key(key)
        if ours is None or ours == HEAD:
            continue
        state[ours] = value.t() if ours.endswith(CONV1D_WEIGHTS) else value
    if WTE in state:
        state[HEAD] = state[WTE]
    return state


def _key_problems(got: Mapping, expected: Mapping) -> tuple[str, str] | None:
    """(detail, hint) for the first key-level mistake in ``got``, or None if the keys are right."""
    keys = {k for k in got if k != HEAD}
    wanted = {k for k in expected if k != HEAD}
    if keys == wanted:
        return None
    extra, missing = sorted(keys - wanted), sorted(wanted - keys)
    doubled = [k for k in extra if k.startswith(PREFIX + PREFIX)]
    if doubled:
        return (
            f"has keys like {doubled[0]!r}",
            "this file already had the `transformer.` prefix (save_pretrained writes it): strip it if present, "
            "then add it once (key.removeprefix('transformer.'))",
        )
    unprefixed = [k for k in extra if isinstance(k, str) and PREFIX + k in wanted]
    if unprefixed:
        return (
            f"has keys like {unprefixed[0]!r} where gptmini expects {PREFIX + unprefixed[0]!r}",
            "gptmini's names start with `transformer.` (see model.state_dict().keys()): add it to every key",
        )
    masks = [k for k in extra if isinstance(k, str) and k.endswith(IGNORED_SUFFIXES)]
    if masks:
        return (
            f"has {len(masks)} key(s) like {masks[0]!r}",
            "h.N.attn.bias is not a weight but the causal mask older files store as a buffer; gptmini builds its "
            "mask itself: skip keys ending in .attn.bias or .attn.masked_bias",
        )
    parts = []
    if missing:
        parts.append(f"lacks {len(missing)} key(s), e.g. {missing[:3]}")
    if extra:
        parts.append(f"has {len(extra)} unexpected key(s), e.g. {extra[:3]}")
    return "; ".join(parts), "every key of model.state_dict() but lm_head.weight must be there, and nothing else"


def _tensor_problem(key: str, got: Any, exp: torch.Tensor) -> tuple[str, str | None] | None:
    """(detail, hint) for a wrong tensor under ``key``, or None if it holds exactly gptmini's values."""
    if not isinstance(got, torch.Tensor):
        return f"maps {key!r} to a {type(got).__name__}, not a tensor", None
    got = got.detach().cpu()
    exp = exp.detach().cpu()
    if got.shape == exp.shape and torch.equal(got.to(exp.dtype), exp):
        return None
    conv1d = key.endswith(CONV1D_WEIGHTS)
    if got.dim() == 2 and got.t().shape == exp.shape and torch.equal(got.t().to(exp.dtype), exp):
        if conv1d:
            return (
                f"has {key} as stored, {tuple(got.shape)}",
                "the four Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) are stored (in, out); "
                "nn.Linear wants (out, in): transpose them with .t()",
            )
        return (
            f"transposed {key} to {tuple(got.shape)}",
            "only the four Conv1D weights are transposed; wte and wpe are embeddings, stored "
            "(rows, n_embd) in both layouts, and biases and LayerNorms are 1-D",
        )
    if got.shape != exp.shape:
        return f"gives {key} the shape {tuple(got.shape)}, expected {tuple(exp.shape)}", None
    return f"changes the values of {key}", "copy every tensor as it is (a transpose at most)"


def _logits_match(state: Mapping[str, torch.Tensor], model: torch.nn.Module, what: str) -> CheckResult:
    """Load ``state`` into a fresh model of ``model``'s class and config; its logits must equal ``model``'s."""
    with torch.device("meta"):
        fresh = type(model)(model.config)
    state = {k: v for k, v in state.items() if k != HEAD}
    fresh.load_state_dict(state, strict=False, assign=True)
    fresh.lm_head.weight = fresh.transformer.wte.weight
    fresh.to(model.device).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(model.config.vocab_size, (2, min(12, model.config.block_size)), generator=g)
    ids = ids.to(model.device)
    with torch.no_grad():
        ours, theirs = fresh(ids)[0].float(), model(ids)[0].float()
    return compare_tensors(
        f"the model loaded from {what}", ours, theirs, atol=1e-4, against="the original model's logits"
    )


def check_from_hf_layout(
    convert_fn: Callable[[dict[str, torch.Tensor]], Any],
    model: torch.nn.Module,
    hf_state: Mapping[str, torch.Tensor] | None = None,
) -> CheckResult:
    """``convert_fn(hf_state)`` -> gptmini's state dict; it must load into ``model``'s shape and give its logits.

    ``hf_state`` is a hub-layout state dict of ``model`` (default: :func:`to_hf_layout` of it; with a network,
    the real ``model.safetensors``). The same weights are also given with the ``transformer.`` prefix that
    ``save_pretrained`` writes, which must load too.
    """
    require_callable(convert_fn, "convert_fn", "check_from_hf_layout")
    hub = dict(to_hf_layout(model) if hf_state is None else hf_state)
    layouts = [
        ("the hub's layout (h.0.attn.c_attn.weight, ...)", hub),
        ("save_pretrained's layout (transformer.h.0.attn.c_attn.weight, ...)", {PREFIX + k: v for k, v in hub.items()}),
    ]
    results = []
    for what, hf in layouts:
        expected = from_hf_layout(hf)
        name = f"your conversion of {what}"
        try:
            got = convert_fn({k: v.clone() for k, v in hf.items()})
        except NotImplementedError:
            return not_yet("from_hf_layout", STUB_MESSAGE)
        except Exception as err:  # the learner's code may fail in any way: report it, keep the notebook alive
            return raised(name, err)
        if got is None:
            return not_yet("from_hf_layout")
        if not isinstance(got, Mapping):
            results.append(failed(name, f"should be a dict of name -> tensor, got a {type(got).__name__}"))
            break
        problem = _key_problems(got, expected)
        if problem is None:
            problem = next(
                (p for k in expected if k != HEAD and (p := _tensor_problem(k, got[k], expected[k])) is not None), None
            )
        if problem is None and HEAD in got and _tensor_problem(HEAD, got[HEAD], expected[WTE]) is not None:
            problem = ("gives lm_head.weight other values than wte", "the output head is tied: it is wte itself")
        if problem is not None:
            results.append(failed(name, problem[0], problem[1]))
            break
        results.append(_logits_match(got, model, what))  # the keys and shapes are right: the logits say the rest
    return combine("check_from_hf_layout", results)


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    b, t, c = x.shape
    return x.view(b, t, n_head, c // n_head).transpose(1, 2)  # (B, nh, t, hs)


def attend_with_cache(
    qkv: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, n_head: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention of ``t`` new tokens given the cache: (y (B, t, C) before ``c_proj``, all keys, all values).

    ``qkv`` is ``c_attn``'s output for the new tokens, (B, t, 3C); ``past_k`` and ``past_v`` hold the earlier
    tokens' keys and values, (B, heads, T_past, head size). Query i of the new tokens sits at position
    T_past + i, so it sees every cached key and the new ones up to itself (gptmini's ``causal_mask``).
    """

    b, t, c3 = qkv.shape
    q, k, v = (_split_heads(part, n_head) for part in qkv.split(c3 // 3, dim=2))
    k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(t, k.size(2), qkv.device))
    return y.transpose(1, 2).reshape(b, t, c3 // 3), k, v


def _full_pass(qkv_all: torch.Tensor, n_head: int, scale: float | None = None, mask: str = "causal") -> torch.Tensor:
    """One causal attention pass over the whole sequence (B, T, 3C) -> (B, T, C), the plain way.

    ``scale`` and ``mask`` reproduce slips: no scaling (1.0), √C instead of √head size; no mask ("none").
    """
    b, t, c3 = qkv_all.shape
    q, k, v = (_split_heads(part, n_head) for part in qkv_all.split(c3 // 3, dim=2))
    scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.size(-1)) if scale is None else scale)
    if mask == "causal":
        scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    y = scores.softmax(-1) @ v
    return y.transpose(1, 2).reshape(b, t, c3 // 3)


def _unshifted(qkv_all: torch.Tensor, past: int, n_head: int) -> torch.Tensor:
    """The slip of a square mask: query i of the new tokens sees keys 0..i only, as if nothing were cached."""
    b, t_all, c3 = qkv_all.shape
    q, k, v = (_split_heads(part, n_head) for part in qkv_all.split(c3 // 3, dim=2))
    q = q[:, :, past:]
    t = t_all - past
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(~torch.ones(t, t_all, dtype=torch.bool).tril(), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c3 // 3)


ATTEND_CASES = ((1, 2, 4, 5, 1), (2, 3, 4, 0, 4), (1, 2, 8, 4, 3))  # batch, heads, head size, cached, new


def _close(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.detach().float(), b, atol=1e-5)


def check_attend_with_cache(step_fn: Callable[..., Any]) -> CheckResult:
    """``step_fn(qkv, past_k, past_v, n_head)`` -> (y, k, v): new tokens attend to the cache and to themselves.

    Random sequences are cut into cached and new tokens (one new token after five, four after none, three
    after four); ``y`` must equal the last rows of one causal pass over the whole sequence, and ``k``, ``v``
    the keys and values of every position, the cached ones first.
    """
    require_callable(step_fn, "step_fn", "check_attend_with_cache")
    g = torch.Generator().manual_seed(0)
    results = []
    for b, n_head, hs, past, new in ATTEND_CASES:
        c = n_head * hs
        qkv_all = torch.randn(b, past + new, 3 * c, generator=g)
        _, k_all, v_all = (_split_heads(part, n_head) for part in qkv_all.split(c, dim=2))
        what = f"attention of {new} new token(s) after {past} cached, {n_head} heads of size {hs}"
        try:
            out = step_fn(qkv_all[:, past:].clone(), k_all[:, :, :past].clone(), v_all[:, :, :past].clone(), n_head)
        except NotImplementedError:
            return not_yet("attend_with_cache", STUB_MESSAGE)
        except Exception as err:  # a shape error is the usual sign of joining on the wrong dimension
            hint = (
                "q, k, v are (batch, heads, tokens, head size): the cache grows along the tokens, dim=2"
                if isinstance(err, RuntimeError)
                else None
            )
            return raised(what, err, hint)
        if out is None or (isinstance(out, tuple) and any(o is None for o in out)):
            return not_yet("attend_with_cache")
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            results.append(failed(what, "should return the triple (y, k, v)"))
            continue
        y, k, v = out
        expected_y = _full_pass(qkv_all, n_head)[:, past:]
        if not _close(k, k_all) or not _close(v, v_all):
            hint = "return the keys and values of every position so far: the cached ones, then the new ones"
            got = k if not _close(k, k_all) else v
            if isinstance(got, torch.Tensor) and got.shape != k_all.shape:
                detail = f"returns keys/values of shape {tuple(got.shape)}, expected {tuple(k_all.shape)}"
                if got.dim() == 4 and got.size(2) == new:
                    hint = "these are the new tokens' keys only: join them after the cached ones (torch.cat, dim=2)"
                elif got.dim() == 4 and got.shape[:2] != k_all.shape[:2] or got.dim() == 4 and got.size(3) != hs:
                    hint = "joined on the wrong dimension: (batch, heads, tokens, head size) grows along dim=2"
            else:
                detail = "returns keys/values that differ from those of every position"
                swapped = torch.cat([k_all[:, :, past:], k_all[:, :, :past]], dim=2)
                if past and _close(k, swapped):
                    hint = "the new keys go after the cached ones (they are later positions)"
            results.append(failed(what, detail, hint))
            continue
        slips = [
            (_full_pass(qkv_all, n_head, scale=1.0)[:, past:], "divide the scores by √(head size) before the softmax"),
            (
                _full_pass(qkv_all, n_head, scale=1 / math.sqrt(c))[:, past:],
                "the scale is √(head size) = √(C / n_head), not √C",
            ),
            (
                _full_pass(qkv_all, n_head, mask="none")[:, past:],
                "a new token must not see the new tokens after it: mask with causal_mask(t, T_total), "
                "which shifts the diagonal by the cached length",
            ),
            (
                _unshifted(qkv_all, past, n_head),
                "the mask is not shifted by the cached length: new token i sits at position T_past + i and "
                "sees every cached key (causal_mask(t, T_total), or tril(diagonal=T_past))",
            ),
        ]
        hint = None
        if isinstance(y, torch.Tensor) and y.dim() == 4 and y.shape == (b, n_head, new, hs):
            hint = "merge the heads back: (batch, t, C), the heads side by side"
        else:
            hint = next((h for wrong, h in slips if _close(y, wrong) and not _close(y, expected_y)), None)
        results.append(compare_tensors(what, y, expected_y, hint=hint, against="one causal pass over all tokens"))
    return combine("check_attend_with_cache", results)


def _decoding_limit(bandwidth_gb_s: float, model: torch.nn.Module) -> float:
    """Tokens/s at most for a batch of one: every weight byte (the tied ``wte`` once) read once per token."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return bandwidth_gb_s * 1e9 / weight_bytes


def _from_hf_layout():

    return from_hf_layout  # from_hf_layout(hf_state) -> gptmini's state dict


def _attend_with_cache():

    return attend_with_cache  # attend_with_cache(qkv, past_k, past_v, n_head) -> (y, k, v)


def _top_k():
    from ...generate import top_k_filter

    return top_k_filter  # top_k(logits, k)


def _top_p():
    from ...generate import top_p_filter

    return top_p_filter  # top_p(logits, p)


def _greedy_decode(model, prompt_ids, steps: int) -> list[int]:
    return model.generate(list(prompt_ids), steps, temperature=0)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "decoding_limit": lambda: _decoding_limit,
    "from_hf_layout": _from_hf_layout,
    "attend_with_cache": _attend_with_cache,
    "top_k": _top_k,
    "top_p": _top_p,
    "greedy_decode": lambda: _greedy_decode,
}
