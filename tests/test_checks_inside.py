"""Notebook 11's checks: the package's versions pass, the usual slips fail with the slip named, stubs say "not yet"."""

from __future__ import annotations

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course.checks.nb11 import check_induction_score, check_previous_token_score, check_unembed, check_zero_head
from gptmini.inspect import (
    ablate,
    induction_score,
    logit_lens,
    previous_token_score,
    repeated_losses,
    repeated_tokens,
    run_with_cache,
    unembed,
    zero_head,
)


def _stub(*_args):
    raise NotImplementedError


# ---------------------------------------------------------------------------------------- the package
def test_zero_head_zeroes_one_head_and_leaves_its_input_alone():
    z = torch.randn(2, 3, 4, 5)
    out = zero_head(z, 1)
    assert torch.equal(out[:, 1], torch.zeros(2, 4, 5))
    assert torch.equal(out[:, [0, 2]], z[:, [0, 2]])
    assert not torch.equal(z[:, 1], torch.zeros(2, 4, 5))  # a copy: the input is unchanged
    assert torch.equal(zero_head(z, [0, 2])[:, 1], z[:, 1])


def test_a_hook_returning_zero_head_is_what_ablate_does():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.0)).eval()
    idx = repeated_tokens(20, 8, batch=2)
    handle = model.transformer.h[1].attn.hook_z.register_forward_hook(lambda _m, _i, z: zero_head(z, 2))
    try:
        mine = repeated_losses(model, idx, 8)
    finally:
        handle.remove()
    with ablate(model, [(1, 2)]):
        reference = repeated_losses(model, idx, 8)
    assert mine == pytest.approx(reference, abs=1e-6)
    assert mine != pytest.approx(repeated_losses(model, idx, 8), abs=1e-6)  # the head did matter


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_unembed_at_the_last_depth_gives_the_models_logits(norm):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0, norm=norm))
    model.eval()
    idx = torch.randint(0, 20, (1, 10))
    logits, cache = run_with_cache(model, idx, patterns=False)
    with torch.no_grad():
        torch.testing.assert_close(unembed(model, cache.resid[-1]), logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logit_lens(model, idx)[1], unembed(model, cache.resid[0]))


# ---------------------------------------------------------------------------------------- the checks
def test_the_package_versions_pass_every_check():
    assert check_previous_token_score(previous_token_score)
    assert check_induction_score(induction_score)
    assert check_zero_head(zero_head)
    assert check_unembed(unembed)


def test_stubs_are_not_yet(capsys):
    for check in (check_previous_token_score, check_induction_score, check_zero_head, check_unembed):
        result = check(_stub)
        assert not result and result.pending
    assert check_zero_head(lambda z, head: None).pending
    printed = capsys.readouterr().out
    assert printed.count("not yet") == 5 and "❌" not in printed


def _zero_position(z, head):
    z = z.clone()
    z[:, :, head] = 0
    return z


def _zero_feature(z, head):
    z = z.clone()
    z[..., head] = 0
    return z


def _zero_in_place(z, head):
    z[:, head] = 0
    return z


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (_zero_position, "zeroed position"),
        (_zero_feature, "one feature of every head"),
        (lambda z, head: z - zero_head(z, head), "every head except"),
        (lambda z, head: torch.zeros_like(z), "every head is zeroed"),
        (lambda z, head: z.clone(), "nothing changed"),
        (_zero_in_place, "in place"),
    ],
)
def test_zero_head_slips_are_named(wrong, named, capsys):
    result = check_zero_head(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out


def test_unembed_slips_are_named(capsys):
    def no_ln_f(model, resid):
        return model.lm_head(resid)

    assert not check_unembed(no_ln_f)
    assert "ln_f first" in capsys.readouterr().out
    assert not check_unembed(lambda model, resid: unembed(model, resid).softmax(-1))
    assert "those are probabilities" in capsys.readouterr().out
    assert not check_unembed(lambda model, resid: unembed(model, resid).log_softmax(-1))
    assert "log-probabilities" in capsys.readouterr().out

    def always_ln_f(model, resid):  # a post-LN model has no final LayerNorm to apply
        return model.lm_head(model.transformer.ln_f(resid))

    assert not check_unembed(always_ln_f)
    assert "ln_f" in capsys.readouterr().out
