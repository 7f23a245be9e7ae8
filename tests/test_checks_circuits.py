"""Notebook 11, part 2's checks: the package's versions pass, the usual slips fail with the slip named, stubs wait."""

from __future__ import annotations

import pytest
import torch

from gptmini.course.checks import package_version
from gptmini.course.checks.nb11 import check_dla_projection, check_full_ov_circuit
from gptmini.inspect import full_ov_circuit, project_to_logit_diff


def _stub(*_args):
    raise NotImplementedError


def _dla(model, parts, final, right, wrong, *, centre=True, ln_weight=True, frozen=True, transpose=False, bias=False):
    ln, w_u = model.transformer.ln_f, model.lm_head.weight
    d = (w_u[:, right] - w_u[:, wrong]) if transpose else (w_u[right] - w_u[wrong])
    if not frozen:
        return ln(parts) @ d
    sigma = (final.var(unbiased=False) + ln.eps).sqrt()
    x = parts - parts.mean(-1, keepdim=True) if centre else parts
    x = x / sigma * (ln.weight if ln_weight else 1.0)
    return x @ d + (ln.bias @ d if bias else 0.0)


def test_the_package_versions_pass(capsys):
    assert check_dla_projection(project_to_logit_diff)
    assert check_dla_projection(package_version("dla_projection"))
    assert check_full_ov_circuit(full_ov_circuit)
    assert check_full_ov_circuit(package_version("full_ov_circuit"))
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("slip", "named"),
    [
        (dict(transpose=True), "the unembedding is transposed"),
        (dict(centre=False), "must be centred"),
        (dict(ln_weight=False), "ln_f.weight is missing"),
        (dict(frozen=False), "normalises each part by its own scale"),
        (dict(bias=True), "ln_f.bias belongs to no part"),
    ],
)
def test_dla_slips_are_named(slip, named, capsys):
    result = check_dla_projection(lambda *args: _dla(*args, **slip))
    assert not result and named in capsys.readouterr().out


def test_dla_without_layernorm_and_with_the_sign_flipped_are_named(capsys):
    def no_ln(model, parts, final, right, wrong):
        return parts @ (model.lm_head.weight[right] - model.lm_head.weight[wrong])

    assert not check_dla_projection(no_ln)
    assert "the final LayerNorm is missing" in capsys.readouterr().out
    assert not check_dla_projection(lambda m, p, f, r, w: -project_to_logit_diff(m, p, f, r, w))
    assert "the sign is flipped" in capsys.readouterr().out


def test_ov_slips_are_named(capsys):
    from gptmini.inspect.circuits import _head_weights

    def no_ln(model, head):
        w = _head_weights(model, 0, head)
        return (model.transformer.wte.weight @ w["W_V"] + w["b_V"]) @ w["W_O"] @ model.lm_head.weight.T

    for fn, named in [
        (lambda m, h: full_ov_circuit(m, h).T, "the matrix is transposed"),
        (no_ln, "ln_1 is missing"),
    ]:
        assert not check_full_ov_circuit(fn)
        assert named in capsys.readouterr().out


def test_stubs_say_not_yet_once(capsys):
    for check in (check_dla_projection, check_full_ov_circuit):
        result = check(_stub)
        out = capsys.readouterr().out
        assert not result and result.pending and sum("not yet" in line for line in out.splitlines()) == 1
    with pytest.raises(TypeError, match="expects project_fn to be a function"):
        check_dla_projection(torch.zeros(3))
