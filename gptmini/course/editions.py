"""The student edition and the nbgrader course folder, both made by nbgrader's own preprocessors.

The committed notebooks are the teacher edition and nbgrader *source* notebooks
(:mod:`gptmini.course.nbgrader_source`). Two commands make what students get:

- ``python -m gptmini.course student-edition OUT_DIR``: the release notebooks for self-study, no database;
- ``python -m gptmini.course nbgrader-course COURSE_DIR``: an nbgrader course folder, ``source/`` (the teacher's,
  answers included) and ``release/`` (for students), made by ``nbgrader generate_assignment``; then
  ``nbgrader autograde`` and ``generate_feedback`` grade submissions there.

nbgrader's stub replaces an answer with ``raise NotImplementedError()``; that is right inside a function (its
check says "not yet" and the notebook goes on with gptmini's version), but at the top level of a cell it would
stop Run All. :class:`ClearSolutionsKeepingHints` is nbgrader's ClearSolutions with two changes: it keeps the
region's ``# hint:`` lines, and outside a function it sets each name the answer binds to None (the checks say
"not yet" for None) instead of raising. Nothing of the answers is written into a folder meant for students.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .nbgrader_source import (
    BEGIN,
    END,
    HINT,
    NOTEBOOKS,
    NotebookError,
    _parse,
    graded_notebook,
    load_notebook,
    notebook_paths,
    notebook_text,
    regions,
)

__all__ = [
    "BEGIN",
    "END",
    "COURSE_ID",
    "ClearSolutionsKeepingHints",
    "configure",
    "release_notebook",
    "write_student_edition",
    "write_course",
    "main",
    "course_main",
]

COURSE_ID = "gptmini"
CELL_TIMEOUT_S = 1800  # nbgrader's default is 30 s a cell; a classroom-mode training cell takes minutes
TOP_LEVEL_STUB = "  # YOUR CODE HERE"
CONFIG = '''"""nbgrader's settings for the gptmini course (written by python -m gptmini.course nbgrader-course)."""

from gptmini.course.editions import configure

configure(c)  # noqa: F821 (nbgrader defines c)
'''


def _nbgrader():
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise NotebookError("the teacher tools need nbgrader: pip install 'gptmini[teacher]'") from None


def _bound_names(statements: list[ast.stmt]) -> list[str]:
    """Names the statements bind as plain names (``x = …``, ``for x in``, ``with … as x``, ``def x``), in order.

    ``counts[key] = …`` or ``total += …`` change a value that exists already: they bind nothing new.
    """
    names: list[str] = []
    for node in statements:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
            continue
        for target in targets:
            stack = [target]
            while stack:
                t = stack.pop(0)
                if isinstance(t, ast.Name) and t.id != "_":
                    names.append(t.id)
                elif isinstance(t, (ast.Tuple, ast.List)):
                    stack.extend(t.elts)
                elif isinstance(t, ast.Starred):
                    stack.append(t.value)
        for field in ("body", "orelse", "finalbody"):  # if / for / with / try blocks bind at the same level
            names.extend(_bound_names(getattr(node, field, None) or []))
        for handler in getattr(node, "handlers", None) or []:
            names.extend(_bound_names(handler.body))
    return list(dict.fromkeys(names))


def _in_function(tree: ast.Module | None, line: int) -> bool:
    """Whether 1-based ``line`` lies inside a function body of ``tree`` (unknown: assume it does)."""
    if tree is None:
        return True
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno < line <= node.end_lineno
        for node in ast.walk(tree)
    )


def _region_statements(tree: ast.Module | None, begin: int, end: int) -> list[ast.stmt]:
    """The statements of ``tree`` that lie wholly between 1-based lines ``begin`` and ``end``, outermost only."""
    if tree is None:
        return []
    inside = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and begin < n.lineno and n.end_lineno < end]
    return [
        n
        for n in inside
        if not any(o is not n and o.lineno <= n.lineno and n.end_lineno <= o.end_lineno and o in inside for o in inside)
    ]


try:
    from nbgrader.preprocessors import ClearSolutions as _ClearSolutions
except ImportError:  # a student's install: the class is only needed by the teacher commands
    _ClearSolutions = object


class ClearSolutionsKeepingHints(_ClearSolutions):
    """nbgrader's ClearSolutions, keeping ``# hint:`` lines, and with a stub that does not stop Run All.

    In a function: nbgrader's ``code_stub`` (``raise NotImplementedError()``), after the hints. Elsewhere: one
    ``name = None`` per name the answer binds (``pass`` if none), which the checks report as "not yet".
    """

    def _replace_solution_region(self, cell, language: str) -> bool:
        if cell.cell_type != "code":
            return super()._replace_solution_region(cell, language)
        source = cell.source
        found = regions(source)  # malformed markers were refused before; this raises if they come here anyway
        if not found:
            return False
        tree = _parse(source)
        lines = source.split("\n")
        out: list[str] = []
        previous = 0
        for begin, end in found:
            out.extend(lines[previous:begin])
            indent = re.match(r"\s*", lines[begin]).group(0)
            body = lines[begin + 1 : end]
            n_hints = next((n for n, b in enumerate(body) if not b.strip().startswith(HINT)), len(body))
            out.extend(body[:n_hints])
            if _in_function(tree, begin + 1):
                out.extend(indent + stub for stub in self.code_stub[language].split("\n"))
            else:
                names = _bound_names(_region_statements(tree, begin + 1, end + 1))
                out.extend(f"{indent}{name} = None{TOP_LEVEL_STUB}" for name in names)
                if not names:
                    out.append(f"{indent}pass{TOP_LEVEL_STUB}")
            previous = end + 1
        out.extend(lines[previous:])
        cell.source = "\n".join(out)
        return True


def configure(c) -> None:
    """nbgrader's settings for the course: its id, the stub above, time for a classroom-mode cell."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions

    c.CourseDirectory.course_id = COURSE_ID
    default = GenerateAssignment.class_traits()["preprocessors"].default()
    c.GenerateAssignment.preprocessors = [ClearSolutionsKeepingHints if p is ClearSolutions else p for p in default]
    c.Execute.timeout = CELL_TIMEOUT_S


def release_notebook(nb: dict, name: str = "notebook"):
    """The student (release) copy of teacher notebook ``nb``: nbgrader's generate_assignment steps, no database.

    Returns an nbformat NotebookNode: answers replaced by stubs (hints kept), outputs cleared, cells locked.
    """
    _nbgrader()
    import nbformat
    from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput, LockCells

    node = nbformat.reads(json.dumps(graded_notebook(nb, name)), as_version=4)
    resources: dict = {}
    steps = [LockCells(), ClearSolutionsKeepingHints(), ClearOutput(), ClearHiddenTests(), ClearMarkScheme()]
    for step in [*steps, CheckCellMetadata()]:
        node, resources = step.preprocess(node, resources)
    return node


def _checked_folders(out: Path, src: Path) -> list[Path]:
    """The teacher notebooks of ``src``, after refusing an ``out`` that is ``src`` or lies inside it."""
    paths = notebook_paths(src)
    out_r, src_r = out.resolve(), src.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise NotebookError(f"{out}: that is the teacher notebooks' folder (or inside it): pick a folder elsewhere")
    if out.exists() and not out.is_dir():
        raise NotebookError(f"{out}: a file is in the way (give a folder)")
    return paths


def write_student_edition(out_dir: str | Path, src_dir: str | Path = NOTEBOOKS) -> list[Path]:
    """Write the student edition of every notebook of ``src_dir`` into ``out_dir`` (answers nowhere)."""
    _nbgrader()
    import nbformat

    out, src = Path(out_dir), Path(src_dir)
    paths = _checked_folders(out, src)
    releases = {path.name: release_notebook(load_notebook(path), path.name) for path in paths}  # all checked first
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, node in releases.items():
        (out / name).write_text(notebook_text(json.loads(nbformat.writes(node))), encoding="utf-8")
        written.append(out / name)
    return written


def _with_scripts(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this Python's scripts folder first on PATH: nbgrader runs ``alembic`` to make its gradebook."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(env)
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH", "")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env


def nbgrader_command(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in the course folder ``course`` (nbgrader's own command and its config file)."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        capture_output=True,
        text=True,
        check=check,
        env=_with_scripts(dict(os.environ)),
    )


def write_course(course_dir: str | Path, src_dir: str | Path = NOTEBOOKS) -> list[Path]:
    """An nbgrader course folder: ``source/NN_…/NN_….ipynb`` (teacher) and ``release/…`` (students).

    One assignment per notebook; nbgrader's generate_assignment (its API, one process for all) writes each
    release and the gradebook, with the settings of the ``nbgrader_config.py`` written beside them.
    """
    _nbgrader()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    course, src = Path(course_dir), Path(src_dir)
    paths = _checked_folders(course, src)
    sources = {path.stem: notebook_text(graded_notebook(load_notebook(path), path.name)) for path in paths}
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    config = Config()
    configure(config)
    config.CourseDirectory.root = str(course.resolve())
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    released = []
    saved_path = os.environ.get("PATH", "")
    os.environ["PATH"] = _with_scripts(dict(os.environ))["PATH"]
    try:
        for stem, text in sources.items():
            folder = course / "source" / stem
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stem}.ipynb").write_text(text, encoding="utf-8")
            result = api.generate_assignment(stem, force=True, create=True)
            if not result["success"]:
                said = [line for line in (result.get("error") or "").splitlines() if line.strip()]
                raise NotebookError(f"{stem}: nbgrader generate_assignment failed: {(said or ['see its log'])[-1]}")
            released.append(course / "release" / stem / f"{stem}.ipynb")
    finally:
        os.environ["PATH"] = saved_path
    return released


def main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course student-edition OUT_DIR [--from NOTEBOOKS]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gptmini.course student-edition",
        description="The student edition for self-study: nbgrader's release notebooks, no database.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--from", dest="src", type=Path, default=NOTEBOOKS, help="the teacher notebooks")
    args = parser.parse_args(argv)
    written = write_student_edition(args.out_dir, args.src)
    print(
        f"student edition: {len(written)} notebooks in {args.out_dir} (no answers; the teacher edition is {args.src})"
    )
    return 0


def course_main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course nbgrader-course COURSE_DIR [--from NOTEBOOKS]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gptmini.course nbgrader-course",
        description="An nbgrader course folder: source/ (answers: the teacher's) and release/ (for students).",
    )
    parser.add_argument("course_dir", type=Path)
    parser.add_argument("--from", dest="src", type=Path, default=NOTEBOOKS, help="the teacher notebooks")
    args = parser.parse_args(argv)
    released = write_course(args.course_dir, args.src)
    print(
        f"nbgrader course in {args.course_dir}: {len(released)} assignments; release/ is for students, "
        "source/ and gradebook.db hold the answers: keep them to yourself"
    )
    return 0
