"""Check helpers for notebook 11, part 2: the direct-logit-attribution projection and a head's full OV circuit.

Each check runs the learner's function on small random models whose vocabulary is as large as the
residual stream, so that a transposed matrix still multiplies and the slip can be named (a transpose, a
missing LayerNorm or bias, a scale that was not frozen), and compares with :mod:`gptmini.inspect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._report import CheckResult, call_answer, combine, compare_tensors, require_callable
from .fallbacks import _VERSIONS

__all__ = ["check_dla_projection", "check_full_ov_circuit"]


def _models() -> list[tuple[str, torch.nn.Module]]:
    """Two pre-LN attention-only models, vocab = n_embd = 16 (transposes still multiply), LayerNorms not identity."""
    from ..model import GPT, GPTConfig

    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0, attn_only=True)
        model = GPT(cfg).double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
            for ln in (model.transformer.ln_f, model.transformer.h[0].ln_1):
                ln.weight.uniform_(0.5, 2.0)
        out.append((f"random model #{seed + 1}", model))
    return out


def _hint(value: Any, expected: torch.Tensor, slips: dict[str, torch.Tensor]) -> str | None:
    if not isinstance(value, torch.Tensor) or value.shape != expected.shape:
        return None
    if torch.allclose(value.double(), expected, atol=1e-6):
        return None
    return next((h for h, s in slips.items() if torch.allclose(value.double(), s, atol=1e-6)), None)


def check_dla_projection(project_fn: Callable[..., Any]) -> CheckResult:
    """``project_fn(model, parts, final_resid, right, wrong)``: parts (n, C), final_resid (C,) -> (n,).

    Each part's direct contribution to ``logit[right] - logit[wrong]`` through ``ln_f`` with the scale frozen
    at the final stream's, and the unembedding.
    """
    from ..inspect.attribution import project_to_logit_diff

    require_callable(project_fn, "project_fn", "check_dla_projection")
    results = []
    for what, model in _models():
        gen = torch.Generator().manual_seed(5)
        parts = 2.0 * torch.randn(6, 16, generator=gen, dtype=torch.float64)
        final = parts.sum(0) + torch.randn(16, generator=gen, dtype=torch.float64)
        right, wrong = 3, 11
        name = f"dla_projection on {what} (6 parts, C = 16)"
        with torch.no_grad():
            value, error = call_answer(name, project_fn, model, parts.clone(), final.clone(), right, wrong)
            if error is not None:
                return error
            expected = project_to_logit_diff(model, parts, final, right, wrong)
            ln, w_u = model.transformer.ln_f, model.lm_head.weight
            d = w_u[right] - w_u[wrong]
            sigma = (final.var(unbiased=False) + ln.eps).sqrt()
            centred = parts - parts.mean(-1, keepdim=True)
            project = ln.weight / sigma  # what the frozen LayerNorm multiplies a centred part by
            flipped = w_u[:, right] - w_u[:, wrong]
            slips = {
                "the unembedding is transposed: lm_head.weight is (vocab, C), so token t's direction is the row "
                "lm_head.weight[t], not the column [:, t]": (centred * project) @ flipped,
                "the final LayerNorm is missing: centre each part, divide by the frozen scale, multiply by "
                "ln_f.weight, then project": parts @ d,
                "each part must be centred (LayerNorm subtracts the mean of the C features)": (parts * project) @ d,
                "ln_f.weight is missing: multiply by it after dividing by the scale": (centred / sigma) @ d,
                "the scale is the part's own: freeze it at the final stream's (sqrt(var(final_resid) + eps)), the one "
                "the real forward pass divided by": ln(parts) @ d - ln.bias @ d,
                "ln_f(parts) normalises each part by its own scale and adds ln_f.bias to every part: use the final "
                "stream's frozen scale and leave the bias out (it belongs to no part)": ln(parts) @ d,
                "ln_f.bias belongs to no part: leave it out": (centred * project) @ d + ln.bias @ d,
                "the sign is flipped: right minus wrong": -expected,
            }
            results.append(compare_tensors(name, value, expected, atol=1e-6, hint=_hint(value, expected, slips)))
    return combine("check_dla_projection", results)


def check_full_ov_circuit(ov_fn: Callable[..., Any]) -> CheckResult:
    """``ov_fn(model, head)``: the (vocab, vocab) full OV circuit of a layer-0 head (row: source token)."""
    from ..inspect.circuits import _head_weights, full_ov_circuit

    require_callable(ov_fn, "ov_fn", "check_full_ov_circuit")
    results = []
    for what, model in _models():
        for head in (0, 1):
            name = f"full OV circuit of head {head} on {what} (vocab 16)"
            with torch.no_grad():
                value, error = call_answer(name, ov_fn, model, head)
                if error is not None:
                    return error
                expected = full_ov_circuit(model, head)
                w = _head_weights(model, 0, head)
                e, w_u = model.transformer.wte.weight, model.lm_head.weight
                x = model.transformer.h[0].ln_1(e)
                slips = {
                    "the matrix is transposed: rows are the source token (the one attended to), columns the "
                    "logits it raises": expected.T,
                    "ln_1 is missing: the head reads LayerNorm(embedding), not the raw embedding": (
                        (e @ w["W_V"] + w["b_V"]) @ w["W_O"] @ w_u.T
                    ),
                    "the value bias is missing: c_attn's bias has a slice for each head's values": (
                        x @ w["W_V"] @ w["W_O"] @ w_u.T
                    ),
                    "c_proj's bias belongs to no head: leave it out": (
                        expected + (model.transformer.h[0].attn.c_proj.bias @ w_u.T)[None]
                    ),
                    "W_O is transposed: the head's slice of c_proj.weight is its columns, used as x @ weight.T": (
                        (x @ w["W_V"] + w["b_V"])
                        @ model.transformer.h[0].attn.c_proj.weight[head * 8 : (head + 1) * 8]
                        @ w_u.T
                    ),
                }
                results.append(compare_tensors(name, value, expected, atol=1e-6, hint=_hint(value, expected, slips)))
    return combine("check_full_ov_circuit", results)


def _full_ov():
    from ..inspect.circuits import full_ov_circuit

    return full_ov_circuit  # full_ov_circuit(model, head, layer=0)


def _dla_projection():
    from ..inspect.attribution import project_to_logit_diff

    return project_to_logit_diff  # dla_projection(model, parts, final_resid, right, wrong)


_VERSIONS.update({"dla_projection": _dla_projection, "full_ov_circuit": _full_ov})
