"""The logit lens: read the residual stream after every block as if it were the last one.

The unembedding turns the final hidden state into next-token logits; applying it to earlier states shows
what each depth "would predict" (nostalgebraist 2020). In a pre-LN model (GPT-2) the final LayerNorm ``ln_f``
comes first, as in the real forward pass. A post-LN model (GPT-1) has no ``ln_f``: every block already ends
in a LayerNorm (``ln_2``), so its outputs go to the unembedding as they are, and the embedding h0, which no
LayerNorm has touched, is read the same way (its lens is rougher).
"""

from __future__ import annotations

import torch

from .capture import run_with_cache


def unembed(model, resid: torch.Tensor) -> torch.Tensor:
    """The logits ``model`` would output if ``resid`` (..., C) were its last hidden state: one lens step.

    A pre-LN model applies its final LayerNorm ``ln_f`` before the unembedding, so the lens does too; a
    post-LN model has none. Logits, not probabilities: the softmax comes after, where it is needed.
    """
    if "ln_f" in model.transformer:
        resid = model.transformer.ln_f(resid)
    return model.lm_head(resid)


@torch.no_grad()
def logit_lens(model, idx: torch.Tensor) -> torch.Tensor:
    """Logits (depths, B, T, vocab) read from [h0, block 0, …, last block]; the last depth is the model's own."""
    _, cache = run_with_cache(model, idx, patterns=False)
    return unembed(model, torch.stack(cache.stream()))  # (layers + 1, B, T, vocab)


def lens_top_tokens(model, idx: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k token ids and probabilities at every depth and position of one sequence: (depths, T, k) each.

    ``idx`` is one sequence, (T,) or (1, T); for a batch, call :func:`logit_lens` (or this once per row).
    """
    idx = torch.as_tensor(idx)
    if idx.dim() == 2 and idx.size(0) == 1:
        idx = idx[0]
    if idx.dim() != 1:
        raise ValueError(
            f"lens_top_tokens reads one sequence, (T,) or (1, T), got shape {tuple(idx.shape)}; "
            "call it once per row, or use logit_lens for a batch"
        )
    probs = logit_lens(model, idx.reshape(1, -1))[:, 0].float().softmax(-1)
    values, ids = probs.topk(k, dim=-1)
    return ids, values
