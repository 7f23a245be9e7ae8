"""Notebook 00's checks: the package's versions pass, the usual slips fail with the slip named, stubs say "not yet"."""

from __future__ import annotations

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course.checks import package_version
from gptmini.course.checks.nb00 import check_approx_params, check_next_token_probs, check_sample
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


# ------------------------------------------------------------------------------ the sampling loop
def _loop(step, window="last", feedback=True, whole=True):
    """A sampling loop whose draw is ``step(scores, temperature, generator)``, with the slips the check names."""

    def sample(model, ids, n, temperature, generator):
        ids, prompt = list(ids), list(ids)
        block = model.config.block_size
        for _ in range(n):
            seen = ids if feedback else prompt
            context = {"last": seen[-block:], "first": seen[:block], "all": seen}[window]
            with torch.no_grad():
                logits, _ = model(torch.tensor([context]))
            ids.append(int(step(logits[0, -1], temperature, generator)))
        return ids if whole else ids[len(prompt) :]

    return sample


def _draw(scores, temperature, generator):
    return torch.multinomial((scores / temperature).softmax(-1), 1, generator=generator)


def test_the_sampling_loop_passes_and_its_stub_is_not_yet(capsys):
    assert check_sample(package_version("sample")) and check_sample(_loop(_draw))
    assert check_sample(lambda *args: (_ for _ in ()).throw(NotImplementedError())).pending
    assert check_sample(lambda *args: None).pending
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (_loop(lambda s, t, g: s.argmax()), "writing *draws* the next token"),
        (_loop(lambda s, t, g: torch.multinomial((s * t).softmax(-1), 1, generator=g)), "divides the scores"),
        (_loop(lambda s, t, g: torch.multinomial(s.softmax(-1) / t, 1, generator=g)), "before the softmax"),
        (_loop(_draw, feedback=False), "joins the context"),
        (_loop(_draw, window="first"), "most recent block_size"),
        (_loop(_draw, window="all"), "give it the most recent ones"),
        (_loop(_draw, whole=False), "the prompt followed by the new tokens"),
        (_loop(lambda s, t, g: torch.multinomial((s / t).softmax(-1), 1)), "draw with the generator you are given"),
    ],
    ids=["greedy", "times-T", "T-after-softmax", "no-feedback", "oldest-window", "no-crop", "new-only", "own-rng"],
)
def test_sampling_slips_are_named(wrong, named, capsys):
    result = check_sample(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out
