"""bench/course.py: choosing notebooks, and the table it writes (the notebooks themselves run in test_notebooks)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_course", ROOT / "bench" / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_select_by_number(bench):
    assert [p.name[:2] for p in bench.select(["10", "08"])] == ["08", "10"]
    assert len(bench.select([])) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    with pytest.raises(SystemExit, match="99"):
        bench.select(["99"])


def test_table_states_the_machine_and_judges_each_key_number(bench):
    machine = dict(
        mode="classroom", when="2026-01-01 10:00", nproc=2, cpu="Some CPU", torch="2.0", threads=1, python="3.11",
        network="off", commit="abc", home="/h", checkpoints=["gpt2-shakespeare"],
    )  # fmt: skip
    key = dict(what="the pre-LN loss", value=4.6, low=4.5, high=4.7, mode="classroom", run_mode="classroom")
    results = [
        dict(
            notebook="08_x.ipynb", mode="classroom", checkpoints_before=[], error=None, load_before=3.0,
            load_after=5.0, seconds=125.0, slowest_cell={"index": 19, "seconds": 60.0, "first_line": "train"},
            key_numbers=[dict(key, inside=True), dict(key, value=5.1, inside=False)],
        ),
        dict(
            notebook="10_y.ipynb", mode="classroom", checkpoints_before=["gpt2-shakespeare"], error="KeyError: x",
            load_before=1.0, load_after=1.0, seconds=3.0, key_numbers=[dict(key, inside=None, mode="full")],
        ),
    ]  # fmt: skip
    table = bench.markdown(results, machine)
    assert "`nproc` 2, Some CPU" in table and "checkpoints there at the start: gpt2-shakespeare" in table
    rows = [line for line in table.splitlines() if ".ipynb |" in line]
    assert len(rows) == 2
    assert "2.1 min (125 s)" in rows[0] and "60 s (cell 19: `train`)" in rows[0] and "3.0 → 5.0" in rows[0]
    assert "the pre-LN loss: 4.6 (4.5–4.7, ✓)" in rows[0]
    assert "the pre-LN loss: 5.1 (4.5–4.7, ✗ outside)" in rows[0]
    assert "**failed**: KeyError: x" in rows[1] and "not judged (full range)" in rows[1]
