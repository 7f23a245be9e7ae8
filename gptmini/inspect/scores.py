"""What a head does, as one number per head: where its attention goes on texts built to tell heads apart.

Every score reads attention patterns (..., T, T) (rows: queries, columns: keys) and averages one kind of
attention weight over the query positions where that kind makes sense, so a score is a share of attention
between 0 and 1. The four kinds follow the interpretability literature (Elhage et al. 2021, Olsson et al.
2022): previous token, first token (an "attention sink"), an earlier copy of the same token, and induction
(on a random sequence repeated twice, the token *after* the earlier copy: "…A B … A → look at B").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .capture import run_with_cache

SCORES = ("previous-token", "first-token", "duplicate-token", "induction")


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean weight on key i-1 over queries i = 1..T-1 (query 0 has no previous token); shape (...)."""
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def first_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean weight on key 0 over queries i = 1..T-1 (query 0 can only look at itself, so it tells nothing)."""
    return pattern[..., 1:, 0].mean(-1)


def duplicate_token_score(pattern: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean weight on *earlier* copies of the query's own token, over queries that have one; shape (...).

    ``ids`` is (T,) or (B, T) matching the pattern's batch; returns NaN when no token repeats.
    """
    ids = ids if ids.dim() == 2 else ids.unsqueeze(0)
    same = ids[:, :, None] == ids[:, None, :]  # (B, T, T): key j holds the query's token
    earlier = torch.ones_like(same[0]).tril(diagonal=-1)
    mask = (same & earlier).to(pattern.dtype)
    if pattern.dim() == 4:
        mask = mask[:, None]  # (B, 1, T, T) for (B, heads, T, T)
    elif pattern.dim() == 2:
        mask = mask[0]
    has_copy = mask.sum(-1) > 0
    mass = (pattern * mask).sum(-1)
    return (mass * has_copy).sum(-1) / has_copy.sum(-1)


def induction_score(pattern: torch.Tensor, n: int, prefix: int = 0) -> torch.Tensor:
    """Mean weight from each query of the second copy to the key one *after* its earlier occurrence.

    The sequence is ``prefix`` tokens, then n random tokens, then the same n again (T = prefix + 2n). Query
    i = prefix + n + k (the second copy's k-th token) saw the same token at i - n; what followed it sits at
    i - n + 1, which is what the model should predict next. Shape (...).
    """
    t = pattern.shape[-1]
    if t != prefix + 2 * n:
        raise ValueError(f"a pattern over {t} tokens is not prefix + 2n = {prefix} + 2*{n}")
    return pattern.diagonal(offset=-(n - 1), dim1=-2, dim2=-1)[..., prefix + 1 :].mean(-1)


def repeated_tokens(
    vocab_size: int,
    n: int,
    batch: int = 1,
    seed: int = 0,
    prefix: list[int] | None = None,
    tokens: Sequence[int] | None = None,
) -> torch.Tensor:
    """(batch, len(prefix) + 2n) ids: ``prefix``, n random tokens, the same n again (seeded, repeatable).

    The tokens are uniformly random (from ``tokens`` if given, e.g. the letters of a character model, whose
    rare symbols would make every loss huge; else from the whole vocabulary), so the first copy cannot be
    predicted from anything the model learned; the second copy can, by anyone who looks back at the first:
    that is in-context learning in miniature.
    """
    gen = torch.Generator().manual_seed(seed)
    if tokens is None:
        first = torch.randint(0, vocab_size, (batch, n), generator=gen)
    else:
        choices = torch.as_tensor(list(tokens), dtype=torch.long)
        first = choices[torch.randint(0, len(choices), (batch, n), generator=gen)]
    parts = [torch.tensor([prefix] * batch, dtype=torch.long)] if prefix else []
    return torch.cat([*parts, first, first], dim=1)


def token_losses(model, idx: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy (B, T-1) in nats: position t's logits against token t+1 (eval mode)."""
    logits, _ = run_with_cache(model, idx, patterns=False)
    return F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), idx[:, 1:], reduction="none")


def repeated_losses(model, idx: torch.Tensor, n: int, prefix: int = 0) -> tuple[float, float]:
    """Mean loss on the first copy and on the second copy of a repeated sequence (nats per token).

    First copy: predicting its tokens 2..n from inside it; second copy: predicting its tokens 2..n, each of
    which the model has seen follow the same token before. The first token of each copy is left out: it
    follows the prefix or the end of the first copy, which nothing announces.
    """
    losses = token_losses(model, idx)  # loss[:, t] predicts token t+1
    first = losses[:, prefix : prefix + n - 1]
    second = losses[:, prefix + n : prefix + 2 * n - 1]
    return float(first.mean()), float(second.mean())


def default_n(model, prefix: int = 0, n: int | None = None) -> int:
    """The repeat length: as asked, else half the context (at most 50, as in most write-ups)."""
    fits = (model.config.block_size - prefix) // 2
    if n is None:
        return min(50, fits)
    if not 1 < n <= fits:
        raise ValueError(f"n={n}: two copies of n tokens (+ {prefix} prefix) must fit the context and n > 1")
    return n


def head_scores(
    model,
    ids: torch.Tensor | list[int] | None = None,
    n: int | None = None,
    batch: int = 8,
    seed: int = 0,
    tokens: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Every score for every head, {name: (layers, heads)} in float32 on the CPU.

    Previous-, first- and duplicate-token scores are measured on ``ids`` (a text; without one, on the
    repeated random sequence too); the induction score always on ``batch`` repeated random sequences of
    ``n`` tokens each (drawn from ``tokens`` if given).
    """
    n = default_n(model, n=n)
    rep = repeated_tokens(model.config.vocab_size, n, batch, seed, tokens=tokens).to(model.device)
    _, rep_cache = run_with_cache(model, rep)
    rep_patterns = torch.stack(rep_cache.patterns, 1)  # (B, layers, heads, T, T)
    if ids is None:
        text, patterns = rep, rep_patterns
    else:
        text = torch.as_tensor(ids, dtype=torch.long, device=model.device).reshape(1, -1)
        _, cache = run_with_cache(model, text)
        patterns = torch.stack(cache.patterns, 1)
    out = {
        "previous-token": previous_token_score(patterns).mean(0),
        "first-token": first_token_score(patterns).mean(0),
        "duplicate-token": torch.stack(
            [duplicate_token_score(patterns[:, layer], text) for layer in range(patterns.shape[1])], 1
        ).nanmean(0),
        "induction": induction_score(rep_patterns, n).mean(0),
    }
    return {name: score.float().cpu() for name, score in out.items()}
