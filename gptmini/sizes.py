"""How big a GPT is and what training it costs, by formula: parameters from the config, FLOPs ≈ 6·N·D."""

from __future__ import annotations

from .config import GPTConfig


def count_params(config: GPTConfig) -> int:
    """Parameters of ``GPT(config)`` by formula (the output layer shares the token table, so it adds none)."""
    c, v, t, f = config.n_embd, config.vocab_size, config.block_size, config.mlp_size
    b = 1 if config.bias else 0
    norm = c * (1 + b)  # LayerNorm: a scale, and a shift when bias=True
    attention = c * 3 * c + b * 3 * c + c * c + b * c
    mlp = c * f + b * f + f * c + b * c
    block = attention + norm if config.attn_only else attention + mlp + 2 * norm
    final_norm = norm if config.norm == "pre" else 0
    return v * c + t * c + config.n_layer * block + final_norm


def flops(n_params: float, n_tokens: float) -> float:
    """Training compute ≈ 6 · N · D: per token, 2N for the forward pass and 4N for the backward pass."""
    if n_params <= 0 or n_tokens <= 0:
        raise ValueError(f"n_params and n_tokens must be positive, got {n_params} and {n_tokens}")
    return 6.0 * float(n_params) * float(n_tokens)


def non_embedding_params(config: GPTConfig) -> int:
    """Parameters outside the token and position tables: the N of Kaplan et al. (2020)'s scaling laws.

    The tables grow with the vocabulary and the context, not with what the model can compute, and at
    classroom sizes they are a large share of the whole, which bends a power law fitted to all parameters.
    """
    return count_params(config) - (config.vocab_size + config.block_size) * config.n_embd
