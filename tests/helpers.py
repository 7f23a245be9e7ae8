"""Small builders the training and checkpoint tests share: a learnable token stream, a tiny model, a quick config."""

from __future__ import annotations

import torch

from gptmini import GPT, GPTConfig
from gptmini.train import TrainConfig


def cyclic_data(n: int = 4000, period: int = 13, vocab: int = 64) -> torch.Tensor:
    """A text a model can learn in a few dozen steps: a repeating sequence of ``period`` distinct ids."""
    return (torch.arange(n) * 7 % period + 3) % vocab


def tiny_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("tiny", **overrides))


def quick_config(**overrides) -> TrainConfig:
    fields = dict(
        batch_size=4,
        block_size=16,
        max_iters=10,
        learning_rate=3e-3,
        min_lr=3e-4,
        warmup_iters=2,
        eval_interval=5,
        eval_iters=2,
        log_interval=1,
        progress=False,
        device="cpu",
    )
    return TrainConfig(**{**fields, **overrides})
