"""Wrong answers a learner really writes: each check's message names that mistake, and a crash names their line.

Every test feeds one exact slip (found by working the student edition as a student) and asserts the words
that name it; the exceptions are reported at the learner's own line, not at one inside torch or gptmini.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.course.checks import compare_tensors
from gptmini.course.checks._report import call_learner, learner_frame
from gptmini.course.checks.nb02 import check_lm_loss
from gptmini.course.checks.nb03 import check_attention, check_running_mean, check_softmax
from gptmini.course.checks.nb05 import check_gpt_loss
from gptmini.course.checks.nb09 import check_from_hf_layout, check_greedy_decode, check_top_p, from_hf_layout


def _said(result) -> str:
    return "\n".join([result.message, *(_said(r) for r in result.details)])


# ------------------------------------------------------------------------------------- softmax (03)
def _row_max_exp(s):
    return (s - s.max(-1, keepdim=True).values).exp()


def test_softmax_summed_down_the_columns_is_named():
    result = check_softmax(lambda s: _row_max_exp(s) / _row_max_exp(s).sum(0, keepdim=True))
    assert not result and "the sum runs over the wrong dimension" in result.message


def test_softmax_divided_by_the_whole_sum_is_named():
    result = check_softmax(lambda s: _row_max_exp(s) / _row_max_exp(s).sum())
    assert not result and "the whole tensor sums to 1, each row should" in result.message


def test_naive_softmax_says_nan_and_overflow_not_a_tiny_gap():
    result = check_softmax(lambda s: s.exp() / s.exp().sum(-1, keepdim=True))
    assert not result
    assert "got nan" in result.message and "4 are nan or inf where gptmini's are finite" in result.message
    assert "overflows" in result.message and "largest gap 5.96" not in result.message


def test_compare_tensors_names_nan_and_keeps_the_gap_of_the_finite_values():
    got = torch.tensor([float("nan"), 1.0, 5.0])
    result = compare_tensors("x", got, torch.tensor([0.5, 1.0, 2.0]))
    assert "2 of 3 values differ; 1 are nan or inf where gptmini's are finite" in result.message
    assert "largest gap between finite values 3" in result.message
    plain = compare_tensors("x", torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.0]))  # no nan: the message as before
    assert (
        plain.message
        == "❌ x differs: first difference at index (1): got 3, expected 2 (1 of 2 values differ; largest gap 1)"
    )


# ------------------------------------------------------------------------------------ attention (03)
def _mask_after(fill):
    def attention(q, k, v):
        t = q.size(-2)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
        weights = weights.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), fill)
        return weights @ v, weights

    return attention


def test_masking_after_the_softmax_is_named_not_called_a_peek_at_the_future():
    result = check_attention(_mask_after(0.0))
    said = _said(result)
    assert not result and "the mask was applied after the softmax" in said
    assert "sees future position" not in said
    assert "query position 0's weights sum to 0.134, not 1" in said  # the weights line names the same slip
    output_only = check_attention(lambda q, k, v: _mask_after(0.0)(q, k, v)[0])
    assert "the mask was applied after the softmax" in output_only.message


def test_an_inf_mask_on_the_weights_is_named():
    said = _said(check_attention(_mask_after(float("-inf"))))
    assert said.count("the -inf went into the weights, after the softmax") == 2
    assert "fill the scores with -inf, not 0" not in said
    output_only = check_attention(lambda q, k, v: _mask_after(float("-inf"))(q, k, v)[0])
    assert "the -inf went into the weights" in output_only.message and "sees future" not in output_only.message


# -------------------------------------------------------------------------------- running mean (03)
@pytest.mark.parametrize(
    "wrong, words",
    [
        (lambda v, t: v.cumsum(0) / torch.arange(t)[:, None], "row i was divided by i"),
        (lambda v, t: v.cumsum(0) / t, "every row was divided by T"),
        (lambda v, t: v.cumsum(0) / torch.arange(2, t + 2)[:, None], "divided by i + 2"),
        (lambda v, t: v.cumsum(0), "that is the running sum"),
        (lambda v, t: v.mean(0).expand(t, -1), "the mean of all T values"),
    ],
)
def test_running_mean_counts(wrong, words):
    v = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    assert check_running_mean(v.cumsum(0) / torch.arange(1, 7)[:, None], v)
    result = check_running_mean(wrong(v, 6), v)
    assert not result and words in result.message


def test_running_mean_counts_along_the_wrong_axis():
    v = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))  # square: a row of counts broadcasts
    result = check_running_mean(v.cumsum(0) / torch.arange(1, 6), v)
    assert not result and "the counts ran along the columns" in result.message


# ------------------------------------------------------------------------------------------ L1 (05)
def _model_and_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(30, (2, 7), generator=g), torch.randint(30, (2, 7), generator=g)
    with torch.no_grad():
        logits = model(x)[0]
    return model, x, y, logits


def test_l1_gathering_the_inputs_is_named():
    model, x, y, logits = _model_and_batch()
    assert check_gpt_loss(logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).sum(), model, x, y)
    inputs = check_gpt_loss(logits.log_softmax(-1).gather(-1, x.unsqueeze(-1)).sum(), model, x, y)
    assert not inputs and "log P of the inputs x" in inputs.message and "targets y" in inputs.message
    raw = check_gpt_loss(logits.gather(-1, y.unsqueeze(-1)).sum(), model, x, y)
    assert not raw and "sums raw logits" in raw.message
    positions = check_gpt_loss(logits.log_softmax(-2).gather(-1, y.unsqueeze(-1)).sum(), model, x, y)
    assert not positions and "ran over the positions" in positions.message


# -------------------------------------------------------------------------------------------- 09
def test_top_p_that_forgets_to_undo_the_sort_names_the_tokens():
    def top_p(logits, p):
        sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))  # a mask in sorted order

    said = _said(check_top_p(top_p))
    assert "where gptmini keeps 3" not in said
    assert "keeps 3 tokens in row 0, as many as gptmini, but not the same ones: it keeps token" in said
    assert "undo the sort" in said


def test_from_hf_layout_counts_the_lines_it_printed(capsys):
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)).eval()
    result = check_from_hf_layout(from_hf_layout, model)
    out = capsys.readouterr().out.splitlines()
    assert result and out[-1] == f"✅ check_from_hf_layout: all {len(out) - 1} checks passed"
    assert len(out) == 3


# --------------------------------------------------------------------- an exception in the learner's code
def _from_file(tmp_path, source: str, name: str):
    path = tmp_path / "mine.py"
    path.write_text(source, encoding="utf-8")
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace[name]


def test_an_error_inside_torch_is_reported_at_the_learners_line_in_a_file(tmp_path):
    loss = _from_file(
        tmp_path,
        "import torch.nn.functional as F\n\n\ndef loss(logits, targets):\n"
        "    return F.cross_entropy(logits, targets)\n",
        "loss",
    )
    result = check_lm_loss(loss)
    assert not result and result.message.count("\n") == 0
    assert "raised RuntimeError: Expected target size" in result.message or "raised ValueError" in result.message
    assert "(in loss, mine.py, line 5: return F.cross_entropy(logits, targets))" in result.message
    assert "functional.py" not in result.message


@pytest.mark.parametrize(
    "filename, place",
    [("<ipython-input-7-0123abcd>", "cell In[7]"), ("/tmp/ipykernel_4242/123456789.py", "your notebook cell")],
)
def test_an_error_in_a_notebook_cell_names_the_cell_and_line(filename, place):
    source = "def softmax(s):\n    e = s.exp()\n    return e / e.sum(0, keepdim=True)[:, :2]\n"
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    result = check_softmax(namespace["softmax"])
    assert not result
    assert result.message.startswith("❌ softmax(x) raised RuntimeError: The size of tensor a (4) must match")
    assert result.message.endswith(f"(in softmax, {place}, line 3)")  # no source text: the cell is not cached


def test_an_error_inside_gptmini_is_reported_at_the_learners_line(tmp_path):
    decode = _from_file(
        tmp_path,
        "import torch\n\n\ndef decode(model, ids, steps):\n"
        "    cache = model.new_cache(batch_size=1, max_length=2)\n"
        "    model.hidden_states(torch.tensor([ids]), cache)\n"
        "    return ids\n",
        "decode",
    )
    result = check_greedy_decode(decode)
    assert not result and "(in decode, mine.py, line 6: model.hidden_states(torch.tensor([ids]), cache))" in (
        result.message
    )


def test_learner_frame_skips_library_frames_and_call_learner_keeps_the_message():
    _, error = call_learner("x", lambda: F.softmax(torch.ones(2), dim=5))
    assert "raised IndexError: Dimension out of range" in error.message
    try:
        torch.ones(2).view(3)
    except RuntimeError as err:
        frame = learner_frame(err)
    assert frame is not None and frame.filename == __file__
