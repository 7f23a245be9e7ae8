"""``python -m gptmini.course``: the commands a teacher runs (editions, nbgrader course and source, the sync)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gptmini.course.colab import repo_url
from gptmini.course.sync import badge, stale

ROOT = Path(__file__).resolve().parents[1]
FORK = "https://github.com/a-teacher/course-fork"
EXERCISE = "\n".join(
    ["def double(x):", "    ### BEGIN SOLUTION", "    # hint: add x to itself", "    return x + x"]
    + ["    ### END SOLUTION"]
)
CHECK = "check_double(double)"  # the exercise's check cell: nbgrader grades by it


def course(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m gptmini.course ARGS`` in ``cwd``, with this checkout's package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "gptmini.course", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def teacher(tmp_path) -> Path:
    src = tmp_path / "teacher"
    src.mkdir()
    cells = [new_markdown_cell("# demo"), new_code_cell(EXERCISE), new_code_cell(CHECK)]
    nbformat.write(new_notebook(cells=cells), src / "01_demo.ipynb")
    return src


def test_student_edition_writes_stubs_and_no_answers(teacher, tmp_path):
    done = course("student-edition", "out", "--from", str(teacher), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 notebooks" in done.stdout
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["01_demo.ipynb"]
    student = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    code = student.cells[1].source
    assert "raise NotImplementedError" in code and "return x + x" not in code and "# hint: add x to itself" in code
    assert student.cells[2].metadata.nbgrader["grade"] and student.cells[2].metadata.nbgrader["points"] == 1


def test_nbgrader_source_then_check(teacher, tmp_path):
    assert course("nbgrader-source", "--check", "--from", str(teacher), cwd=tmp_path).returncode == 1
    done = course("nbgrader-source", "--from", str(teacher), cwd=tmp_path)
    assert done.returncode == 0 and "1 of 1 notebooks updated" in done.stdout, done.stderr
    assert course("nbgrader-source", "--check", "--from", str(teacher), cwd=tmp_path).returncode == 0
    nb = nbformat.read(teacher / "01_demo.ipynb", as_version=4)
    assert [c.metadata.nbgrader["solution"] for c in nb.cells] == [False, True, False]


def test_student_edition_refuses_bad_input_in_one_line(teacher, tmp_path):
    assert "teacher notebooks' folder" in one_line_error(
        course("student-edition", str(teacher), "--from", str(teacher), cwd=tmp_path)
    )
    assert "out_dir" in one_line_error(course("student-edition", cwd=tmp_path))
    (tmp_path / "a-file").write_text("not a folder")
    assert "a-file" in one_line_error(course("student-edition", "a-file", "--from", str(teacher), cwd=tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n")]), broken / "02_broken.ipynb")
    assert "02_broken.ipynb" in one_line_error(course("student-edition", "out2", "--from", str(broken), cwd=tmp_path))
    assert "02_broken.ipynb" in one_line_error(course("nbgrader-course", "c", "--from", str(broken), cwd=tmp_path))
    assert not (tmp_path / "out2").exists() and not (tmp_path / "c").exists()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the files the sync reads and writes."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    return root


def test_sync_notebooks_check_then_repoint(checkout, tmp_path):
    assert course("sync-notebooks", "--check", "--root", str(checkout), cwd=tmp_path).returncode == 0
    done = course("sync-notebooks", "--root", str(checkout), "--repo-url", FORK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert repo_url(checkout) == FORK and not stale(checkout)
    nb = json.loads((checkout / "notebooks" / "11_inside_the_model.ipynb").read_text(encoding="utf-8"))
    assert badge(FORK, "11_inside_the_model.ipynb") in "".join(nb["cells"][0]["source"])
    # a hand edit: --check fails (exit 1, the file named on stdout, the fix on stderr) and writes nothing
    readme = checkout / "README.md"
    edited = readme.read_text(encoding="utf-8").replace("a-teacher/course-fork", "x/y", 1)
    readme.write_text(edited, encoding="utf-8")
    behind = course("sync-notebooks", "--check", "--root", str(checkout), cwd=tmp_path)
    assert behind.returncode == 1 and "README.md" in behind.stdout and "sync-notebooks" in behind.stderr
    assert readme.read_text(encoding="utf-8") == edited


def test_sync_notebooks_refuses_bad_input_in_one_line(checkout, tmp_path):
    assert "--bogus" in one_line_error(course("sync-notebooks", "--bogus", cwd=tmp_path))
    assert "drop --repo-url" in one_line_error(
        course("sync-notebooks", "--check", "--root", str(checkout), "--repo-url", FORK, cwd=tmp_path)
    )
    before = (checkout / "pyproject.toml").read_text(encoding="utf-8")
    assert "not-a-url" in one_line_error(
        course("sync-notebooks", "--root", str(checkout), "--repo-url", "not-a-url", cwd=tmp_path)
    )
    assert (checkout / "pyproject.toml").read_text(encoding="utf-8") == before


def test_unknown_or_missing_command(tmp_path):
    assert "unknown command 'publish'" in one_line_error(course("publish", cwd=tmp_path))
    assert "no command given" in one_line_error(course(cwd=tmp_path))
