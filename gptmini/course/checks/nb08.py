"""Notebook 08 (GPT-1 to GPT-2): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ...config import GPTConfig
from ...model import GPT, Block
from ._report import (
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = ["check_pre_ln_block", "check_residual_init", "check_embedding_params", "check_residual_stds"]


def check_embedding_params(value: Any) -> CheckResult:
    """GPT-2 small's token table plus position table, counted on a real ``GPT(GPTConfig.preset("gpt2"))``."""

    if value is None:
        return not_yet("embedding_params")
    with torch.device("meta"):  # shapes only, no memory
        model = GPT(GPTConfig.preset("gpt2"))
    wte, wpe = model.transformer.wte.weight.numel(), model.transformer.wpe.weight.numel()
    expected = wte + wpe
    hint = None
    if value == wte:
        hint = "that is the token table alone; add the position table: a row per position of the context"
    elif value == 2 * wte + wpe:
        hint = "the output layer shares the token table (weight tying): count it once"
    elif value == 50000 * 768 + wpe:
        hint = "the vocabulary is 50,257 tokens: 50,000 merges + 256 bytes + <|endoftext|>"
    result = compare_values("embedding parameters of GPT-2 small", value, expected, hint, show=False)
    if not result:
        return result.show()
    total = model.num_params(non_embedding=False)
    return passed(f"{expected:,} of GPT-2 small's {total:,} parameters ({expected / total:.0%}) are the two tables")


def check_pre_ln_block(forward_fn: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``forward_fn(block, x)`` must compute GPT-2's pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(·))."""

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
        value, error = call_learner(what, forward_fn, block, x)
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
            hint = (
                "keep the residual: add each sub-block's output to the un-normalised x, attention first, then the MLP"
            )
    return compare_tensors("pre-LN block output", value, expected, hint=hint)


def check_residual_init(std_fn: Callable[[int], float]) -> CheckResult:
    """``std_fn(n_layer)`` must give GPT-2's init std of the residual projections: 0.02 / √(2·n_layer).

    Besides the formula, the answer for 12 layers is compared with the std measured in a freshly built
    gptmini GPT, so the check also shows that the model really does what the formula says.
    """

    require_callable(std_fn, "std_fn", "check_residual_init")
    results = []
    for n_layer in (1, 4, 12, 48):
        what = f"residual init std for n_layer={n_layer}"
        value, error = call_learner(what, std_fn, n_layer)
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


# The package's version of each exercise, for a learner who is not there yet (see package_version).
def _stds_case(norm: str, seed: int) -> tuple[GPT, torch.Tensor]:
    """A fresh 6-block model (no dropout: the same numbers in every mode) and a batch of random ids."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=6, n_head=2, n_embd=32, dropout=0.0, norm=norm))
    return model.eval(), torch.randint(64, (3, 16), generator=torch.Generator().manual_seed(seed))


def _stream(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """The residual stream after each block, read by gptmini's hooks (:func:`gptmini.inspect.run_with_cache`)."""
    from ...inspect import run_with_cache

    return run_with_cache(model, idx, patterns=False)[1].resid


def _residual_stds(model: GPT, idx: torch.Tensor) -> list[float]:
    """gptmini's: the std of the residual stream after each block."""
    return [float(resid.std()) for resid in _stream(model, idx)]


def check_residual_stds(stds_fn: Callable[[GPT, torch.Tensor], Any]) -> CheckResult:
    """``stds_fn(model, idx)`` -> the std of each block's output (the residual stream after it), one per block,
    measured without changing the model: no hook may be left behind."""
    require_callable(stds_fn, "stds_fn", "check_residual_stds")
    results = []
    for norm, seed in (("pre", 0), ("post", 1)):
        model, idx = _stds_case(norm, seed)
        what = f"the stream's std after each block of a {norm}-LN model"
        value, error = call_learner(what, stds_fn, model, idx)
        if error is not None:
            return error
        left = [b for b in model.transformer.h if b._forward_hooks]
        if left:
            hint = "remove the hooks once the forward pass is done: a forgotten hook records every later run"
            return failed(what, f"left a hook on {len(left)} of the {len(model.transformer.h)} blocks", hint)
        expected = _residual_stds(model, idx)
        hint = None
        if isinstance(value, (list, tuple)) and len(value) == len(expected) + 1:
            hint = "one number per block: the std after each block, not the embeddings before the first"
        elif isinstance(value, (list, tuple)) and len(value) == len(expected):
            first = [float(r[0].std()) for r in _stream(model, idx)]
            if all(math.isclose(float(v), f, rel_tol=1e-5) for v, f in zip(value, first, strict=True)):
                hint = "that is the first sequence of the batch only: take the std over the whole output"
        results.append(compare_values(what, [float(v) for v in value] if isinstance(value, (list, tuple)) else value,
                                      expected, hint))  # fmt: skip
    return combine("check_residual_stds", results)


PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "pre_ln_forward": lambda: lambda block, x: block(x),
    "residual_stds": lambda: _residual_stds,
}
