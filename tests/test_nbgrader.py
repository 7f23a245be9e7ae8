"""Grading with nbgrader: the teacher notebooks as nbgrader source notebooks, released and graded by nbgrader itself.

Fast tests here check the metadata, the release ``nbgrader generate_assignment`` writes, the stub, and the
one-line errors. The slow ones run ``nbgrader autograde`` (it executes the notebooks in fast mode): the
teacher edition earns full marks, the blank release 0 points with every cell run, one answered exercise
exactly its points, a wrong one 0 with its check's hint in ``nbgrader generate_feedback``'s page.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from gptmini.course import __main__ as course_cli
from gptmini.course import editions, nbgrader_source
from gptmini.course.nbgrader_source import BEGIN, END, HINT, cell_source, graded_notebook, regions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
IDS = [n[:2] for n in NAMES]
TIMES: dict[str, float] = {}


def _teacher(stem: str) -> dict:
    return json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))


def _no_outputs(nb) -> bool:
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return all(not c.get("outputs") and c.get("execution_count") is None for c in code)


def _code_lines(text: str) -> list[str]:
    """The stripped lines of some code that are code (not blank, not comments)."""
    return [line.strip() for line in text.split("\n") if line.strip() and not line.strip().startswith("#")]


# ------------------------------------------------------------------------------------------- source notebooks
def test_the_committed_notebooks_are_up_to_date_nbgrader_sources(capsys):
    assert nbgrader_source.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("stem", NAMES, ids=IDS)
def test_every_exercise_has_a_graded_check_and_nbgrader_accepts_the_metadata(stem):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = _teacher(stem)
    MetadataValidator().validate_nb(nbformat.reads(json.dumps(nb), as_version=4))  # nbgrader's own validator
    cells = nb["cells"]
    meta = [c["metadata"].get("nbgrader") for c in cells]
    solutions = [i for i, m in enumerate(meta) if m and m["solution"]]
    grades = [i for i, m in enumerate(meta) if m and m["grade"]]
    n_regions = sum(len(regions(cell_source(cells[i]))) for i in solutions)
    assert solutions == [i for i, c in enumerate(cells) if c["cell_type"] == "code" and BEGIN in cell_source(c)]
    assert sum(meta[i]["points"] for i in grades) == n_regions  # one point per exercise
    for i in solutions:
        source = cell_source(cells[i])
        assert not re.search(r"\b(check|compare)_\w+\(", source.split(END)[-1]), f"{stem} cell {i}: check left in"
        for begin, _ in regions(source):
            assert source.split("\n")[begin + 1].strip().startswith(HINT), f"{stem} cell {i}: a region without hint"
        grade = next(j for j in grades if j > i)  # its check: the next graded cell, locked, no answer in it
        assert meta[grade]["locked"] and not meta[grade]["solution"]
        assert re.search(r"\b(check|compare)_\w+\(", cell_source(cells[grade]))
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert meta[first_code]["locked"] and all(
        meta[i]["locked"] for i, c in enumerate(cells) if c["cell_type"] == "markdown"
    )


@pytest.mark.parametrize("stem", ["04_multihead_attention_and_block", "11_inside_the_model"], ids=["04", "11"])
def test_the_metadata_is_derived_again_after_an_edit(stem):
    """Undo the derivation (metadata dropped, check cells merged back): deriving again gives the committed file."""
    committed = _teacher(stem)
    edited = copy.deepcopy(committed)
    merged = []
    for cell in edited["cells"]:
        cell["metadata"].pop("nbgrader", None)
        if cell["id"].endswith("-check") and merged and merged[-1]["id"] == cell["id"][: -len("-check")]:
            merged[-1]["source"] = cell_source(merged[-1]) + "\n\n\n" + cell_source(cell)
            continue
        merged.append(cell)
    edited["cells"] = merged
    assert len(merged) < len(committed["cells"])
    again = graded_notebook(edited, stem)
    assert again == committed
    assert graded_notebook(again, stem) == again  # idempotent


# ------------------------------------------------------------------------------------------------- the stub
FUNCTION_STUB = ["def f(x):", "    # hint: double it", "    # YOUR CODE HERE", "    raise NotImplementedError()"]


def _stubbed(source: str) -> str:
    cell = nbformat.v4.new_code_cell(source)
    assert editions.ClearSolutionsKeepingHints()._replace_solution_region(cell, "python")
    return cell.source


def test_the_stub_raises_in_a_function_and_keeps_the_hints():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    # hint: double it\n    return 2 * x\n    ### END SOLUTION"
    stub = _stubbed(source)
    assert stub.split("\n") == [
        "def f(x):",
        "    # hint: double it",
        "    # YOUR CODE HERE",
        "    raise NotImplementedError()",
    ]
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_the_stub_at_the_top_level_binds_none_and_never_stops_run_all():
    # a region that only updates a value keeps it; one inside a top-level loop stays a statement of the loop
    source = "\n".join(
        [
            "counts = {'a': 0}",
            "for key in ['a', 'a']:",
            "    ### BEGIN SOLUTION",
            "    # hint: add one",
            "    counts[key] = counts[key] + 1",
            "    ### END SOLUTION",
            "### BEGIN SOLUTION",
            "# hint: the total",
            "total, (first, _) = sum(counts.values()), ('a', 1)",
            "with open(__file__) as handle:",
            "    size = 1",
            "total += 0",
            "### END SOLUTION",
            "print(counts, total)",
        ]
    )
    stub = _stubbed(source)
    assert stub.split("\n") == [
        "counts = {'a': 0}",
        "for key in ['a', 'a']:",
        "    # hint: add one",
        "    pass  # YOUR CODE HERE",
        "# hint: the total",
        "total = None  # YOUR CODE HERE",
        "first = None  # YOUR CODE HERE",
        "handle = None  # YOUR CODE HERE",
        "size = None  # YOUR CODE HERE",
        "print(counts, total)",
    ]
    namespace: dict = {}
    exec(stub, namespace)  # runs: no module-level raise, counts intact
    assert namespace["counts"] == {"a": 0} and namespace["total"] is None


# ---------------------------------------------------------------------------------------------- bad input
def _write(folder: Path, name: str, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        nbformat.write(content, path)
    return path


def _exercise(marker_begin: str = BEGIN) -> str:
    return f"def f(x):\n    {marker_begin}\n    # hint: double it\n    return 2 * x\n    {END}\n\n\ncheck_f(f)"


GOOD = new_notebook(cells=[new_markdown_cell("# demo"), new_code_cell(_exercise())])
BAD_INPUTS = {
    "markdown": (new_notebook(cells=[new_markdown_cell(f"{BEGIN}\nthe answer\n{END}")]), "cell 0 (markdown)"),
    "raw": (new_notebook(cells=[new_raw_cell(f"x\n{BEGIN}\n42\n{END}")]), "cell 0 (raw)"),
    "near-miss": (
        new_notebook(cells=[new_code_cell(_exercise("# BEGIN SOLUTION"))]),
        "'# BEGIN SOLUTION' is not a marker",
    ),
    "suffix": (
        new_notebook(cells=[new_code_cell(_exercise("### BEGIN SOLUTION (exercise 1)"))]),
        "'### BEGIN SOLUTION (exercise 1)' is not a marker",
    ),
    "unclosed": (new_notebook(cells=[new_code_cell(f"def f():\n    {BEGIN}\n    return 1")]), "without an"),
    "unchecked": (new_notebook(cells=[new_code_cell(f"def f():\n    {BEGIN}\n    return 1\n    {END}")]), "no check_"),
    "cells-not-a-list": ('{"cells": 3, "nbformat": 4}', "no list of cells"),
    "a-list": ("[1, 2]", "no list of cells"),
    "truncated": ('{"cells": [{"cell_type": "code", "sou', "broken JSON at line 1"),
}


@pytest.mark.parametrize("command", ["student-edition", "nbgrader-course", "nbgrader-source"])
@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_notebooks_are_one_line_exit_2_and_nothing_changes(case, command, tmp_path, capsys):
    content, said = BAD_INPUTS[case]
    src = tmp_path / "teacher"
    _write(src, "01_good.ipynb", GOOD)
    _write(src, "02_bad.ipynb", content)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    args = ["--from", str(src)] if command == "nbgrader-source" else [str(tmp_path / "out"), "--from", str(src)]
    assert course_cli.main([command, *args]) == 2
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 1 and "02_bad.ipynb" in err[0] and said in err[0], err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["student-edition", "nbgrader-course"])
def test_bad_folders_are_one_line_exit_2(command, tmp_path, capsys):
    src = tmp_path / "teacher"
    _write(src, "01_good.ipynb", GOOD)
    before = (src / "01_good.ipynb").read_bytes()
    cases = {
        str(tmp_path / "nowhere"): "no such folder",
        str(tmp_path / "empty"): "no course notebooks",
    }
    (tmp_path / "empty").mkdir()
    for folder, said in cases.items():
        assert course_cli.main([command, str(tmp_path / "out"), "--from", folder]) == 2
        err = capsys.readouterr().err.strip().split("\n")
        assert len(err) == 1 and said in err[0] and folder in err[0], err
    for out in (src, src / "inside"):  # the output is the teacher's folder, or inside it
        assert course_cli.main([command, str(out), "--from", str(src)]) == 2
        err = capsys.readouterr().err.strip().split("\n")
        assert len(err) == 1 and "teacher notebooks' folder" in err[0], err
    assert sorted(p.name for p in src.iterdir()) == ["01_good.ipynb"] and (src / "01_good.ipynb").read_bytes() == before


def test_the_student_edition_of_a_small_notebook(tmp_path, capsys):
    src = tmp_path / "teacher"
    nb = copy.deepcopy(GOOD)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="✅")]
    nb.cells[1].execution_count = 3
    _write(src, "01_demo.ipynb", nb)
    assert course_cli.main(["student-edition", str(tmp_path / "out"), "--from", str(src)]) == 0
    assert "1 notebooks" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_demo.ipynb"]  # no solutions folder
    student = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    sources = [c.source for c in student.cells]
    assert sources[1].split("\n") == [
        "def f(x):",
        "    # hint: double it",
        "    # YOUR CODE HERE",
        "    raise NotImplementedError()",
    ]
    assert sources[2] == "check_f(f)" and student.cells[2].metadata.nbgrader["points"] == 1
    assert all(
        c.get("outputs", []) == [] and c.get("execution_count") is None for c in student.cells if c.cell_type == "code"
    )


# ------------------------------------------------------------------------------ the course folder (nbgrader)
@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """``python -m gptmini.course nbgrader-course``: source/ and release/ by ``nbgrader generate_assignment``."""
    root = tmp_path_factory.mktemp("nbgrader") / "course"
    started = time.perf_counter()
    assert course_cli.main(["nbgrader-course", str(root)]) == 0
    print(f"\nnbgrader-course, {len(NAMES)} notebooks: {time.perf_counter() - started:.1f} s")
    return root


def _outside_regions(source: str) -> list[str]:
    lines, inside = source.split("\n"), set()
    for begin, end in regions(source):
        inside.update(range(begin, end + 1))
    return [line for i, line in enumerate(lines) if i not in inside]


@pytest.mark.parametrize("stem", NAMES, ids=IDS)
def test_the_release_has_no_answer_keeps_the_hints_and_no_outputs(course, stem):
    teacher = _teacher(stem)
    release = json.loads((course / "release" / stem / f"{stem}.ipynb").read_text(encoding="utf-8"))
    assert (course / "source" / stem / f"{stem}.ipynb").exists()
    released_text = "\n".join(cell_source(c) for c in release["cells"])
    assert "BEGIN SOLUTION" not in released_text and "END SOLUTION" not in released_text
    released_lines = _code_lines(released_text)
    # a line may stand outside the markers too (e.g. a wrong version shown as a demo): only extra copies leak
    allowed = _code_lines("\n".join("\n".join(_outside_regions(cell_source(c))) for c in teacher["cells"]))
    for cell in teacher["cells"]:
        source = cell_source(cell)
        for begin, end in regions(source) if cell["cell_type"] == "code" else []:
            body = source.split("\n")[begin + 1 : end]
            for line in _code_lines("\n".join(body)):
                assert released_lines.count(line) <= allowed.count(line), f"{stem}: answer line released: {line}"
            for hint in (b.strip() for b in body if b.strip().startswith(HINT)):
                assert hint in released_text, f"{stem}: hint lost: {hint}"
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in release["cells"] if c["cell_type"] == "code"
    )
    for cell in release["cells"]:  # every stubbed cell is still Python
        if cell["cell_type"] == "code" and cell["metadata"].get("nbgrader", {}).get("solution"):
            ast.parse(cell_source(cell))


def test_nothing_for_students_holds_an_answer(course):
    assert sorted(p.name for p in course.iterdir()) == ["gradebook.db", "nbgrader_config.py", "release", "source"]
    assert sorted(p.name for p in (course / "release").iterdir()) == NAMES
    assert all(sorted(p.name for p in (course / "release" / n).iterdir()) == [f"{n}.ipynb"] for n in NAMES)


# ---------------------------------------------------------------------------------- autograde (executes)
def _environment(home: Path) -> dict[str, str]:
    from test_notebooks import _environment as notebook_environment

    env = notebook_environment(home)
    env.pop("TQDM_DISABLE", None)  # as a teacher runs it: progress bars (stderr) must not cost points
    return env


def _submit(course: Path, stem: str, student: str, nb: dict) -> None:
    folder = course / "submitted" / student / stem
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.ipynb").write_text(json.dumps(nb), encoding="utf-8")


def _autograde(course: Path, stem: str, home: Path) -> float:
    import os

    started = time.perf_counter()
    saved = dict(os.environ)
    os.environ.update(_environment(home))
    try:
        done = editions.nbgrader_command(course, "autograde", stem, "--force", check=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - started


def _grades(course: Path, stem: str, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(stem, stem, student)
        return {g.name: (g.score, g.max_score) for g in notebook.grades}


def _graded_cells(course: Path, stem: str, student: str) -> dict[str, dict]:
    nb = json.loads((course / "autograded" / student / stem / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return {c["id"]: c for c in nb["cells"]}


def _said(cell: dict, stream: str | None = None) -> str:
    return "".join(
        "".join(o.get("text", "")) for o in cell.get("outputs", []) if stream is None or o.get("name") == stream
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gptmini_home")


@pytest.mark.slow
@pytest.mark.parametrize("stem", NAMES, ids=IDS)
def test_autograde_teacher_full_marks_blank_release_zero_and_runs_through(course, home, stem):
    release = json.loads((course / "release" / stem / f"{stem}.ipynb").read_text(encoding="utf-8"))
    _submit(course, stem, "teacher", json.loads((course / "source" / stem / f"{stem}.ipynb").read_text("utf-8")))
    _submit(course, stem, "blank", release)
    seconds = _autograde(course, stem, home)
    print(f"\n{stem}: autograde of two submissions {seconds:.1f} s (GPTMINI_MODE=fast)")
    teacher, blank = _grades(course, stem, "teacher"), _grades(course, stem, "blank")
    assert teacher and all(score == most for score, most in teacher.values()), f"{stem}: {teacher}"
    assert all(score == 0 for score, _ in blank.values()), f"{stem}: {blank}"
    cells = _graded_cells(course, stem, "blank")
    errors = [i for i, c in cells.items() if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert not errors, f"{stem}: the blank release stops in cells {errors}"  # Run All goes through
    for grade_id in blank:
        said = _said(cells[grade_id])
        assert sum("not yet" in line for line in said.splitlines()) == 1 and "❌" not in said, f"{grade_id}: {said}"
        assert "not yet" in _said(cells[grade_id], "stderr")  # what nbgrader reads as 0 points


@pytest.mark.slow
def test_one_right_and_one_wrong_answer_get_their_points_and_the_hint_in_the_feedback(course, home, tmp_path):
    stem = "01_text_to_tokens"
    teacher = {c["id"]: c for c in _teacher(stem)["cells"]}
    release = json.loads((course / "release" / stem / f"{stem}.ipynb").read_text(encoding="utf-8"))
    for cell in release["cells"]:
        if cell["id"] == "nb01-26":  # my_get_batch, answered as the teacher did
            cell["source"] = teacher["nb01-26"]["source"]
        if cell["id"] == "nb01-36":  # the lower-cased vocabulary, counted with the capitals
            cell["source"] = "lower_vocab_size = len(set(text))"
    _submit(course, stem, "one-right-one-wrong", release)
    _autograde(course, stem, home)
    grades = _grades(course, stem, "one-right-one-wrong")
    assert grades["nb01-27"] == (1.0, 1.0), grades  # my_get_batch's check cell
    assert grades["nb01-37"] == (0.0, 1.0), grades
    assert sum(score for score, _ in grades.values()) == 1.0, grades
    done = editions.nbgrader_command(course, "generate_feedback", stem, "--student", "one-right-one-wrong", "--force")
    assert done.returncode == 0
    page = (course / "feedback" / "one-right-one-wrong" / stem / f"{stem}.html").read_text(encoding="utf-8")
    assert "that is the vocabulary with capitals" in page and "❌" in page
    assert "Score: 1.0 / 6.0" in page or re.search(r"1(\.0)?\s*/\s*6(\.0)?", page)


def test_the_course_command_derives_the_metadata_of_a_teachers_own_notebooks(tmp_path):
    """Notebooks with markers but no nbgrader metadata (a teacher's own): the command derives it first."""
    src = tmp_path / "teacher"
    _write(src, "01_demo.ipynb", GOOD)
    shutil.copy(NOTEBOOKS / "00_setup_and_tour.ipynb", src / "00_setup_and_tour.ipynb")
    out = tmp_path / "course"
    assert course_cli.main(["nbgrader-course", str(out), "--from", str(src)]) == 0
    release = nbformat.read(out / "release" / "01_demo" / "01_demo.ipynb", as_version=4)
    assert "raise NotImplementedError()" in release.cells[1].source and "return 2 * x" not in release.cells[1].source


@pytest.mark.parametrize("execution", [None, "autograde", "validate"])
def test_a_check_that_does_not_pass_goes_to_stderr_only_while_nbgrader_grades(execution, monkeypatch, capsys):
    from gptmini.course.checks import not_yet, passed
    from gptmini.course.checks._report import failed

    if execution is None:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    else:
        monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    passed("the sum matches gptmini")
    failed("the sum", "differs: 3 against 4", hint="count from 1")
    not_yet("total")
    out, err = capsys.readouterr()
    assert "✅ the sum matches gptmini" in out
    graded = ["❌ the sum differs: 3 against 4 (hint: count from 1)", "⏳ not yet: total"]
    for line in graded:
        assert (line in err) == (execution is not None) and (line in out) == (execution is None)
