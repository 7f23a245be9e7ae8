"""The induction circuit of any pre-LN model in one call: which heads, whether they matter, how they compose.

On repeated random tokens (a clean prompt) and the same with the first copy redrawn (corrupted: nothing to
copy from), it gathers what notebook 11 measures one tool at a time: induction and previous-token scores,
activation patching of every head (how much of the clean second-copy loss each head brings back), and the
K-composition of the best previous-token head with the best induction heads. Notebook 11 runs it on the
GPT-2-style model of notebook 08 and, online, on real GPT-2 small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .circuits import k_composition
from .patching import negative_loss_metric, patch_heads
from .scores import head_scores, repeated_tokens

Head = tuple[int, int]


@dataclass
class InductionReport:
    scores: dict[str, torch.Tensor]  # head_scores on the repeated tokens, {name: (layers, heads)}
    recovered: torch.Tensor  # (layers, heads): patching each head's output from clean into corrupted
    induction_heads: list[Head]  # highest induction score first
    previous_token_head: Head  # the highest previous-token score in a layer below the best induction head
    k_composition: list[float]  # of previous_token_head with each of induction_heads (NaN if not below it)
    clean_loss: float  # mean loss on the second copy, nats per token
    corrupted_loss: float


def _top(values: torch.Tensor, k: int) -> list[Head]:
    n_head = values.shape[1]
    return [divmod(int(i), n_head) for i in values.flatten().topk(k).indices]


@torch.no_grad()
def induction_circuit(
    model, n: int, batch: int = 4, seed: int = 0, tokens: Sequence[int] | None = None, top: int = 3
) -> InductionReport:
    """Scores, patching and K-composition of ``model``'s induction heads on ``batch`` sequences of n tokens x 2."""
    if model.config.norm != "pre":
        raise ValueError("induction_circuit reads the weights of a pre-LN model (GPT-2 style); this one is post-LN")
    device = model.device
    clean = repeated_tokens(model.config.vocab_size, n, batch, seed, tokens=tokens).to(device)
    corrupted = clean.clone()
    corrupted[:, :n] = repeated_tokens(model.config.vocab_size, n, batch, seed + 1, tokens=tokens)[:, :n].to(device)
    scores = head_scores(model, clean[0], n=n, batch=batch, seed=seed, tokens=tokens)
    patched = patch_heads(model, clean, corrupted, negative_loss_metric(clean, start=n))
    induction = _top(scores["induction"], top)
    below = scores["previous-token"][: max(1, induction[0][0])]
    previous = _top(below, 1)[0]
    comps = [float(k_composition(model, previous, h)) if previous[0] < h[0] else float("nan") for h in induction]
    return InductionReport(scores, patched.recovered, induction, previous, comps, -patched.clean, -patched.corrupted)
