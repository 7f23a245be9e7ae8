"""Static plots, the size/FLOPs calculator and the live training plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import attention_maps
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
    maps = attention_maps(tiny_model, torch.tensor([[1, 2, 3, 4, 5, 6]]))
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


# ------------------------------------------------------------------------------- readable figures (#18)
def tick_texts(ax, axis="x"):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def square_axes(side_inches: float):
    from gptmini.viz._render import axes_at, new_figure

    fig = new_figure(side_inches + 2, side_inches + 2, layout=None)
    return axes_at(fig, 1.0, 1.0, side_inches, side_inches)


@pytest.mark.parametrize(
    "n, expected",
    [
        (6, list(range(6))),  # few tokens: every one
        (20, list(range(20))),  # notebook 04's line: every one (it used to lose all of them)
        (64, list(range(0, 64, 2))),  # 4 inches hold 32 labels of 7 points: every second one
        (200, list(range(0, 200, 7))),  # every 7th: 29 labels, the first always among them
    ],
)
def test_token_ticks_thin_but_never_drop_the_labels(n, expected):
    from gptmini.viz.plots import token_ticks

    labels = [f"t{i}" for i in range(n)]
    ax = square_axes(4.0)
    assert token_ticks(ax, labels) == expected
    assert tick_texts(ax, "x") == tick_texts(ax, "y") == [f"t{i}" for i in expected]
    assert list(ax.get_xticks()) == expected
    sizes = {t.get_fontsize() for t in ax.get_xticklabels()}
    assert min(sizes) >= 7  # readable, not squeezed to nothing


def test_token_ticks_options_and_edge_cases():
    from gptmini.viz.plots import token_ticks

    ax = square_axes(4.0)
    assert token_ticks(ax, [f"w{i}" for i in range(20)], max_labels=5) == [0, 4, 8, 12, 16]
    assert token_ticks(ax, ["a", " b", "$"], axis="x") == [0, 1, 2]
    assert tick_texts(ax, "x") == ["a", "␣b", r"\$"]  # spaces visible, $ not read as maths
    assert tick_texts(ax, "y") == ["w0", "w4", "w8", "w12", "w16"]  # the other axis is left alone
    tiny = square_axes(0.1)  # no room at all: still one label, never none
    assert token_ticks(tiny, [str(i) for i in range(64)]) == [0] and tick_texts(tiny) == ["0"]
    with pytest.raises(ValueError, match="axis"):
        token_ticks(ax, ["a"], axis="z")


def assert_titled(ax, xlabel=True, ylabel=True):
    assert ax.get_title().strip(), "the axes has no title"
    if xlabel:
        assert ax.get_xlabel().strip(), f"{ax.get_title()!r} has no x label"
    if ylabel:
        assert ax.get_ylabel().strip(), f"{ax.get_title()!r} has no y label"


@pytest.mark.parametrize("heads", [2, 4, 12])
def test_every_head_panel_keeps_its_labels_and_the_figure_says_what_it_shows(heads):
    line = "KING:\nO, speak again"  # 20 characters: notebook 04's heads figure had no labels at all
    torch.manual_seed(0)
    weights = torch.rand(heads, 20, 20).tril()
    fig = plot_attention_weights(weights / weights.sum(-1, keepdim=True), list(line))
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == heads
    tokens = [c.replace(" ", "␣") for c in line]
    for ax in panels:
        ticks = [int(v) for v in ax.get_xticks()]
        assert tick_texts(ax, "x") == tick_texts(ax, "y") == [tokens[i] for i in ticks]
        assert ticks == list(range(20)) if heads <= 4 else ticks == list(range(0, 20, 2))  # 12 heads: every 2nd
        assert ax.get_title() == f"head {panels.index(ax)}"
    assert fig.get_suptitle()  # a default title when none is given
    assert panels[-1].get_xlabel() == "key position (token attended to)"
    assert panels[0].get_ylabel() == "query position (token attending)"
    bars = [a for a in fig.axes if not a.images]
    assert [b.get_ylabel() for b in bars] == ["attention weight (0–1)"]


def test_attention_figures_have_titles_units_and_labels_at_any_length():
    for t in (6, 20, 64, 200):
        weights = torch.randn(t, t).masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), -torch.inf).softmax(-1)
        fig = plot_attention_weights(weights, [f"t{i}" for i in range(t)])
        ax = fig.axes[0]
        assert_titled(ax)
        assert fig.axes[1].get_ylabel() == "attention weight (0–1)"
        ticks = [int(v) for v in ax.get_xticks()]
        assert tick_texts(ax) == [f"t{i}" for i in ticks]  # each label names the token at its position
        assert ticks[0] == 0 and len(set(np.diff(ticks))) <= 1  # from the first token, evenly spaced
        assert len(ticks) == t if t <= 20 else 20 <= len(ticks) < t  # all while few, thinned after, never 0
    small, large = plot_attention_mask(6, list("To be,")), plot_attention_mask(40)
    assert tick_texts(small.axes[0], "y") == ["T", "o", "␣", "b", "e", ","]
    assert tick_texts(large.axes[0]) == [str(i) for i in range(40)]  # positions when no tokens are given
    for fig in (small, large):
        assert_titled(fig.axes[0])


def test_embedding_and_loss_plots_are_titled_with_the_legend_off_the_data():
    tok = CharTokenizer.from_text("abcdefghij ,.ABC0123")
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    records = [record("train", s, 4.0 - s / 100) for s in range(0, 300, 5)] + [record("eval", 300, 1.1, 1.2)]
    for fig in (plot_embeddings_pca(model, tok), plot_losses(records)):
        ax = fig.axes[0]
        assert_titled(ax)
        fig.canvas.draw()
        legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.x0 >= frame.x1 - 1, "the legend sits on top of the data"
        assert legend.x1 <= fig.bbox.x1 + 1, "the legend is cut off"
    assert "nats per token" in plot_losses(records).axes[0].get_ylabel()


def test_widget_figures_are_titled_and_labelled():
    from gptmini.tokenizers import BPETokenizer
    from gptmini.viz import attention_explorer, bpe_explorer

    text = "ROMEO:\nShe speaks: O, speak again, bright angel!"
    tok = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()
    ex = attention_explorer(model, tok, text)
    heat = ex.figure().axes[0]
    assert_titled(heat)
    assert len(tick_texts(heat)) == len(ex.tokens)  # 47 tokens: all labelled in the big view
    six = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=6, n_embd=48)).eval()
    ex = attention_explorer(six, tok, text)
    ex.view.value = "all"
    fig = ex.figure()
    assert fig.get_suptitle()
    assert [ax.get_title() for ax in fig.axes] == [f"head {h}" for h in range(6)]

    def visible(labels):
        return [t.get_text() for t in labels if t.get_visible()]

    step = int(fig.axes[0].get_yticks()[1])  # thinned to fit a 2.9-inch panel, from the first token on
    tokens = [c.replace(" ", "␣").replace("\n", "\\n") for c in text][::step]
    # rows of 4: labels on the outer edges, the left column and the lowest panel of each column
    assert [bool(visible(ax.get_yticklabels())) for ax in fig.axes] == [True, False, False, False, True, False]
    assert [bool(visible(ax.get_xticklabels())) for ax in fig.axes] == [False, False, True, True, True, True]
    assert visible(fig.axes[4].get_yticklabels()) == visible(fig.axes[2].get_xticklabels()) == tokens
    assert any("attention weight (0–1)" in t.get_text() for t in fig.texts)
    bpe = BPETokenizer().train(text * 10, vocab_size=256 + 10, progress=False)
    curve = bpe_explorer(bpe, text, step=4).figure().axes[0]
    assert_titled(curve)
    assert "4 merges" in curve.texts[0].get_text()  # the marked point says its value
