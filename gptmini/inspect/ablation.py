"""Switch heads off and see what the model loses: does a head *matter* for this text, or only look busy?

Ablation replaces a head's output ``z`` (before ``c_proj`` mixes the heads) through a replacing forward hook on
``attn.hook_z``: *zero* ablation sets it to 0, so the head adds nothing (not even what it adds on any text);
*mean* ablation sets it to its average over positions of a reference batch, which removes what depends on
this input while keeping the head's constant offset, often the fairer test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .capture import run_with_cache

Head = tuple[int, int]  # (layer, head)
MODES = ("zero", "mean")


def zero_head(z: torch.Tensor, head: int | Iterable[int]) -> torch.Tensor:
    """A copy of ``z`` (B, heads, T, head size) with the output of ``head`` (one index or several) set to 0.

    It is what a zero-ablating forward hook on ``attn.hook_z`` returns; a copy, because the tensor the hook
    receives may still be needed (a cache, autograd), so it must not be changed in place.
    """
    chosen = [head] if isinstance(head, int) else list(head)
    z = z.clone()
    z[:, chosen] = 0.0
    return z


def head_means(model, idx: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's average head output over the batch and positions of ``idx``: (heads, head size) per layer."""
    _, cache = run_with_cache(model, idx, patterns=False)
    return [z.mean(dim=(0, 2)) for z in cache.z]


def _check_heads(model, heads: Iterable[Head]) -> list[Head]:
    cfg = model.config
    out = []
    for layer, head in heads:
        if not (0 <= layer < cfg.n_layer and 0 <= head < cfg.n_head):
            raise ValueError(f"head ({layer}, {head}) does not exist: {cfg.n_layer} layers x {cfg.n_head} heads")
        out.append((int(layer), int(head)))
    return out


@contextmanager
def ablate(model, heads: Iterable[Head], mode: str = "zero", means: list[torch.Tensor] | None = None) -> Iterator[None]:
    """Inside the ``with`` block, the given ``(layer, head)`` pairs are ablated in every forward pass."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "mean" and means is None:
        raise ValueError("mean ablation needs the heads' means: means=head_means(model, reference_ids)")
    by_layer: dict[int, list[int]] = {}
    for layer, head in _check_heads(model, heads):
        by_layer.setdefault(layer, []).append(head)

    def replace(layer: int, chosen: list[int]):
        def hook(_module, _inputs, z: torch.Tensor) -> torch.Tensor:
            if mode == "zero":
                return zero_head(z, chosen)
            z = z.clone()  # never write into a tensor autograd may still need
            z[:, chosen] = means[layer][chosen].to(z.dtype)[None, :, None, :]
            return z

        return hook

    blocks = model.transformer.h
    handles = [blocks[layer].attn.hook_z.register_forward_hook(replace(layer, hs)) for layer, hs in by_layer.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class AblationResult:
    """Loss and next-token prediction of one text, with all heads and with some heads ablated."""

    heads: list[Head]
    mode: str
    loss_before: float  # mean next-token loss over the text, nats per token
    loss_after: float
    probs_before: torch.Tensor  # (vocab,) next-token probabilities after the last position
    probs_after: torch.Tensor

    @property
    def loss_change(self) -> float:
        return self.loss_after - self.loss_before

    def top(self, k: int = 5, after: bool = True) -> list[tuple[int, float]]:
        """The k most likely next tokens as (id, probability)."""
        probs = self.probs_after if after else self.probs_before
        values, ids = probs.topk(min(k, probs.numel()))
        return list(zip(ids.tolist(), values.tolist(), strict=True))


def _loss_and_probs(model, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
    logits, _ = run_with_cache(model, idx, patterns=False)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), idx[:, 1:].flatten()) if idx.size(1) > 1 else None
    probs = logits[0, -1].float().softmax(-1).cpu()
    return (float("nan") if loss is None else float(loss)), probs


def ablation_effect(
    model, idx: torch.Tensor, heads: Iterable[Head], mode: str = "zero", means: list[torch.Tensor] | None = None
) -> AblationResult:
    """The loss on ``idx`` (B, T) and the next-token distribution after it, before and after ablating ``heads``.

    Mean ablation uses ``means`` if given, else the heads' means over ``idx`` itself.
    """
    heads = _check_heads(model, heads)
    if mode == "mean" and means is None:
        means = head_means(model, idx)
    loss_before, probs_before = _loss_and_probs(model, idx)
    with ablate(model, heads, mode, means):
        loss_after, probs_after = _loss_and_probs(model, idx)
    return AblationResult(heads, mode, loss_before, loss_after, probs_before, probs_after)
