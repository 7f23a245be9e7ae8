"""Hugging Face ``config.json`` (GPT-2 or OpenAI GPT) -> :class:`GPTConfig`, exactly or not at all.

A flag that changes the maths is either reproduced exactly or refused with an error that names it; nothing
is dropped silently. What each flag does here (checked in float64 against transformers' own models):

- ``afn`` (GPT-1): ``"gelu"`` is the tanh approximation, as in OpenAI's code and ``modeling_openai``;
  ``relu`` / ``silu`` / ``swish`` are refused.
- ``activation_function`` (GPT-2): ``gelu_new``, ``gelu_pytorch_tanh``, ``gelu_python_tanh`` are the tanh
  approximation; ``gelu``, ``gelu_python`` the exact (erf) GELU; anything else (``gelu_fast``, ``relu``, ...)
  is refused.
- ``n_inner``: the MLP width (``GPTConfig.n_inner``); GPT-1's MLP is always 4 x ``n_embd`` in transformers.
- ``scale_attn_weights=False`` and ``scale_attn_by_inverse_layer_idx=True``: the score scale differs from
  1/sqrt(head size); it is folded into the query projection when the weights are read (see
  :func:`query_scales`), which is the same function of the inputs (exact up to rounding).
- ``reorder_and_upcast_attn``: only changes *how* transformers computes q.k in half precision (in float32,
  the same maths); accepted, and gptmini computes in the model's dtype.
- ``tie_word_embeddings=False``: accepted only when the file's ``lm_head.weight`` equals ``wte`` (gptmini
  always ties); a different head is refused by the weight loader.
- ``add_cross_attention=True``: refused (an encoder-decoder layout, not a language model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import GPTConfig
from .errors import CheckpointError
from .fields import Fields

GPT2_ACTIVATIONS = {
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
    "gelu_python_tanh": "tanh",
    "gelu": "exact",
    "gelu_python": "exact",
}
GPT1_ACTIVATIONS = {"gelu": "tanh"}  # modeling_openai's ACT_FNS: "gelu" -> gelu_new (the tanh formula)


@dataclass(frozen=True)
class LoadSpec:
    """A translated config plus what the weight loader must do to match transformers exactly."""

    config: GPTConfig
    conv1d: bool = True  # Hugging Face's Conv1D layout (in, out): four matrices to transpose
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    tie_word_embeddings: bool = True


def config_from_hf(hf: dict[str, Any], source: str = "config.json") -> LoadSpec:
    """Translate a Hugging Face ``config.json`` (model_type ``gpt2`` or ``openai-gpt``); refuse what differs."""
    fields = Fields(hf, source, CheckpointError)
    model_type = hf.get("model_type")
    if model_type not in ("gpt2", "openai-gpt"):
        raise CheckpointError(
            f"{source}: model_type {model_type!r} is not loadable; gptmini loads 'gpt2' and 'openai-gpt' "
            "checkpoints or its own (written by save_pretrained)."
        )
    is_gpt1 = model_type == "openai-gpt"
    if is_gpt1:
        act_field, table, default = "afn", GPT1_ACTIVATIONS, "gelu"
    else:
        act_field, table, default = "activation_function", GPT2_ACTIVATIONS, "gelu_new"
    act = fields.str(act_field, default)
    if act not in table:
        raise CheckpointError(
            f"{source}: field {act_field!r} is {act!r}, which gptmini's MLP cannot compute exactly; "
            f"supported for {model_type}: {sorted(table)}"
        )
    if fields.bool("add_cross_attention", False):
        raise CheckpointError(f"{source}: field 'add_cross_attention' is true; gptmini has no cross-attention")
    if "n_positions" in hf or "n_ctx" not in hf:
        block_size = fields.int("n_positions")
    else:
        block_size = fields.int("n_ctx")
    n_inner = None if is_gpt1 else fields.int("n_inner", None, allow_none=True)
    config = GPTConfig(
        vocab_size=fields.int("vocab_size"),
        block_size=block_size,
        n_layer=fields.int("n_layer"),
        n_head=fields.int("n_head"),
        n_embd=fields.int("n_embd"),
        n_inner=n_inner,
        dropout=fields.float("resid_pdrop", 0.1, 0.0, 1.0),
        norm="post" if is_gpt1 else "pre",
        layer_norm_eps=fields.float("layer_norm_epsilon", 1e-5),
        gelu=table[act],
        name=fields.str("_name_or_path", None, allow_none=True) or model_type,
    )
    fields.bool("reorder_and_upcast_attn", False)  # type-checked only: same maths outside half precision
    return LoadSpec(
        config,
        scale_attn_weights=True if is_gpt1 else fields.bool("scale_attn_weights", True),
        scale_attn_by_inverse_layer_idx=False if is_gpt1 else fields.bool("scale_attn_by_inverse_layer_idx", False),
        tie_word_embeddings=fields.bool("tie_word_embeddings", True),
    )


def query_scales(hf: LoadSpec) -> list[float]:
    """Per layer, the factor for the query projection that turns gptmini's 1/sqrt(d) scale into the file's.

    transformers multiplies q.k by ``scaling`` = (1/sqrt(d) if scale_attn_weights else 1) / (layer + 1 if
    scale_attn_by_inverse_layer_idx else 1). gptmini always uses 1/sqrt(d), and (c q).k / sqrt(d) =
    c (q.k / sqrt(d)), so scaling the query rows (weights and bias) by c = scaling * sqrt(d) is the same model.
    """
    root = math.sqrt(hf.config.head_size)
    unscaled = 1.0 if hf.scale_attn_weights else root  # exactly 1.0 for the usual flags: weights untouched
    return [unscaled / (layer + 1 if hf.scale_attn_by_inverse_layer_idx else 1) for layer in range(hf.config.n_layer)]
