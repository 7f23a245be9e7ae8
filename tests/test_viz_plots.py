"""Static plots, the size/FLOPs calculator and the live training plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.sizes import count_params, flops
from gptmini.tokenizers import CharTokenizer
from gptmini.viz import (
    LivePlot,
    model_size_table,
    pca_2d,
    plot_attention_mask,
    plot_attention_weights,
    plot_embeddings_pca,
    plot_losses,
)

PNG = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------- PCA
def test_pca_2d_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    coords, ratio = pca_2d(x)
    centred = x - x.mean(0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    top = vectors[:, ::-1][:, :2]
    for d in range(2):  # same projection up to the sign of each axis
        ref = centred @ top[:, d]
        assert np.allclose(coords[:, d], ref, atol=1e-8) or np.allclose(coords[:, d], -ref, atol=1e-8)
    np.testing.assert_allclose(ratio, values[::-1][:2] / values.sum(), rtol=1e-8)
    with pytest.raises(ValueError, match="2-D matrix"):
        pca_2d(np.zeros(5))


def test_plot_embeddings_pca_plots_the_projected_rows():
    tok = CharTokenizer.from_text("abcdefghij ,.ABC0123")
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    fig = plot_embeddings_pca(model, tok)
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    expected, _ = pca_2d(model.transformer.wte.weight)
    assert sorted(map(tuple, points.round(5))) == sorted(map(tuple, expected.round(5)))
    shown = {t.get_text() for t in ax.texts}
    assert {"a", "A", "0", "␣", ","} <= shown
    fig = plot_embeddings_pca(model.transformer.wte.weight, tok.token_strings(range(tok.vocab_size)), ids=[0, 3, 5])
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 3
    with pytest.raises(ValueError, match="labels"):
        plot_embeddings_pca(model, ["a", "b"])


# ------------------------------------------------------------------------------------- attention plots
def test_plot_attention_mask_shows_the_causal_mask():
    fig = plot_attention_mask(5, list("abcde"))
    image = fig.axes[0].images[0].get_array()
    assert np.array_equal(~image.mask, np.tril(np.ones((5, 5), dtype=bool)))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcde")
    with pytest.raises(ValueError, match="positive"):
        plot_attention_mask(0)
    with pytest.raises(ValueError, match="labels"):
        plot_attention_mask(3, ["a"])


def test_plot_attention_weights_shows_the_given_numbers(tiny_model):
    maps = tiny_model.attention_maps(torch.tensor([[1, 2, 3, 4, 5, 6]]))
    one = maps[0][0, 1]
    fig = plot_attention_weights(one, list("abcdef"), title="head 1")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array().filled(0), one.numpy(), atol=1e-6)
    assert f"{one[3, 2].item():.2f}" in [t.get_text() for t in fig.axes[0].texts]
    grid = plot_attention_weights(maps[1][0])  # (heads, T, T): one panel per head
    assert len([a for a in grid.axes if a.images]) == tiny_model.config.n_head
    with pytest.raises(ValueError, match="shape"):
        plot_attention_weights(torch.zeros(3, 4))


# ------------------------------------------------------------------------------------ sizes and FLOPs
@pytest.mark.parametrize(
    "config",
    [
        GPTConfig.preset("tiny"),
        GPTConfig.preset("tiny", norm="post"),
        GPTConfig.preset("tiny", bias=False),
        GPTConfig(vocab_size=97, block_size=16, n_layer=3, n_head=2, n_embd=24, n_inner=40),
    ],
)
def test_count_params_matches_the_model(config):
    assert count_params(config) == GPT(config).num_params(non_embedding=False)


def test_size_table_and_flops():
    table = model_size_table(["gpt2", "gpt2-xl", GPTConfig.preset("tiny")], n_tokens=1e9)
    rows = {r["name"]: r for r in table.rows}
    assert rows["gpt2"]["params"] == 124_439_808  # the released GPT-2 small, counted once with tied weights
    assert rows["gpt2-xl"]["params"] == 1_557_611_200
    assert rows["tiny"]["params"] == GPT(GPTConfig.preset("tiny")).num_params(non_embedding=False)
    assert rows["gpt2"]["train FLOPs"] == pytest.approx(6 * 124_439_808 * 1e9)
    assert "124.4M" in str(table) and "<table>" in table._repr_html_()
    assert flops(175e9, 300e9) == pytest.approx(3.15e23, rel=1e-3)  # GPT-3: ≈ 3.14e23 in the paper
    with pytest.raises(ValueError):
        flops(0, 10)
    with pytest.raises(ValueError, match="preset"):
        model_size_table(["gpt5"])


# ----------------------------------------------------------------------------------------- live plot
def record(kind, step, train_loss, val_loss=None):
    return dict(kind=kind, step=step, train_loss=train_loss, val_loss=val_loss, lr=1e-3, tokens_per_sec=1000.0)


def test_live_plot_collects_and_redraws():
    live = LivePlot(every=3600)  # only the first record and evaluations may redraw
    assert live.show is False  # not in a notebook kernel
    live(record("train", 0, 4.0))
    assert live.draws == 1 and bytes(live.image.value).startswith(PNG)
    live(record("train", 10, 3.5))
    assert live.draws == 1  # throttled
    live(record("eval", 10, 3.4, 3.6))
    assert live.draws == 2 and "val loss 3.6000" in live.status.value
    ax = live.figure().axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["train (batches)"].get_ydata()) == [4.0, 3.5]
    assert list(lines["validation"].get_xdata()) == [10]
    with pytest.raises(ValueError, match="kind"):
        live(record("test", 1, 1.0))
    with pytest.raises(ValueError, match="dict"):
        live([1, 2])


def test_live_plot_as_a_trainer_callback():
    from gptmini.train import train

    text = "to be or not to be " * 40
    tok = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size, block_size=16))
    ids = torch.tensor(tok.encode(text))
    live = LivePlot(every=0)
    history = train(
        model,
        ids[:600],
        ids[600:],
        callbacks=[live],
        max_iters=6,
        batch_size=4,
        eval_interval=3,
        eval_iters=1,
        log_interval=2,
        warmup_iters=0,
        progress=False,
        device="cpu",
    )
    assert live.records == history.records and {r["kind"] for r in live.records} == {"train", "eval"}
    assert live.draws == len(history.records)
    fig = plot_losses(history)
    val = [line for line in fig.axes[0].get_lines() if line.get_label() == "validation"][0]
    assert list(val.get_ydata()) == [r["val_loss"] for r in history.records if r["kind"] == "eval"]
    assert all(math.isfinite(r["train_loss"]) for r in live.records)
