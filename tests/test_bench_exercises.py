"""bench/exercises.py: the hint heuristic flags code and passes prose, and the course's hints point, not tell."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_exercises", ROOT / "bench" / "exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "hint, rule",
    [
        ("# hint: the k-th largest: torch.topk(logits, k)", "call or index"),
        ("# hint: the row is logits[0, -1]", "call or index"),
        ("# hint: undo it with math.exp", "method or attribute"),
        ("# hint: shared = the words in common", "assignment or comparison"),
        ("# hint: keep where cumsum >= p", "assignment or comparison"),
        ("# hint: scores are q @ k over the root", "operator between names"),
        ("# hint: the queries run from n to 2*n", "operator between names"),
        ("# hint: read it at position i - n", "operator between names"),
        ("# hint: call `masked_fill` on the scores", "code span"),
    ],
)
def test_code_in_a_hint_is_flagged(bench, hint, rule):
    assert rule in bench.code_in(hint)


@pytest.mark.parametrize(
    "hint",
    [
        "# hint: the paper's h0 is U·W_e plus W_p: one-hot rows of the ids (B, T, V)",
        "# hint: every logit *below* it becomes minus infinity (probability 0 after the softmax)",
        "# hint: GPT-2 (section 2.3) scales the residual layers' initial weights by 1/√N, e.g. for pre-LN",
        "# hint: tokens per second are bytes per second over bytes per token; a GB is 10⁹ bytes",
        "# hint: a V × V table of counts; each row normalised is P(next | current)",
    ],
)
def test_prose_and_maths_pass(bench, hint):
    assert bench.code_in(hint) == []


def test_the_table_counts_regions_sizes_and_flagged_hints(bench, tmp_path, capsys):
    cell = (
        "def f(x):\n    ### BEGIN SOLUTION\n    # hint: use x.sum()\n    # hint: add them up\n"
        "    a = x\n\n    # a comment\n    return a\n    ### END SOLUTION\n\n\n"
        "### BEGIN SOLUTION\n# hint: one name\ny = 1\nz = [y] * 5\nz = z + z\nz = z + z\nw = z\n### END SOLUTION"
    )
    nbformat.write(new_notebook(cells=[new_code_cell(cell)]), tmp_path / "42_demo.ipynb")
    assert bench.regions_of(tmp_path / "42_demo.ipynb") == [
        (0, ["# hint: use x.sum()", "# hint: add them up"], 2),
        (0, ["# hint: one name"], 5),
    ]
    assert bench.main([str(tmp_path / "42_demo.ipynb")]) == 1
    out = capsys.readouterr().out
    assert " 42       2    3.5       5    1          3     1  [2, 5]" in out
    assert "42 cell 0 [call or index, method or attribute]: # hint: use x.sum()" in out


def test_no_hint_of_the_course_contains_code(bench, capsys):
    assert bench.main(["--quiet"]) == 0, capsys.readouterr().out
