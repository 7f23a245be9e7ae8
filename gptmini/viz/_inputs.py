"""Text in, token ids and attention maps out: the checks every attention widget shares."""

from __future__ import annotations

import numpy as np
import torch

from ..inspect.capture import attention_maps
from ._render import as_numpy


def encode_text(model, tokenizer, text: str, max_tokens: int | None = None) -> tuple[list[int], int]:
    """The first ``max_tokens`` ids of ``text`` (never more than the model's context) and the full count.

    Attention maps grow as T², so widgets keep inputs short; the caller says when text was cut.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("Give some text to look at (a non-empty string).")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens}")
    ids = list(tokenizer.encode(text))
    if not ids:
        raise ValueError(f"The tokenizer turned {text!r} into no tokens; give a longer text.")
    limit = model.config.block_size if max_tokens is None else min(max_tokens, model.config.block_size)
    too_big = [i for i in ids[:limit] if not 0 <= i < model.config.vocab_size]
    if too_big:
        raise ValueError(
            f"Token id {too_big[0]} is outside the model's vocabulary ({model.config.vocab_size}); "
            "use the tokenizer the model was trained with."
        )
    return ids[:limit], len(ids)


def attention_arrays(model, ids: list[int]) -> list[np.ndarray]:
    """One (heads, T, T) float array per layer for a single sequence (computed once, reused by the sliders)."""
    maps = attention_maps(model, torch.tensor([ids], dtype=torch.long, device=model.device))
    return [as_numpy(m[0]) for m in maps]
