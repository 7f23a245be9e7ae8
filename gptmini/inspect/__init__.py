"""Look inside a GPT: record its internals, score what each attention head does, ablate heads, logit lens.

Nothing here changes the model: everything attaches forward hooks to the hook points of
:class:`gptmini.model.CausalSelfAttention` (``hook_pattern``, ``hook_z``) and to the blocks, and removes them
afterwards. Notebook 11 uses it; so do the head gallery, ablation explorer and logit-lens widgets.
"""

from .ablation import AblationResult, ablate, ablation_effect, head_means, zero_head
from .attn_only import ZeroMLP, attention_only
from .capture import Cache, attention_maps, capture, run_with_cache
from .lens import lens_top_tokens, logit_lens, unembed
from .scores import (
    SCORES,
    duplicate_token_score,
    first_token_score,
    head_scores,
    induction_score,
    previous_token_score,
    repeated_losses,
    repeated_tokens,
    token_losses,
)

__all__ = [
    "SCORES",
    "AblationResult",
    "Cache",
    "ZeroMLP",
    "ablate",
    "ablation_effect",
    "attention_maps",
    "attention_only",
    "capture",
    "duplicate_token_score",
    "first_token_score",
    "head_means",
    "head_scores",
    "induction_score",
    "lens_top_tokens",
    "logit_lens",
    "previous_token_score",
    "repeated_losses",
    "repeated_tokens",
    "run_with_cache",
    "token_losses",
    "unembed",
    "zero_head",
]
