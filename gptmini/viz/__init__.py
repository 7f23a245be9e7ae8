"""Widgets and plots for the notebooks: one function per widget, all working offline.

Widgets are ipywidgets containers (7.7, Colab's, or 8) whose pictures are matplotlib PNGs, so they render the same
in JupyterLab, Colab and a headless browser; their controls are attributes, so tests can drive them.
"""

from .attention import AttentionExplorer, attention_explorer
from .bertviz import bertviz_inputs, cdn_reachable, show_bertviz
from .bpe import BPEExplorer, bpe_explorer
from .plots import (
    count_params,
    flops,
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
    "count_params",
    "filter_stages",
    "flops",
    "model_size_table",
    "pca_2d",
    "plot_attention_mask",
    "plot_attention_weights",
    "plot_embeddings_pca",
    "plot_losses",
    "sampling_explorer",
    "show_bertviz",
]
