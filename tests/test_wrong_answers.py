"""bench/wrong_answers.py: the student edition with typical wrong answers, each named by its check.

The static test checks every planted answer lands in exactly one exercise and makes valid Python; the slow
ones run the wrong editions of two notebooks (fast mode) and need each check to name its mistake. The bench
script runs all thirteen.
"""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_wrong_answers", ROOT / "bench" / "wrong_answers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_every_notebook_has_two_wrong_answers_that_land_in_one_exercise_each(bench):
    notebooks = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(bench.WRONG) == notebooks
    for name, wrongs in bench.WRONG.items():
        assert len(wrongs) >= 2, name
        path = next((ROOT / "notebooks").glob(f"{name}_*.ipynb"))
        nb, cells = bench.wrong_edition(path, wrongs)
        assert len(set(cells.values())) == len(wrongs) or name == "10", name  # 10: two answers in one class
        for wrong, index in cells.items():
            source = nb.cells[index].source
            assert wrong.code.splitlines()[-1].strip() in source
            ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def test_a_locator_that_matches_no_exercise_is_an_error(bench):
    path = next((ROOT / "notebooks").glob("03_*.ipynb"))
    with pytest.raises(ValueError, match="0 exercises"):
        bench.wrong_edition(path, [bench.Wrong("no such answer", "x = 1", "w", "s")])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["03", "04"])
def test_the_checks_name_the_planted_mistakes(bench, name, tmp_path):
    pytest.importorskip("nbclient")
    results = bench.run(name, tmp_path)
    assert [line is not None for _, line in results] == [True] * len(results), results
