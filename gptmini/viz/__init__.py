"""Widgets and plots for the notebooks: one function per widget, all working offline.

Widgets are ipywidgets containers (7.7, Colab's, or 8) whose pictures are matplotlib PNGs, so they render the same
in JupyterLab, Colab and a headless browser; their controls are attributes, so tests can drive them.
"""

from .attention import AttentionExplorer, attention_explorer
from .bertviz import bertviz_inputs, cdn_reachable, show_bertviz
from .bpe import BPEExplorer, bpe_explorer
from .plots import (
    model_size_table,
    pca_2d,
    plot_attention_mask,
    plot_attention_weights,
    plot_embeddings_pca,
)
from .sampling import Distribution, SamplingExplorer, filter_stages, sampling_explorer
from .training import LivePlot, plot_losses

__all__ = [
    "AttentionExplorer",
    "BPEExplorer",
    "Distribution",
    "LivePlot",
    "SamplingExplorer",
    "attention_explorer",
    "bertviz_inputs",
    "bpe_explorer",
    "cdn_reachable",
    "filter_stages",
    "model_size_table",
    "pca_2d",
    "plot_attention_mask",
    "plot_attention_weights",
    "plot_embeddings_pca",
    "plot_losses",
    "sampling_explorer",
    "show_bertviz",
]

# Notebook 11, inside the model: what heads do (gallery), whether they matter (ablation), what layers predict.
from .ablation import AblationExplorer, ablation_explorer  # noqa: E402
from .heads import HeadGallery, head_gallery  # noqa: E402
from .lens import LogitLensTable, logit_lens_table  # noqa: E402

__all__ += [
    "AblationExplorer",
    "HeadGallery",
    "LogitLensTable",
    "ablation_explorer",
    "head_gallery",
    "logit_lens_table",
]

# Notebook 11, part 2: which heads carry a behaviour (patching), how much each writes toward a token (attribution).
from .attribution import AttributionView, logit_attribution_view  # noqa: E402
from .patching import PatchingExplorer, patching_explorer  # noqa: E402

__all__ += ["AttributionView", "PatchingExplorer", "logit_attribution_view", "patching_explorer"]
