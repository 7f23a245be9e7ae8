"""The notebook-11 checks pass a correct score and fail the usual slips, naming them."""

from __future__ import annotations

import torch

from gptmini.course.checks.nb11 import check_induction_score, check_previous_token_score


def prev_right(p):
    return p.diagonal(-1).mean()


def induction_right(p, n):
    i = torch.arange(n, 2 * n)
    return p[i, i - n + 1].mean()


def test_previous_token_check(capsys):
    assert check_previous_token_score(prev_right)
    assert "✅" in capsys.readouterr().out
    cases = {
        lambda p: p.diagonal().mean(): "main diagonal",
        lambda p: p.diagonal(-1).sum() / p.shape[0]: "query 0 has no previous token",
        lambda p: p.diagonal(-1).sum(): "a sum, not a mean",
        lambda p: p.diagonal(1).mean(): "look one step back",
    }
    for wrong, hint in cases.items():
        result = check_previous_token_score(wrong)
        assert not result and hint in capsys.readouterr().out
    assert not check_previous_token_score(lambda p: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not check_previous_token_score(lambda p: None)


def test_induction_check(capsys):
    assert check_induction_score(induction_right)
    assert "✅" in capsys.readouterr().out

    def duplicate(p, n):
        i = torch.arange(n, 2 * n)
        return p[i, i - n].mean()

    def too_far(p, n):
        i = torch.arange(n, 2 * n - 1)
        return p[i, i - n + 2].mean()

    def whole_sequence(p, n):
        return p.diagonal(-(n - 1)).mean()

    def diagonal(p, n):
        i = torch.arange(n, 2 * n)
        return p[i, i].mean()

    def late_start(p, n):
        i = torch.arange(n + 1, 2 * n)
        return p[i, i - n + 1].mean()

    cases = {
        duplicate: "duplicate-token head",
        too_far: "one step too far",
        whole_sequence: "second copy only",
        diagonal: "main diagonal",
        late_start: "start at query n",
    }
    for wrong, hint in cases.items():
        result = check_induction_score(wrong)
        out = capsys.readouterr().out
        assert not result and hint in out, (wrong.__name__, out)
