"""An ablation ladder: a language model that gains one idea of the Transformer at a time.

Each rung is the rung below plus one change, so training them all the same way on the same data shows
what each idea buys in validation loss (notebook 05)::

    bigram -> one head -> several heads -> + feed-forward -> + residual -> + LayerNorm -> + 2nd layer -> + dropout

Every rung is a small :class:`LadderModel` built from gptmini's own pieces (``CausalSelfAttention``,
``MLP``) and, like :class:`gptmini.GPT`, maps ``(idx, targets)`` to ``(logits, loss)`` and has a
``config``, so :func:`gptmini.train.train_step` and :class:`gptmini.train.Trainer` train it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import GPTConfig
from ..model import GPT, MLP, CausalSelfAttention

__all__ = ["LADDER_RUNGS", "Rung", "LadderModel", "build_rung"]


@dataclass(frozen=True)
class Rung:
    """What a rung has: attention heads (0: none), a feed-forward net, residual adds, LayerNorms, dropout, layers."""

    heads: int | None  # 0: no attention (bigram); 1: one head; None: config.n_head
    mlp: bool = False
    residual: bool = False
    layernorm: bool = False
    dropout: bool = False
    n_layer: int = 1


#: The rungs in order; each adds one idea to the one before. The last two pay off in longer runs (notebook 05
#: climbs them in ``full`` mode only): a short run on plenty of text does not overfit, so dropout only slows it.
LADDER_RUNGS: dict[str, Rung] = {
    "bigram": Rung(heads=0),
    "one head": Rung(heads=1),
    "several heads": Rung(heads=None),
    "+ feed-forward": Rung(heads=None, mlp=True),
    "+ residual": Rung(heads=None, mlp=True, residual=True),
    "+ LayerNorm": Rung(heads=None, mlp=True, residual=True, layernorm=True),
    "+ 2nd layer": Rung(heads=None, mlp=True, residual=True, layernorm=True, n_layer=2),
    "+ dropout": Rung(heads=None, mlp=True, residual=True, layernorm=True, n_layer=2, dropout=True),
}


class LadderLayer(nn.Module):
    """One layer of a rung: attention, then (optionally) the feed-forward net, each with or without x + f(x) and LN."""

    def __init__(self, config: GPTConfig, rung: Rung) -> None:
        super().__init__()
        self.residual, self.pre_norm = rung.residual, config.norm == "pre"
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config) if rung.mlp else None
        self.ln_1 = nn.LayerNorm(config.n_embd) if rung.layernorm else None
        self.ln_2 = nn.LayerNorm(config.n_embd) if rung.layernorm and rung.mlp else None

    def _sub(self, x: torch.Tensor, f: nn.Module, ln: nn.Module | None) -> torch.Tensor:
        if ln is not None and self.pre_norm:  # GPT-2: x + f(LN(x))
            return x + f(ln(x)) if self.residual else f(ln(x))
        y = x + f(x) if self.residual else f(x)
        return ln(y) if ln is not None else y  # GPT-1: LN(x + f(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._sub(x, self.attn, self.ln_1)
        if self.mlp is not None:
            x = self._sub(x, self.mlp, self.ln_2)
        return x


class LadderModel(nn.Module):
    """A rung of the ladder: ``model(idx, targets) -> (logits, loss)`` like :class:`gptmini.GPT`.

    The bigram rung is a table of next-token scores (one row per token); every other rung embeds tokens
    and positions, runs its layers and reads the scores out with the tied token table, as GPT-1 does.
    """

    def __init__(self, config: GPTConfig, rung: Rung) -> None:
        super().__init__()
        heads = config.n_head if rung.heads is None else rung.heads
        self.rung = rung
        self.config = config = config.replace(
            n_head=max(heads, 1), n_layer=rung.n_layer, dropout=config.dropout if rung.dropout else 0.0
        )
        if heads == 0:
            self.table = nn.Embedding(config.vocab_size, config.vocab_size)
            self.layers = nn.ModuleList()
        else:
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
            self.drop = nn.Dropout(config.dropout)
            self.layers = nn.ModuleList(LadderLayer(config, rung) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd) if rung.layernorm and config.norm == "pre" else None
        self.apply(GPT._init_weights)  # GPT-1's N(0, 0.02), as gptmini.GPT

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if not self.layers:  # bigram: the scores of the next token depend on this token only
            logits = self.table(idx)
        else:
            positions = torch.arange(idx.size(1), device=idx.device)
            x = self.drop(self.wte(idx) + self.wpe(positions))
            for layer in self.layers:
                x = layer(x)
            if self.ln_f is not None:
                x = self.ln_f(x)
            logits = x @ self.wte.weight.T  # tied output layer
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def build_rung(name: str, config: GPTConfig) -> LadderModel:
    """The rung ``name`` (a key of :data:`LADDER_RUNGS`) at the sizes of ``config`` (vocab, width, heads, context)."""
    if name not in LADDER_RUNGS:
        raise ValueError(f"Unknown rung {name!r}. The ladder: {', '.join(LADDER_RUNGS)}")
    return LadderModel(config, LADDER_RUNGS[name])
