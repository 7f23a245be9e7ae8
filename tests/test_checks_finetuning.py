"""The notebook-07 checks pass the package's versions, fail the usual slips naming them, and say "not yet"."""

from __future__ import annotations

import pytest
import torch

from gptmini.course.checks import package_version
from gptmini.course.checks.nb07 import (
    check_choice_softmax,
    check_classifier_head,
    check_classify,
    check_similarity_sum,
)
from gptmini.finetune import GPT1Classifier
from gptmini.model import GPT, GPTConfig


def test_the_package_versions_pass(capsys):
    assert check_classifier_head(package_version("classifier_probs"))
    assert check_similarity_sum(package_version("similarity_sum"))
    assert check_choice_softmax(package_version("choice_probs"))
    out = capsys.readouterr().out
    assert "❌" not in out and "⏳" not in out


def _classifier(start=True, end=True, read="extract", left=False, softmax=True):
    """A classify(clf, texts_ids, special) with the slips check_classify names."""

    def classify(clf, texts_ids, special):
        seqs = [[special.start] * start + list(ids) + [special.extract] * end for ids in texts_ids]
        t = max(len(seq) for seq in seqs)
        rows = [[0] * (t - len(seq)) + seq if left else seq + [0] * (t - len(seq)) for seq in seqs]
        at = {"extract": [t - 1 if left else len(seq) - 1 for seq in seqs], "last": [t - 1] * len(seqs)}
        extract = torch.tensor(at.get(read, [0] * len(seqs)))
        h = clf.gpt.hidden_states(torch.tensor(rows))
        logits = clf.head(h[torch.arange(len(seqs)), extract])
        return logits.softmax(-1) if softmax else logits

    return classify


def test_classify_passes_and_waits_for_a_stub(capsys):
    assert check_classify(package_version("classify")) and check_classify(_classifier())
    assert check_classify(lambda *args: (_ for _ in ()).throw(NotImplementedError())).pending
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (_classifier(read="last"), "read each row's state at its own ⟨e⟩"),
        (_classifier(read="first"), "that reads ⟨s⟩"),
        (_classifier(start=False), "starts with the start token"),
        (_classifier(end=False), "placed after the text"),
        (_classifier(left=True), "pad on the right"),
        (_classifier(softmax=False), "finish with a softmax"),
    ],
    ids=["last-position", "first-position", "no-start", "no-extract", "left-padding", "logits"],
)
def test_classify_names_the_slip(wrong, named, capsys):
    result = check_classify(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda h, e, w, b: (h[:, -1] @ w.T + b).softmax(-1), "extract position"),
        (lambda h, e, w, b: (h[:, 0] @ w.T + b).softmax(-1), "start token"),
        (lambda h, e, w, b: (h.mean(1) @ w.T + b).softmax(-1), "averages all positions"),
        (lambda h, e, w, b: h[torch.arange(h.size(0)), e] @ w.T + b, "those are the logits"),
        (lambda h, e, w, b: (h[torch.arange(h.size(0)), e] @ w.T + b).softmax(0), "over the batch"),
        (lambda h, e, w, b: (h[torch.arange(h.size(0)), e] @ w.T).softmax(-1), "bias"),
    ],
)
def test_classifier_head_names_the_slip(wrong, named, capsys):
    result = check_classifier_head(wrong)
    assert not result and not result.pending
    assert named in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda a, b: torch.cat([a, b], dim=-1), "concatenates"),
        (lambda a, b: a, "one order only"),
        (lambda a, b: (a + b) / 2, "the mean"),
        (lambda a, b: a * b, "multiplies"),
    ],
)
def test_similarity_sum_names_the_slip(wrong, named, capsys):
    result = check_similarity_sum(wrong)
    assert not result
    assert named in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda h, w, b: (h @ w.T + b).squeeze(-1).softmax(0), "over the batch"),
        (lambda h, w, b: (h @ w.T + b).squeeze(-1).sigmoid(), "sigmoid"),
        (lambda h, w, b: (h @ w.T + b).squeeze(-1), "raw scores"),
        (lambda h, w, b: (h @ w.T + b).softmax(-1), "single score"),
    ],
)
def test_choice_softmax_names_the_slip(wrong, named, capsys):
    result = check_choice_softmax(wrong)
    assert not result
    assert named in capsys.readouterr().out


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("check", [check_classifier_head, check_similarity_sum, check_choice_softmax])
@pytest.mark.parametrize("unwritten", [_stub, lambda *args: None])
def test_an_unwritten_answer_is_one_not_yet_line(check, unwritten, capsys):
    result = check(unwritten)
    assert not result and result.pending
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "not yet" in lines[0]


def test_a_check_given_no_function_is_misuse():
    with pytest.raises(TypeError):
        check_similarity_sum(torch.zeros(2))


@pytest.mark.parametrize("kind", ["classification", "similarity", "multiple_choice"])
def test_the_package_versions_agree_with_the_classifier(kind):
    """What the exercises compute by hand is what GPT1Classifier computes (eval mode: no dropout)."""
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=40, block_size=12, n_layer=1, n_head=2, n_embd=16, dropout=0.0, norm="post"))
    clf = GPT1Classifier(gpt, kind, n_classes=3).eval()
    k = {"classification": 1, "similarity": 2, "multiple_choice": 4}[kind]
    idx = torch.randint(0, 40, (2, k, 10))
    extract = torch.tensor([[9] * k, [6] * k])
    with torch.no_grad():
        expected = clf(idx, extract).logits.softmax(-1)
        h = gpt.hidden_states(idx.view(-1, 10)).view(2, k, 10, -1)
        rows = torch.arange(2)
        if kind == "classification":
            got = package_version("classifier_probs")(h[:, 0], extract[:, 0], clf.head.weight, clf.head.bias)
        elif kind == "similarity":
            pooled = package_version("similarity_sum")(h[rows, 0, extract[:, 0]], h[rows, 1, extract[:, 1]])
            got = (pooled @ clf.head.weight.T + clf.head.bias).softmax(-1)
        else:
            states = torch.stack([h[rows, j, extract[:, j]] for j in range(k)], dim=1)
            got = package_version("choice_probs")(states, clf.head.weight, clf.head.bias)
    torch.testing.assert_close(got, expected)


def test_notebook_07_prose_quotes_every_range_its_cells_expect():
    """Each range notebook 07 checks with expect (directly or through a `quoted` table) is quoted in its text."""
    import json
    import re
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "07_gpt1_finetuning.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    prose = " ".join(" ".join("".join(c["source"]).split()) for c in nb["cells"] if c["cell_type"] == "markdown")
    ranges = re.findall(r"expect\([^,]+, ([\d.]+), ([\d.]+),", code) + re.findall(r'": \(([\d.]+), ([\d.]+)\)', code)
    assert len(ranges) >= 14, "notebook 07 should check every figure its text quotes"
    missing = [(a, b) for a, b in ranges if f"{float(a):.2f}–{float(b):.2f}" not in prose]
    assert not missing, f"ranges checked in code but not quoted in the text: {missing}"
