"""Look inside a GPT: record its internals, score what each attention head does, ablate heads, logit lens;
attribute the logits to heads, patch activations, read circuits from the weights.

Nothing here changes the model: everything attaches forward hooks to the hook points of
:class:`gptmini.model.CausalSelfAttention` (``hook_pattern``, ``hook_z``) and to the blocks, and removes them
afterwards. Notebook 11 uses it; so do the head gallery, ablation explorer and logit-lens widgets.
"""

from .ablation import AblationResult, ablate, ablation_effect, head_means, zero_head
from .attn_only import attention_only
from .attribution import Attribution, logit_attribution, logit_direction, project_to_logit_diff
from .capture import Cache, attention_maps, capture, run_with_cache
from .circuits import (
    composition_score,
    copying_score,
    full_ov_circuit,
    full_qk_circuit,
    k_composition,
    ov_matrix,
    ov_on_stream,
    q_composition,
    qk_matrix,
    top1_diagonal,
)
from .induction import InductionReport, induction_circuit
from .lens import lens_top_tokens, logit_lens, unembed
from .patching import (
    Patching,
    logit_diff_metric,
    negative_loss_metric,
    patch_everything,
    patch_heads,
    patch_residual,
)
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
    "Attribution",
    "InductionReport",
    "induction_circuit",
    "Patching",
    "composition_score",
    "copying_score",
    "full_ov_circuit",
    "full_qk_circuit",
    "k_composition",
    "logit_attribution",
    "logit_diff_metric",
    "logit_direction",
    "negative_loss_metric",
    "ov_matrix",
    "ov_on_stream",
    "patch_everything",
    "patch_heads",
    "patch_residual",
    "project_to_logit_diff",
    "q_composition",
    "qk_matrix",
    "top1_diagonal",
    "AblationResult",
    "Cache",
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
