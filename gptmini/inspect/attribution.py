"""Direct logit attribution: how much each head and each MLP writes, by itself, toward the right next token.

In a pre-LN model (GPT-2) the last hidden state is ``ln_f`` of the residual stream, and the stream is a sum:
the embedding, every head's contribution, every ``c_proj`` bias, every MLP's output. ``ln_f`` is not linear,
because it divides by the standard deviation of the whole stream; **we freeze that scale** at the value the
real forward pass used at that position. With the scale frozen, ``ln_f`` is an affine map, so the logit
difference ``logit[right] - logit[wrong]`` splits exactly into one term per part (centre the part, divide by
the frozen scale, multiply by ``ln_f.weight``, dot with ``W_U[right] - W_U[wrong]``) plus the term of
``ln_f.bias``. "Direct" means only the path straight to the logits: what a head does *through* later layers
is not counted here (activation patching measures that).

A post-LN model (GPT-1) is refused: each block ends in a LayerNorm that rescales the whole stream, so the
final hidden state is not a sum of the heads' outputs and there is no direct path to attribute. Use ablation
or activation patching there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .capture import run_with_cache


def require_pre_ln(model, what: str = "direct logit attribution") -> None:
    """Raise a clear error for a post-LN (GPT-1) model, whose stream is not a sum of its parts' outputs."""
    if "ln_f" not in model.transformer:
        raise ValueError(
            f"{what} needs a pre-LN model (GPT-2 style, with a final LayerNorm ln_f): in a post-LN model "
            "(GPT-1) every block ends in a LayerNorm, so the last hidden state is not a sum of the heads' "
            "outputs; use ablation or activation patching instead"
        )


def logit_direction(model, right: int | torch.Tensor, wrong: int | torch.Tensor) -> torch.Tensor:
    """``W_U[right] - W_U[wrong]`` (..., C): the direction in the last hidden state that raises right over wrong."""
    w_u = model.lm_head.weight  # (vocab, C): one row per token
    return w_u[torch.as_tensor(right, device=w_u.device)] - w_u[torch.as_tensor(wrong, device=w_u.device)]


def frozen_scale(model, final_resid: torch.Tensor) -> torch.Tensor:
    """The standard deviation ``ln_f`` divides by, (..., 1): computed once from the whole final stream."""
    eps = model.transformer.ln_f.eps
    return (final_resid.var(-1, unbiased=False, keepdim=True) + eps).sqrt()


def project_to_logit_diff(
    model, parts: torch.Tensor, final_resid: torch.Tensor, right: int | torch.Tensor, wrong: int | torch.Tensor
) -> torch.Tensor:
    """Each part's direct contribution to ``logit[right] - logit[wrong]``: parts (..., C) -> (...).

    ``final_resid`` (..., C) is the residual stream after the last block at the same position (broadcast
    against ``parts``); its scale is frozen (see the module's docstring). ``ln_f.bias`` is not included: it
    belongs to no part.
    """
    require_pre_ln(model)
    weight = model.transformer.ln_f.weight
    centred = parts - parts.mean(-1, keepdim=True)  # LayerNorm subtracts the mean: linear, so per part
    direction = logit_direction(model, right, wrong)
    return (centred / frozen_scale(model, final_resid) * weight * direction).sum(-1)


@dataclass
class Attribution:
    """Direct contributions to the logit difference at one position of each sequence (B sequences).

    ``heads`` (B, layers, heads), ``mlps`` (B, layers; zeros in an attention-only model), ``embed`` (B,),
    ``rest`` (B,): the ``c_proj`` biases and ``ln_f.bias``, which belong to no head. ``logit_diff`` (B,) is
    the model's own; :meth:`total` adds the parts up to it.
    """

    heads: torch.Tensor
    mlps: torch.Tensor
    embed: torch.Tensor
    rest: torch.Tensor
    logit_diff: torch.Tensor

    def total(self) -> torch.Tensor:
        return self.heads.sum((1, 2)) + self.mlps.sum(1) + self.embed + self.rest


@torch.no_grad()
def logit_attribution(
    model, idx: torch.Tensor, right: int | torch.Tensor, wrong: int | torch.Tensor, pos: int = -1
) -> Attribution:
    """Split ``logit[right] - logit[wrong]`` at position ``pos`` of each row of ``idx`` (B, T) into parts.

    ``right`` and ``wrong`` are token ids: one each, or one per row (B,).
    """
    require_pre_ln(model)
    b = idx.shape[0]
    right = torch.as_tensor(right, device=model.device).expand(b)
    wrong = torch.as_tensor(wrong, device=model.device).expand(b)
    logits, cache = run_with_cache(model, idx, patterns=False)
    rows = torch.arange(b, device=logits.device)
    logit_diff = logits[rows, pos, right] - logits[rows, pos, wrong]
    final = cache.resid[-1][:, pos]  # (B, C)

    def project(parts: torch.Tensor) -> torch.Tensor:  # parts (B, ..., C) at the position
        extra = parts.dim() - 2
        view = (b,) + (1,) * extra + (-1,)
        return project_to_logit_diff(model, parts, final.view(view), right.view(view[:-1]), wrong.view(view[:-1]))

    n_layer = len(cache.resid)
    heads = torch.stack([project(cache.head_outputs(layer)[:, :, pos]) for layer in range(n_layer)], 1)
    mlps = torch.zeros(b, n_layer, dtype=heads.dtype, device=heads.device)
    before = cache.embed
    for layer, block in enumerate(model.transformer.h):  # an MLP's output: what its block added beyond attention
        if not block.attn_only:
            mlps[:, layer] = project(cache.resid[layer][:, pos] - before[:, pos] - cache.attn_out[layer][:, pos])
        before = cache.resid[layer]
    biases = sum(cache.attn_bias(layer) for layer in range(n_layer))
    ln_bias = model.transformer.ln_f.bias
    bias_term = 0.0 if ln_bias is None else (ln_bias * logit_direction(model, right, wrong)).sum(-1)
    rest = project(biases.expand(b, -1)) + bias_term
    embed = project(cache.embed[:, pos])
    return Attribution(heads, mlps, embed, rest, logit_diff)
