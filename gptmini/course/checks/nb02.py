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
    combine,
    compare_tensors,
    compare_values,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = ["check_counted_bigram", "check_embedding", "check_input_embedding", "check_lm_loss"]


class InputEmbedding(torch.nn.Module):
    """GPT-1's input layer as gptmini computes it: h0 = U·We + Wp, then dropout (the package's version)."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.block_size = block_size
        self.wte = torch.nn.Embedding(vocab_size, n_embd)
        self.wpe = torch.nn.Embedding(block_size, n_embd)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.size(1)
        if t > self.block_size:
            raise ValueError(f"a sequence of {t} tokens is longer than the model's {self.block_size} positions")
        return self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))


def _same_draw(drop: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Dropout with the random state the learner's layer was run with (seed 5), so the masks agree."""
    torch.manual_seed(5)
    return drop(x)


def check_input_embedding(layer_class: Any) -> CheckResult:
    """``layer_class(vocab_size, block_size, n_embd, dropout)``: a module with tables ``wte`` and ``wpe`` and a
    ``drop`` dropout whose ``forward(idx)`` gives h0 = U·We + Wp with dropout, as gptmini's GPT computes it.

    Compared with gptmini's tables in evaluation mode and, with the same random seed, in training mode (dropout
    on); a sequence longer than ``block_size`` must be refused with a ValueError.
    """
    if layer_class is None:
        return not_yet("InputEmbedding")
    require_callable(layer_class, "layer_class", "check_input_embedding")
    vocab, block, width = 11, 12, 16  # vocab < block_size: positions looked up by token id run, and can be named
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=width, dropout=0.25))
    wte, wpe, drop = model.transformer.wte, model.transformer.wpe, model.transformer.drop
    layer, error = call_learner("InputEmbedding(vocab_size, block_size, n_embd, dropout)", layer_class,
                                vocab, block, width, 0.25)  # fmt: skip
    if error is not None:
        return error
    own = getattr(layer, "state_dict", lambda: {})()
    want = {"wte.weight": (vocab, width), "wpe.weight": (block, width)}
    for key, shape in want.items():
        if key not in own or tuple(own[key].shape) != shape:
            found = {k: tuple(v.shape) for k, v in own.items()}
            return failed(
                "your InputEmbedding",
                f"should hold {key} of shape {shape}; it holds {found}",
                "a table of token rows (one per token of the vocabulary) and one of position rows (one per "
                "position of the window), named as in gptmini",
            )
    layer.load_state_dict({"wte.weight": wte.weight.detach(), "wpe.weight": wpe.weight.detach()}, strict=False)
    idx = torch.randint(vocab, (3, 9), generator=seeded(1))
    pos = torch.arange(9)
    results = []
    for training in (False, True):
        mode = "training mode, dropout on" if training else "evaluation mode"
        layer.train(training)
        drop.train(training)
        with torch.no_grad():
            torch.manual_seed(5)
            got, error = call_learner(f"h0 in {mode}", layer, idx)
            if error is not None:
                return error
            got = first(got)
            expected = _same_draw(drop, wte(idx) + wpe(pos))
            slips = {
                "this is U·We alone: add the position rows, so that the same token in two places gives two "
                "different vectors": _same_draw(drop, wte(idx)),
                "the positions were looked up with the token ids: a position row belongs to the place 0 .. T-1, "
                "whatever token stands there": _same_draw(drop, wte(idx) + wpe(idx)),
                "GPT-1 applies dropout (0.1) to the embeddings while training: the layer's dropout acts on h0": (
                    wte(idx) + wpe(pos)
                ),
                "dropout acts once, on the sum h0, not on the token rows before the positions are added": (
                    _same_draw(drop, wte(idx)) + wpe(pos)
                ),
            }
        hint = next((h for h, v in slips.items() if close(got, v) and not close(v, expected)), None)
        results.append(compare_tensors(f"h0 = U·We + Wp in {mode}", got, expected, hint=hint))
    layer.eval()
    too_long = torch.zeros(1, block + 1, dtype=torch.long)
    what = f"a sequence of {block + 1} tokens (block_size {block})"
    try:
        layer(too_long)
    except ValueError:
        results.append(passed(f"{what} is refused with a ValueError"))
    except Exception as err:  # noqa: BLE001 - the learner's layer: name what it raised
        results.append(failed(what, f"raised {type(err).__name__}",
                              "the window has block_size positions: refuse a longer sequence yourself, with a "
                              "ValueError that says how long it may be"))  # fmt: skip
    else:
        results.append(failed(what, "was accepted", "the window has block_size positions: refuse a longer "
                              "sequence with a ValueError that says how long it may be"))  # fmt: skip
    return combine("check_input_embedding", results)


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
    "InputEmbedding": lambda: InputEmbedding,
}
