"""The interactive widgets, driven from Python: change a control, check what is shown is the right data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import attention_maps
from gptmini.tokenizers import BPETokenizer
from gptmini.viz import attention_explorer, bpe_explorer, sampling_explorer

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"
PNG = b"\x89PNG\r\n\x1a\n"


def png(widget) -> bytes:
    """The PNG bytes a widget shows now (ipywidgets hands them back as a memoryview)."""
    return bytes(widget.image.value)


def reference_maps(char_model, ids):
    return [m[0].numpy() for m in attention_maps(char_model, torch.tensor([ids]))]


# ----------------------------------------------------------------------------------- attention explorer
def test_attention_matrix_follows_layer_and_head(char_model, char_tok):
    text = "to be or not"
    ex = attention_explorer(char_model, char_tok, text)
    ref = reference_maps(char_model, char_tok.encode(text))
    assert ex.tokens == char_tok.token_strings(char_tok.encode(text))
    first = png(ex)
    assert first.startswith(PNG)
    for layer in range(char_model.config.n_layer):
        for head in range(char_model.config.n_head):
            ex.layer.value, ex.head.value = layer, head
            np.testing.assert_allclose(ex.current_matrix(), ref[layer][head], atol=1e-6)
    assert png(ex) != first  # the picture follows the sliders
    assert np.allclose(ex.current_matrix().sum(-1), 1.0, atol=1e-5)


def test_attention_query_view_and_text_box(char_model, char_tok):
    ex = attention_explorer(char_model, char_tok, "to be or not")
    assert ex.query.value == len("to be or not") - 1  # starts on the last token: it sees everything
    before = png(ex)
    ex.query.value = 3
    assert "query 3" in ex.status.value and png(ex) != before
    ex.view.value = "all"
    assert ex.head.disabled and png(ex).startswith(PNG)

    ex.text_box.value = "the mind"  # typing a new text recomputes every layer
    ids = char_tok.encode("the mind")
    assert ex.ids == ids and len(ex.query.options) == len(ids)
    ex.view.value, ex.layer.value, ex.head.value = "head", 1, 1
    np.testing.assert_allclose(ex.current_matrix(), reference_maps(char_model, ids)[1][1], atol=1e-6)


def test_attention_bad_text_is_reported_not_raised(char_model, char_tok):
    ex = attention_explorer(char_model, char_tok, "to be")
    ex.text_box.value = "zzz~"  # '~' and 'z' are not in the vocabulary
    assert "not in the vocabulary" in ex.status.value
    assert ex.ids == char_tok.encode("to be")  # the last good state stays on screen
    with pytest.raises(ValueError, match="not in the vocabulary"):
        attention_explorer(char_model, char_tok, "~~~")
    with pytest.raises(ValueError, match="non-empty"):
        attention_explorer(char_model, char_tok, "")


def test_attention_long_text_is_cut(char_model, char_tok):
    ex = attention_explorer(char_model, char_tok, TEXT, max_tokens=10)
    assert ex.current_matrix().shape == (10, 10)
    assert "first 10 of" in ex.status.value
    ex = attention_explorer(char_model, char_tok, TEXT)  # never longer than the model's context
    assert ex.current_matrix().shape == (char_model.config.block_size,) * 2


# ------------------------------------------------------------------------------------ sampling explorer
def next_logits(char_model, ids):
    with torch.no_grad():
        return char_model(torch.tensor([ids[-char_model.config.block_size :]]))[0][0, -1]


def test_sampling_distribution_matches_the_model(char_model, char_tok):
    prompt = "To be, or no"
    ex = sampling_explorer(char_model, char_tok, prompt)
    before, after, kept = ex.distribution()
    expected = torch.softmax(next_logits(char_model, char_tok.encode(prompt)), -1).numpy()
    np.testing.assert_allclose(before, expected, atol=1e-6)
    np.testing.assert_allclose(after, expected, atol=1e-6)  # T=1, no filters: nothing changes
    assert kept == set(range(char_tok.vocab_size))

    ex.temperature.value = 0.5
    _, after, _ = ex.distribution()
    np.testing.assert_allclose(
        after, torch.softmax(next_logits(char_model, char_tok.encode(prompt)) / 0.5, -1), atol=1e-6
    )
    assert after.max() > before.max()  # a lower temperature sharpens


def test_sampling_filters_keep_the_right_tokens(char_model, char_tok):
    ex = sampling_explorer(char_model, char_tok, "To be")
    logits = next_logits(char_model, char_tok.encode("To be"))
    image = png(ex)
    ex.top_k.value = 1
    before, after, kept = ex.distribution()
    assert kept == {int(logits.argmax())} and after[int(logits.argmax())] == pytest.approx(1.0)
    assert png(ex) != image

    ex.top_k.value = 5
    _, after, kept = ex.distribution()
    assert kept == set(torch.topk(logits, 5).indices.tolist())
    assert after.sum() == pytest.approx(1.0, abs=1e-5) and np.all(after[list(set(range(len(after))) - kept)] == 0)

    ex.top_k.value, ex.top_p.value = 0, 0.3
    before, _, kept = ex.distribution()
    order = np.argsort(-before)
    needed = int(np.searchsorted(np.cumsum(before[order]), 0.3) + 1)  # smallest prefix with mass >= 0.3
    assert kept == set(order[:needed].tolist())

    ex.top_p.value, ex.temperature.value = 1.0, 0.0  # temperature 0: greedy
    assert ex.distribution().kept == {int(logits.argmax())}


def test_sampling_buttons_append_and_seed_reproduces(char_model, char_tok):
    a = sampling_explorer(char_model, char_tok, "To be", seed=7)
    token = a.sample_next()
    assert a.text == "To be" + char_tok.decode([token]) and a.ids == char_tok.encode("To be") + [token]
    a.sample_button.click()
    a.n_tokens.value = 6
    a.generate_button.click()
    assert len(a.ids) == len("To be") + 8 and a.text.startswith("To be")
    first = a.text

    b = sampling_explorer(char_model, char_tok, "To be", seed=7)  # same seed, same clicks, same text
    b.sample_next()
    b.sample_next()
    b.generate(6)
    assert b.text == first
    b.reset()
    assert b.text == "To be"
    b.generate(8)
    assert b.text == first  # reset restarts the random stream too

    c = sampling_explorer(char_model, char_tok, "To be", seed=8)
    c.generate(8)
    assert c.text != first


def test_sampling_greedy_equals_generate(char_model, char_tok):
    ex = sampling_explorer(char_model, char_tok, "To be")
    ex.temperature.value = 0.0
    ex.generate(10)
    expected = char_model.generate(char_tok.encode("To be"), 10, temperature=0)
    assert ex.ids == expected


def test_sampling_text_edits(char_model, char_tok):
    ex = sampling_explorer(char_model, char_tok, "To be")
    ex.text_area.value = "the mind"
    assert ex.ids == char_tok.encode("the mind")
    np.testing.assert_allclose(
        ex.distribution().before, torch.softmax(next_logits(char_model, char_tok.encode("the mind")), -1), atol=1e-6
    )
    ex.text_area.value = "~"
    assert "not in the vocabulary" in ex.status.value and ex.ids == char_tok.encode("the mind")
    with pytest.raises(ValueError):
        sampling_explorer(char_model, char_tok, "")


# ------------------------------------------------------------------------------------------ BPE explorer
@pytest.fixture(scope="module")
def bpe():
    corpus = (TEXT + " ") * 20
    return BPETokenizer().train(corpus, vocab_size=256 + 40, progress=False)


def test_bpe_explorer_shows_the_tokens_after_k_merges(bpe):
    text = "To be, or not to be: the question"
    ex = bpe_explorer(bpe, text)
    assert ex.merge_step.max == len(bpe.history) == 40
    assert ex.current_tokens() == list(text.encode("utf-8"))  # step 0: bytes
    counts = []
    for k in (0, 1, 5, 17, 40):
        ex.merge_step.value = k
        assert ex.current_tokens() == bpe.encode(text, max_merges=k)
        assert ex.tokens_html.value.count("<span") == len(ex.current_tokens())
        counts.append(len(ex.current_tokens()))
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]
    assert ex.current_tokens() == bpe.encode(text)  # all merges: the tokenizer's own encoding


def test_bpe_explorer_names_the_merge(bpe):
    ex = bpe_explorer(bpe, "the question", step=3)
    (a, b), new_id, count = bpe.history[2]
    assert ex.current_merge() == bpe.history[2]
    info = ex.merge_info.value
    assert f"merge 3 of {len(bpe.history)}" in info and f"id {new_id}" in info and f"{count:,} times" in info
    joined = bpe.token_strings([new_id])[0]
    assert joined == bpe.token_strings([a])[0] + bpe.token_strings([b])[0]
    ex.merge_step.value = 0
    assert ex.current_merge() is None and "no merges yet" in ex.merge_info.value
    ex.text_box.value = "to be"
    assert ex.current_tokens() == list(b"to be")


def test_bpe_explorer_needs_a_bpe_tokenizer(char_tok, bpe):
    with pytest.raises(ValueError, match="BPETokenizer"):
        bpe_explorer(char_tok, "to be")
    with pytest.raises(ValueError, match="step must be between"):
        bpe_explorer(bpe, "to be", step=999)


def test_sampling_panels_have_titles_and_an_x_label(char_model, char_tok):
    import matplotlib.pyplot as plt

    fig = sampling_explorer(char_model, char_tok, "To be").figure()
    fig.canvas.draw()  # positions of the labels are known after a draw
    try:
        assert len(fig.axes) == 4
        for ax in fig.axes:
            assert ax.get_title().strip() and ax.get_xlabel() == "probability (0 to 1)"
            label_box = ax.xaxis.label.get_window_extent(fig.canvas.get_renderer())
            assert label_box.y0 >= 0, "the x label is cut off at the bottom of the figure"
    finally:
        plt.close(fig)


# ------------------------------------------------------------------ notebook 11, part 2: patching and attribution
def test_patching_explorer_maps_heads_and_positions_and_opens_a_head(char_model, char_tok):
    from gptmini.inspect import negative_loss_metric, patch_heads, patch_residual
    from gptmini.viz import AttentionExplorer, patching_explorer

    clean, corrupted = "the mind the mind", "or not a the mind"  # same length, first half changed
    ex = patching_explorer(char_model, char_tok, clean, corrupted)
    c, k = torch.tensor([char_tok.encode(clean)]), torch.tensor([char_tok.encode(corrupted)])
    right, wrong = int(char_model(c)[0][0, -1].argmax()), int(char_model(k)[0][0, -1].argmax())
    assert ex.result.recovered.shape == (2, 2) and ex.tokens_compared == (right, wrong)
    logits_c = char_model(c)[0][0, -1].detach()
    assert ex.result.clean == pytest.approx(float(logits_c[right] - logits_c[wrong]), abs=1e-5)
    before = png(ex)
    ex.metric.value = "loss"
    expected = patch_heads(char_model, c, k, negative_loss_metric(c, start=c.shape[1] // 2))
    np.testing.assert_allclose(ex.result.recovered.numpy(), expected.recovered.numpy(), atol=1e-6)
    assert png(ex) != before and "minus the loss" in ex.status.value
    ex.kind.value = "residual"
    expected = patch_residual(char_model, c, k, negative_loss_metric(c, start=c.shape[1] // 2))
    assert ex.result.recovered.shape == (3, len(clean))
    np.testing.assert_allclose(ex.result.recovered.numpy(), expected.recovered.numpy(), atol=1e-6)
    ex.kind.value = "heads"
    ex.head_picker.value = (1, 1)
    assert "<b>L1H1</b>" in ex.status.value
    ex.open_button.click()
    assert isinstance(ex.explorer, AttentionExplorer) and (ex.explorer.layer.value, ex.explorer.head.value) == (1, 1)
    assert ex.explorer_box.children == (ex.explorer,)


def test_patching_explorer_reports_bad_pairs(char_model, char_tok):
    from gptmini.viz import patching_explorer

    ex = patching_explorer(char_model, char_tok, "to be or", "to be or")
    assert "nothing to recover" in ex.status.value
    ex.corrupted_box.value = "to be"  # a different length: said on the status line, the old pair stays
    assert "same length" in ex.status.value and ex.corrupted_ids == char_tok.encode("to be or")
    ex.corrupted_box.value = "no be or"
    assert ex.corrupted_ids == char_tok.encode("no be or") and "same length" not in ex.status.value
    with pytest.raises(ValueError, match="same length"):
        patching_explorer(char_model, char_tok, "to be or", "to")


def test_logit_attribution_view_bars_match_the_library(char_model, char_tok):
    from gptmini.inspect import logit_attribution
    from gptmini.viz import logit_attribution_view

    text = "to be or not to b"
    view = logit_attribution_view(char_model, char_tok, text)
    idx = torch.tensor([char_tok.encode(text)])
    top = char_model(idx)[0][0, -1].topk(2).indices.tolist()
    assert (view.right, view.wrong) == tuple(top)
    a = logit_attribution(char_model, idx, top[0], top[1])
    torch.testing.assert_close(view.attribution.heads, a.heads)
    assert float(view.attribution.total()[0]) == pytest.approx(float(a.logit_diff[0]), abs=1e-4)
    assert png(view).startswith(PNG) and "L" in view.status.value
    before = png(view)
    view.swap_button.click()
    assert (view.right, view.wrong) == (top[1], top[0]) and png(view) != before
    torch.testing.assert_close(view.attribution.heads, -a.heads)
    view.right_box.value = "to"  # two tokens: said on the status line
    assert "give exactly one token" in view.status.value and (view.right, view.wrong) == (top[1], top[0])
    view.right_box.value = "e"
    assert view.right == char_tok.encode("e")[0]
    view.text_box.value = "or not"
    assert view.ids == char_tok.encode("or not")


def test_logit_attribution_view_refuses_a_post_ln_model(char_tok):
    from gptmini.viz import logit_attribution_view

    torch.manual_seed(0)
    post = GPT(GPTConfig.preset("tiny", vocab_size=char_tok.vocab_size, norm="post")).eval()
    with pytest.raises(ValueError, match="needs a pre-LN model"):
        logit_attribution_view(post, char_tok, "to be")
