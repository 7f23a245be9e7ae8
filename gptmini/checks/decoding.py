"""Check helpers for notebook 09: loading a checkpoint stored in the hub's layout, and one cached attention step.

* ``from_hf_layout(hf_state)``: a GPT-2 ``model.safetensors`` as Hugging Face stores it (keys without the
  ``transformer.`` prefix, the four Conv1D weights as (in, out), causal-mask buffers ``h.N.attn.bias``) turned
  into gptmini's state dict. :func:`to_hf_layout` writes any gptmini model in that layout, so the exercise
  runs offline; the check loads the learner's result into a fresh model and compares the logits.
* ``attend_with_cache(qkv, past_k, past_v, n_head)``: attention for new tokens given the cached keys and
  values of the earlier ones; the check compares it with one causal pass over the whole sequence.

Each check names the usual slips: a Conv1D weight not transposed or the embedding transposed too, the
prefix missing or doubled, the mask buffer copied; the cache joined on the wrong dimension or in the wrong
order, the causal mask not shifted by the cached length, the scores not scaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ..pretrained import CONV1D_WEIGHTS, HEAD, IGNORED_SUFFIXES, WTE, _our_key
from ._report import STUB_MESSAGE, CheckResult, combine, compare_tensors, failed, not_yet, passed, require_callable

__all__ = ["to_hf_layout", "from_hf_layout", "check_from_hf_layout", "attend_with_cache", "check_attend_with_cache"]

PREFIX = "transformer."


# ------------------------------------------------------------------------------------ the hub's layout
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
        ours = _our_key(key)
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
            return failed(name, f"raised {type(err).__name__}: {err}")
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
        results.append(passed(f"{name}: every key and shape matches gptmini", show=False))
        results.append(_logits_match(got, model, what))
    return combine("check_from_hf_layout", results)


# ------------------------------------------------------------------------------------ one cached step
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
    from ..model import causal_mask

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
            return failed(what, f"raised {type(err).__name__}: {str(err).splitlines()[0][:160]}", hint)
        if out is None or (isinstance(out, tuple) and any(o is None for o in out)):
            return not_yet("attend_with_cache")
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            results.append(failed(what, "should return the triple (y, k, v)"))
            continue
        y, k, v = out
        expected_y = _full_pass(qkv_all, n_head)[:, past:]
        if not _close(k, k_all) or not _close(v, v_all):
            hint = "return the keys and values of every position so far: torch.cat([past_k, k_new], dim=2)"
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
                    hint = "the new keys go after the cached ones (they are later positions): cat([past_k, k], dim=2)"
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
            hint = "merge the heads back: y.transpose(1, 2).reshape(batch, t, C)"
        else:
            hint = next((h for wrong, h in slips if _close(y, wrong) and not _close(y, expected_y)), None)
        results.append(compare_tensors(what, y, expected_y, hint=hint, against="one causal pass over all tokens"))
    return combine("check_attend_with_cache", results)
