"""The notebook-11 widgets, driven from Python: head gallery, ablation explorer, logit-lens table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import ablation_effect, attention_maps, head_scores, lens_top_tokens
from gptmini.tokenizers import CharTokenizer
from gptmini.viz import AttentionExplorer, ablation_explorer, head_gallery, logit_lens_table

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_text(TEXT)


@pytest.fixture(scope="module")
def model(tok):
    """Weights 8x larger than at init: the heads differ, so orders and predictions differ too."""
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=3, n_embd=24, dropout=0.0))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(8.0)
    return m.eval()


def png(widget) -> bytes:
    return bytes(widget.image.value)


# ------------------------------------------------------------------------------------------ head gallery
def test_gallery_shows_every_head_and_sorts_by_the_chosen_score(model, tok):
    text = "to be or not to be"
    g = head_gallery(model, tok, text)
    ids = tok.encode(text)
    ref = [m[0].numpy() for m in attention_maps(model, torch.tensor([ids]))]
    for layer in range(2):
        np.testing.assert_allclose(g.maps[layer], ref[layer], atol=1e-6)
    expected = head_scores(model, ids, n=16)
    for name, values in expected.items():
        np.testing.assert_allclose(g.scores[name], values.numpy(), atol=1e-6)
    assert g.display_order() == [(layer, head) for layer in range(2) for head in range(3)]
    first = png(g)
    assert first.startswith(PNG)

    g.order.value = "sorted"
    for name in ("previous-token", "induction"):
        g.score.value = name
        values = [g.scores[name][p] for p in g.display_order()]
        assert values == sorted(values, reverse=True)
        assert [v for _, v in g.head_picker.options] == g.display_order()
    assert png(g) != first
    assert len(set(g.display_order())) == 6


def test_gallery_opens_the_chosen_head_in_the_attention_explorer(model, tok):
    g = head_gallery(model, tok, "to be or not to be", score="first-token")
    assert g.explorer is None and g.explorer_box.children == ()
    before = png(g)
    g.head_picker.value = (1, 2)
    assert png(g) != before and "<b>L1H2</b>" in g.status.value  # the chosen head is framed and described
    g.open_button.click()
    ex = g.explorer
    assert isinstance(ex, AttentionExplorer) and g.explorer_box.children == (ex,)
    assert (ex.layer.value, ex.head.value) == (1, 2)
    np.testing.assert_allclose(ex.current_matrix(), g.maps[1][2], atol=1e-6)
    assert g.open_head(0, 1) is ex and (ex.layer.value, ex.head.value) == (0, 1)  # reused, not rebuilt


def test_gallery_text_box_and_errors(model, tok):
    g = head_gallery(model, tok, "to be", score="duplicate-token")
    g.open_head(0, 0)
    g.text_box.value = "the mind the mind"
    assert g.ids == tok.encode("the mind the mind") and g.explorer is None  # a new text closes the old explorer
    g.text_box.value = "~~"
    assert "not in the vocabulary" in g.status.value and g.ids == tok.encode("the mind the mind")
    with pytest.raises(ValueError, match="score must be one of"):
        head_gallery(model, tok, "to be", score="copying")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        head_gallery(model, tok, "~~")


# ------------------------------------------------------------------------------------- ablation explorer
def test_ablation_toggles_change_loss_and_predictions(model, tok):
    text = "to be or not to be, that is"
    ex = ablation_explorer(model, tok, text)
    idx = torch.tensor([tok.encode(text)])
    base = ablation_effect(model, idx, [])
    assert ex.ablated() == [] and ex.result.loss_after == pytest.approx(base.loss_before)
    ex.toggles[(0, 1)].value = True
    ex.toggles[(1, 2)].value = True
    expected = ablation_effect(model, idx, [(0, 1), (1, 2)])
    assert ex.ablated() == [(0, 1), (1, 2)]
    assert ex.result.loss_after == pytest.approx(expected.loss_after, rel=1e-6)
    assert ex.result.loss_after != pytest.approx(base.loss_before, rel=1e-4)
    assert f"{expected.loss_after:.3f}" in ex.status.value and "L0H1, L1H2" in ex.status.value
    top_after = expected.top(5)
    assert repr(tok.token_strings([top_after[0][0]])[0]).replace("'", "&#x27;") in ex.table.value

    ex.mode.value = "mean"
    mean = ablation_effect(model, idx, [(0, 1), (1, 2)], mode="mean")
    assert ex.result.mode == "mean" and ex.result.loss_after == pytest.approx(mean.loss_after, rel=1e-6)
    ex.reset_button.click()
    assert ex.ablated() == [] and ex.result.loss_change == 0


def test_ablation_text_box(model, tok):
    ex = ablation_explorer(model, tok, "to be or not")
    ex.toggles[(0, 0)].value = True
    ex.text_box.value = "the mind to suffer"
    idx = torch.tensor([tok.encode("the mind to suffer")])
    assert ex.result.loss_after == pytest.approx(ablation_effect(model, idx, [(0, 0)]).loss_after, rel=1e-6)
    ex.text_box.value = "t"
    assert "at least 2 tokens" in ex.status.value and ex.ids == idx[0].tolist()


# ------------------------------------------------------------------------------------------- logit lens
def test_logit_lens_table_cells_follow_k_and_text(model, tok):
    text = "to be or not"
    lens = logit_lens_table(model, tok, text)
    ids, probs = lens_top_tokens(model, torch.tensor(tok.encode(text)), k=3)
    assert lens.depth_names() == ["embedding", "block 0", "block 1 (output)"]
    for depth in range(3):
        for pos in range(len(text)):
            token, p = lens.cell(depth, pos)[0]
            assert token == tok.token_strings([int(ids[depth, pos, 0])])[0]
            assert p == pytest.approx(float(probs[depth, pos, 0]), rel=1e-5)
    rows = lens.table.value.count("<tr>")
    assert rows == 3 + 2  # input row, three depths, the real next tokens
    one = lens.table.value
    lens.top_k.value = 3
    assert [t for t, _ in lens.cell(2, 4)] == tok.token_strings(ids[2, 4].tolist())
    assert lens.table.value != one and lens.table.value.count("<br>") == 2 * 3 * len(text)
    lens.show_probs.value = False
    assert "<small>" not in lens.table.value
    lens.text_box.value = "the"
    assert lens.ids == tok.encode("the") and lens.table.value.count("<td") == 3 * 3 + 3  # (3 depths + real next) x 3
    lens.text_box.value = "~"
    assert "not in the vocabulary" in lens.status.value and lens.ids == tok.encode("the")


def test_logit_lens_marks_correct_predictions(model, tok):
    text = "to be or not to be"
    lens = logit_lens_table(model, tok, text)
    ids, _ = lens_top_tokens(model, torch.tensor(tok.encode(text)), k=1)
    target = tok.encode(text)[1:]
    hits = int((ids[:, :-1, 0] == torch.tensor(target)).sum())
    assert lens.table.value.count("background:#d8f0d8;") == hits


def test_gallery_mosaic_paints_each_head_and_frames_it_in_its_score_colour():
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    from gptmini.viz.heads import _mosaic, _score_color

    rng = np.random.default_rng(0)
    mats = [np.tril(rng.random((6, 6))) for _ in range(3)]
    frames = [_score_color(0.0), _score_color(1.0), "#d62728"]
    image, anchors = _mosaic(mats, frames, cols=2)
    scale = 10  # ceil(60 / 6)
    side, border = 6 * scale, max(2, 6 * scale // 20)
    for k, (x, y) in enumerate(anchors):
        left, top = int(x - side / 2 - border), int(y + 1.5)
        np.testing.assert_allclose(image[top, left], to_rgb(frames[k]))  # the frame's corner
        inside = image[top + border : top + border + side : scale, left + border : left + border + side : scale]
        expected = colormaps["Blues"](np.sqrt(mats[k]))[..., :3]
        lower = np.tril(np.ones((6, 6), dtype=bool))
        np.testing.assert_allclose(inside[lower], expected[lower], atol=1e-12)  # weights on the square-root scale
        np.testing.assert_allclose(inside[~lower], np.broadcast_to(to_rgb("#e6e6e6"), inside[~lower].shape))
    assert anchors[2][1] > anchors[0][1] and anchors[1][0] > anchors[0][0]  # two columns, then a second row


def _tick_texts(ax, axis: str) -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


@pytest.mark.parametrize("n_tokens", [8, 64])
def test_gallery_thumbnails_carry_token_labels_thinned_never_dropped(n_tokens):
    """The first column's thumbnails name the queries, each column's lowest one the keys; the title gives units."""
    text = ("abcdefgh" * 8)[:n_tokens]
    tok = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=3, n_head=2, n_embd=16, dropout=0.0)).eval()
    g = head_gallery(m, tok, text, max_tokens=64)
    fig = g.figure()
    overlays = [ax for ax in fig.axes if ax.get_xlim() == (-0.5, n_tokens - 0.5)]
    with_y = [ax for ax in overlays if any(_tick_texts(ax, "y"))]
    with_x = [ax for ax in overlays if any(_tick_texts(ax, "x"))]
    assert len(with_y) == 3 and len(with_x) == 2  # one per layer (first column), one per column (lowest row)
    for ax, axis in [(a, "y") for a in with_y] + [(a, "x") for a in with_x]:
        ticks = list(ax.get_yticks() if axis == "y" else ax.get_xticks())
        step = int(ticks[1] - ticks[0])
        assert ticks == list(range(0, n_tokens, step))  # evenly thinned from the first token on
        assert _tick_texts(ax, axis) == [text[i] for i in ticks]
        if n_tokens == 8:
            assert step == 1  # few tokens: every one is labelled
        else:
            assert 1 < step < n_tokens and len(ticks) >= 4  # many: every k-th, never none
    title = fig._suptitle.get_text()
    assert f"attention weight (0–1) of every head on {n_tokens} tokens" in title and "share of attention" in title
    bar = [ax for ax in fig.axes if ax.get_ylabel()]
    assert bar and "score (share of attention)" in bar[0].get_ylabel()
