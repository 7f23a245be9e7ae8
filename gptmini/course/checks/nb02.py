"""Notebook 02 (embeddings): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ...config import GPTConfig
from ...model import GPT
from ._common import close, first, seeded
from ._report import (
    NONE_MESSAGE,
    CheckResult,
    call_learner,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    require_callable,
)

__all__ = ["check_counted_bigram", "check_embedding", "check_lm_loss"]


def check_embedding(embed: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``embed(idx, We, Wp)`` -> h0 = U·We + Wp, for idx (B, T): the input gptmini's first block sees.

    ``We`` is the token table (vocab, C) and ``Wp`` the position table (block_size, C); the reference is
    ``GPT.transformer.wte(idx) + GPT.transformer.wpe(positions)``.
    """
    require_callable(embed, "embed", "check_embedding")
    torch.manual_seed(0)
    # vocab < block_size on purpose: looking positions up by token id then runs, and can be named as the mistake
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    idx = torch.randint(11, (3, 9), generator=seeded(1))
    we, wp = model.transformer.wte.weight.detach(), model.transformer.wpe.weight.detach()
    with torch.no_grad():
        expected = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(9))
        got, error = call_learner("h0", embed, idx, we, wp, may_return_none=True)
    if error is not None:
        return error
    got = first(got)
    hint = None
    if close(got, we[idx]):
        hint = "this is U·We alone: add the position embeddings Wp[:T] so that order matters"
    elif close(got, we[idx] + wp[idx]):  # both tables indexed by the token ids
        hint = (
            "the positions were looked up with the token ids; look up Wp's rows for positions 0 .. T-1 "
            "(the place, not the token)"
        )
    elif isinstance(got, torch.Tensor) and got.shape == (3, 12, 16):
        hint = "use only the first T rows of Wp: Wp[:T]"
    return compare_tensors("h0 = U·We + Wp", got, expected, hint=hint)


def check_lm_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> CheckResult:
    """``loss_fn(logits, targets)`` -> the mean negative log-likelihood of the targets, one number.

    ``logits`` is (B, T, vocab), ``targets`` (B, T); the reference is gptmini's training loss,
    ``F.cross_entropy`` over all B·T positions.
    """
    require_callable(loss_fn, "loss_fn", "check_lm_loss")
    g = seeded(2)
    logits = torch.randn(2, 5, 11, generator=g) * 3
    targets = torch.randint(11, (2, 5), generator=g)
    expected = F.cross_entropy(logits.view(-1, 11), targets.view(-1))
    got, error = call_learner("loss", loss_fn, logits.clone(), targets.clone(), may_return_none=True)
    if error is not None:
        return error
    if got is None:
        return not_yet("loss", NONE_MESSAGE)
    if isinstance(got, torch.Tensor) and got.numel() != 1:
        return failed(
            "loss", f"should be a single number, got a tensor of shape {tuple(got.shape)}", hint="take the .mean()"
        )
    value = (
        float(got.detach() if isinstance(got, torch.Tensor) else got)
        if isinstance(got, (torch.Tensor, int, float))
        else got
    )
    if not isinstance(value, float):
        return failed("loss", f"should be a number, got a {type(got).__name__}")
    e = float(expected)
    hint = None
    if math.isclose(value, -e, rel_tol=1e-4):
        hint = "the sign is flipped: the loss is the *negative* log-probability"
    elif math.isclose(value, e * targets.numel(), rel_tol=1e-4):
        hint = "this is the sum over positions; divide by B·T (use the mean)"
    elif math.isclose(value, math.exp(e), rel_tol=1e-4):
        hint = "that is the perplexity exp(loss); return the loss itself"
    return compare_tensors("mean next-token loss", torch.tensor(value), expected, atol=1e-5, hint=hint)


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


def _embed(idx: torch.Tensor, We: torch.Tensor, Wp: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.embedding(idx, We) + Wp[: idx.size(1)]


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "embed": lambda: _embed,
}
