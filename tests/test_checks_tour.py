"""Notebook 00's checks: the package's versions pass, the usual slips fail with the slip named, stubs say "not yet"."""

from __future__ import annotations

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course.checks import package_version
from gptmini.course.checks.nb00 import check_approx_params, check_next_token_probs
from gptmini.sizes import count_params


def test_the_package_versions_pass_and_match_the_model():
    approx, probs = package_version("approx_params"), package_version("next_token_probs")
    assert check_approx_params(approx) and check_next_token_probs(probs)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)).eval()
    idx = torch.randint(0, 30, (1, 9))
    with torch.no_grad():
        logits, _ = model(idx)
        full, _ = model(idx, torch.zeros_like(idx))  # with targets: the logits of every position
    torch.testing.assert_close(probs(logits), full[0, -1].softmax(-1))
    assert abs(probs(logits).sum().item() - 1) < 1e-6
    exact = count_params(model.config)
    assert exact == sum(p.numel() for p in model.parameters())
    assert 0.9 < approx(model.config) / exact < 1.0  # tiny widths: the biases and LayerNorms left out show


def test_stubs_are_not_yet(capsys):
    def stub(_):
        raise NotImplementedError

    for check in (check_approx_params, check_next_token_probs):
        assert check(stub).pending and check(lambda _: None).pending
    printed = capsys.readouterr().out
    assert printed.count("not yet") == 4 and "❌" not in printed


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda c: (c.vocab_size + c.block_size) * c.n_embd + 12 * c.n_embd**2, "multiply it by n_layer"),
        (lambda c: (c.vocab_size + c.block_size) * c.n_embd + 4 * c.n_layer * c.n_embd**2, "attention alone"),
        (lambda c: (c.vocab_size + c.block_size) * c.n_embd + 8 * c.n_layer * c.n_embd**2, "MLP alone"),
        (lambda c: (2 * c.vocab_size + c.block_size) * c.n_embd + 12 * c.n_layer * c.n_embd**2, "weight tying"),
        (lambda c: 12 * c.n_layer * c.n_embd**2, "embedding tables"),
        (lambda c: "117M", "expected a number"),
    ],
)
def test_approx_params_slips_are_named(wrong, named, capsys):
    result = check_approx_params(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda logits: logits[0, 0].softmax(-1), "after the FIRST token"),
        (lambda logits: logits[0, -1], "those are the logits"),
        (lambda logits: logits[0, -1].log_softmax(-1), "log-probabilities"),
        (lambda logits: logits.softmax(1)[0, -1], "over the positions"),
        (lambda logits: logits[0].softmax(-1), "every position's distribution"),
    ],
)
def test_next_token_probs_slips_are_named(wrong, named, capsys):
    result = check_next_token_probs(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out
