"""expect(): silent inside the range the text quotes, one line outside it, a record for the benchmark."""

import json
import re
from pathlib import Path

import pytest
import torch

from gptmini.course.expect import expect


@pytest.fixture(autouse=True)
def classroom(monkeypatch):
    monkeypatch.setenv("GPTMINI_MODE", "classroom")
    monkeypatch.delenv("GPTMINI_RECORD", raising=False)


@pytest.mark.parametrize("value", [4.3, 4.45, 4.6])
def test_inside_the_range_prints_nothing(value, capsys):
    assert expect(value, 4.3, 4.6, "the pre-LN loss") is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("value", "side"), [(5.12, "above"), (4.29, "below")])
def test_outside_the_range_prints_one_line_with_both_numbers(value, side, capsys):
    expect(value, 4.3, 4.6, "the pre-LN model's final validation loss")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(f"this run: {value:.4g}; the text says 4.3–4.6 for the pre-LN model's final validation loss")
    assert side in out


def test_nan_is_outside(capsys):
    expect(float("nan"), 0.0, 1.0, "a loss")
    assert "this run: nan" in capsys.readouterr().out


def test_tensors_and_big_integers_read_well(capsys):
    expect(torch.tensor(0.5), 0.4, 0.6, "an accuracy")
    assert capsys.readouterr().out == ""
    expect(39_383_808, 39_383_040, 39_383_040, "the embedding parameters")
    assert capsys.readouterr().out.startswith("this run: 39,383,808; the text says 39,383,040 for")


def test_other_mode_is_not_judged_but_said(monkeypatch, capsys):
    monkeypatch.setenv("GPTMINI_MODE", "fast")
    expect(9.9, 4.3, 4.6, "the pre-LN loss", mode="classroom")
    out = capsys.readouterr().out
    assert out == "this run (fast mode): 9.9; the text's 4.3–4.6 for the pre-LN loss was measured in classroom mode\n"
    monkeypatch.setenv("GPTMINI_MODE", "classroom")
    expect(4.4, 4.3, 4.6, "the pre-LN loss", mode="classroom")
    assert capsys.readouterr().out == ""


def test_bad_ranges_are_errors():
    with pytest.raises(ValueError, match="above high"):
        expect(1.0, 2.0, 1.0, "x")
    with pytest.raises(ValueError, match="say what"):
        expect(1.0, 0.0, 2.0, " ")


def test_records_every_call_when_asked(tmp_path, monkeypatch, capsys):
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("GPTMINI_RECORD", str(path))
    expect(0.5, 0.4, 0.6, "accuracy A")
    expect(0.9, 0.4, 0.6, "accuracy B", mode="classroom")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["what"], r["value"], r["inside"]) for r in rows] == [
        ("accuracy A", 0.5, True),
        ("accuracy B", 0.9, False),
    ]
    assert rows[1]["low"] == 0.4 and rows[1]["high"] == 0.6 and rows[1]["run_mode"] == "classroom"


def test_notebook_08_prose_quotes_every_range_its_cells_expect():
    """Each expect(value, low, high, ...) in notebook 08 has its range (or, if narrow, its middle) in the text."""
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "08_gpt1_to_gpt2.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    prose = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    ranges = [(float(a), float(b)) for a, b in re.findall(r"expect\([^,]+, ([\d.]+), ([\d.]+),", code)]
    assert len(ranges) >= 6, "notebook 08 should check every figure its text quotes"
    missing = [(a, b) for a, b in ranges if f"{a:.2f}–{b:.2f}" not in prose and f"{(a + b) / 2:.2f}" not in prose]
    assert not missing, f"ranges checked in code but not quoted in the text: {missing}"
