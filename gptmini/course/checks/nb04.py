"""Notebook 04 (multi-head attention and the block): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...config import GPTConfig
from ...model import MLP, Block, CausalSelfAttention
from ...utils import eval_mode
from ._common import close, first, load_state, seeded
from ._report import CheckResult, call_learner, combine, compare_tensors, compare_values, require_callable

__all__ = ["check_split_heads", "check_multihead", "check_mlp", "check_block", "check_block_params"]


def check_split_heads(
    split: Callable[[torch.Tensor, int], torch.Tensor], merge: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> CheckResult:
    """``split(x, n_head)``: (B, T, C) -> (B, n_head, T, C // n_head); ``merge`` undoes it, back to (B, T, C).

    Head h owns the columns ``h*hs : (h+1)*hs`` of C, as in gptmini (and in the OpenAI checkpoints).
    """
    require_callable(split, "split", "check_split_heads")
    b, t, c, nh = 2, 5, 12, 3
    x = torch.randn(b, t, c, generator=seeded(5))
    expected = x.view(b, t, nh, c // nh).transpose(1, 2)
    got, error = call_learner("split(x, n_head)", split, x.clone(), nh, may_return_none=True)
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and close(got, x.reshape(b, nh, t, c // nh)):
        hint = (
            "x.view(B, n_head, T, hs) scrambles tokens across heads; view as (B, T, n_head, hs), then transpose(1, 2)"
        )
    results = [compare_tensors("split heads", got, expected, hint=hint)]
    if merge is not None:
        require_callable(merge, "merge", "check_split_heads")
        back, error = call_learner("merge(split(x))", merge, expected.clone(), may_return_none=True)
        if error is None:
            error = compare_tensors(
                "merge heads",
                back,
                x,
                hint="swap the head and time dimensions back, then lay the heads side by side (contiguous first)",
            )
        results.append(error)
    return results[0] if len(results) == 1 else combine("heads split and merged", results)


def _randomised(module: nn.Module, seed: int) -> nn.Module:
    """Give every parameter (LayerNorm scales and biases too) a random value, so no swap can go unnoticed."""
    g = seeded(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:  # LayerNorm scale: around 1
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module


def _small_config(config: GPTConfig | None, **overrides: Any) -> GPTConfig:
    if config is None:
        return GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.0, **overrides)
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a gptmini GPTConfig, got {type(config).__name__}")
    return config.replace(dropout=0.0, **overrides)


def _run_module(what: str, module: Any, x: torch.Tensor) -> tuple[Any, CheckResult | None]:
    with eval_mode(module), torch.no_grad():
        out, error = call_learner(what, module, x, may_return_none=True)
    return (first(out) if error is None else None), error


def check_multihead(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your multi-head attention module against gptmini's ``CausalSelfAttention``.

    The module must have ``c_attn`` (C -> 3C: q, k, v in one matmul) and ``c_proj`` (C -> C) like gptmini;
    the check copies gptmini's random weights into a copy of yours and compares outputs for x (B, T, C).
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_multihead expects your attention module (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config)
    torch.manual_seed(6)
    ref = _randomised(CausalSelfAttention(cfg), 7).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = load_state("your attention module", yours, ref.state_dict())
    if problem is not None:
        return problem
    t = min(cfg.block_size, 7)
    x = torch.randn(2, t, cfg.n_embd, generator=seeded(8))
    with torch.no_grad():
        expected = ref(x)
    got, error = _run_module("your attention module(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not close(got, expected):
        hint = next((h for slip, h in _ATTENTION_SLIPS.items() if close(got, _attention_variant(ref, x, slip))), None)
        if hint is None:
            x2 = x.clone()
            x2[:, -1] += 1.0
            later, _ = _run_module("your attention module(x)", yours, x2)
            if isinstance(later, torch.Tensor) and not torch.allclose(later[:, :-1], got[:, :-1], atol=1e-6):
                hint = f"changing the last token changes earlier outputs: each position may look only at itself and " \
                       f"the positions before it (T = {t})"  # fmt: skip
    return compare_tensors("multi-head attention output", got, expected, atol=1e-5, hint=hint)


_ATTENTION_SLIPS = {
    "sqrt C": "each head's dot products run over its own head_size numbers: scale by the square root of the head "
    "size, not of the model's width",
    "no scale": "the scores are not scaled: divide by the square root of the head size, as in notebook 03",
    "scrambled heads": "a head owns a slice of each token's channels: cut the channels into heads first, then move "
    "the head dimension forward (cutting the flat (T, C) block scrambles tokens across heads)",
    "no mask": "every position sees the future: each query may look only at itself and earlier positions",
    "zero mask": "masked scores set to 0 still get weight after the softmax: the future must get weight exactly 0 "
    "(a score of minus infinity)",
    "softmax over queries": "the softmax runs over the wrong axis: each query's weights over the keys must sum to 1",
    "no projection": "the heads' outputs, side by side, still go through the output projection that mixes them",
}


def _attention_variant(ref: nn.Module, x: torch.Tensor, slip: str) -> torch.Tensor:
    """gptmini's attention computed by hand with one typical slip (see ``_ATTENTION_SLIPS``)."""
    b, t, c = x.shape
    nh = ref.n_head
    hs = c // nh
    with torch.no_grad():
        parts = ref.c_attn(x).split(c, dim=2)
        if slip == "scrambled heads":
            q, k, v = (part.reshape(b, nh, t, hs) for part in parts)
        else:
            q, k, v = (part.view(b, t, nh, hs).transpose(1, 2) for part in parts)
        scale = {"sqrt C": c**0.5, "no scale": 1.0}.get(slip, hs**0.5)
        scores = q @ k.transpose(-2, -1) / scale
        future = ~torch.tril(torch.ones(t, t, dtype=torch.bool))
        if slip != "no mask":
            scores = scores.masked_fill(future, 0.0 if slip == "zero mask" else float("-inf"))
        weights = scores.softmax(dim=-2 if slip == "softmax over queries" else -1)
        y = (weights @ v).transpose(1, 2).reshape(b, t, c)
        return y if slip == "no projection" else ref.c_proj(y)


def check_mlp(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your feed-forward network (``c_fc``: C -> 4C, GELU, ``c_proj``: 4C -> C) against gptmini's ``MLP``."""
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_mlp expects your feed-forward module (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config)
    ref = _randomised(MLP(cfg), 9).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = load_state("your MLP", yours, ref.state_dict())
    if problem is not None:
        return problem
    x = torch.randn(2, 5, cfg.n_embd, generator=seeded(10))
    with torch.no_grad():
        expected = ref(x)
        hidden = ref.c_fc(x)
        variants = {
            "exact (erf) GELU": ref.c_proj(F.gelu(hidden)),
            "ReLU": ref.c_proj(F.relu(hidden)),
            "no activation": ref.c_proj(hidden),
        }
    got, error = _run_module("your MLP(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if not close(got, expected):
        for name, value in variants.items():
            if close(got, value):
                hint = (
                    f"this matches an MLP with {name}; GPT uses GELU's tanh approximation: nn.GELU(approximate='tanh')"
                )
                break
    return compare_tensors("feed-forward (MLP) output", got, expected, atol=1e-5, hint=hint)


def check_block(mine: nn.Module, config: GPTConfig | None = None) -> CheckResult:
    """Your decoder block against gptmini's ``Block`` with the same weights, for ``config.norm``.

    ``norm="post"`` (GPT-1, the default here): x = LN1(x + attn(x)); x = LN2(x + mlp(x)).
    ``norm="pre"`` (GPT-2): x = x + attn(LN1(x)); x = x + mlp(LN2(x)).
    Names must follow gptmini (``ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``, ``mlp.c_fc``,
    ``mlp.c_proj``). Every weight, LayerNorm scales included, is set to a random value first, so a swapped
    ``ln_1``/``ln_2`` shows up.
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_block expects your block (an nn.Module), got {type(mine).__name__}")
    cfg = _small_config(config) if config is not None else _small_config(None, norm="post")
    ref = _randomised(Block(cfg), 11).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = load_state("your block", yours, ref.state_dict())
    if problem is not None:
        return problem
    x = torch.randn(2, min(cfg.block_size, 6), cfg.n_embd, generator=seeded(12))
    with torch.no_grad():
        expected = ref(x)
        other = "pre" if cfg.norm == "post" else "post"
        ref_other = Block(cfg.replace(norm=other)).eval()
        ref_other.load_state_dict(ref.state_dict())
        expected_other = ref_other(x)
    got, error = _run_module("your block(x)", yours, x)
    if error is not None:
        return error
    hint = None
    if close(got, expected_other):
        names = {
            "post": "post-LN (GPT-1: LayerNorm after each residual add)",
            "pre": "pre-LN (GPT-2: LayerNorm at each sub-block's input)",
        }
        hint = f"your block computes the {names[other]} order, but config.norm={cfg.norm!r} asks for {names[cfg.norm]}"
    label = {"post": "post-LN (GPT-1) block output", "pre": "pre-LN (GPT-2) block output"}[cfg.norm]
    return compare_tensors(label, got, expected, atol=1e-4, hint=hint)


def check_block_params(block_params: Callable[[int], Any]) -> CheckResult:
    """``block_params(C)`` -> the number of parameters of gptmini's ``Block`` of width C (biases included)."""
    from ...config import GPTConfig
    from ...model import Block

    require_callable(block_params, "block_params", "check_block_params")
    results = []
    for width in (32, 768):
        what = f"parameters of a block with C = {width}"
        value, error = call_learner(what, block_params, width)
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


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    b, t, c = x.shape
    return x.view(b, t, n_head, c // n_head).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, n_head, t, hs = x.shape
    return x.transpose(1, 2).reshape(b, t, n_head * hs)


def _block(norm: str) -> Callable[[Any], torch.nn.Module]:
    def build(config):
        from ...model import Block

        return Block(config.replace(norm=norm))

    return build


def _attention_module(config):
    from ...model import CausalSelfAttention

    return CausalSelfAttention(config)


def _mlp(config):
    from ...model import MLP

    return MLP(config)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "split_heads": lambda: _split_heads,
    "merge_heads": lambda: _merge_heads,
    "MultiHeadAttention": lambda: _attention_module,
    "MLP": lambda: _mlp,
    "PostLNBlock": lambda: _block("post"),
    "PreLNBlock": lambda: _block("pre"),
}
