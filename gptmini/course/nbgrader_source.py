"""The teacher notebooks as nbgrader *source* notebooks: cell metadata derived from the solution markers.

An exercise is the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (its ``# hint:`` lines first).
From those markers alone, :func:`graded_notebook` derives what nbgrader needs, so the metadata never has to be
set by hand and can be derived again after anyone edits a notebook:

- every cell holding a marked region is a *solution* cell (the learner writes there);
- its ``check_…`` call is an *autograded test* cell worth one point per region it checks: when the check stands
  after the answer in the same cell, that tail becomes a cell of its own (id ``<id>-check``), since nbgrader
  grades a test cell by its output (an error or a line on stderr is 0 points, anything else full marks);
- the first code cell (set-up) and the markdown cells are *read-only*: the text the grading relies on.

``python -m gptmini.course nbgrader-source`` rewrites ``notebooks/`` this way; ``--check`` writes nothing and
exits 1 when a notebook is out of date (what the tests run). Nothing here imports nbgrader.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from pathlib import Path

__all__ = [
    "BEGIN",
    "END",
    "HINT",
    "NOTEBOOKS",
    "NotebookError",
    "regions",
    "load_notebook",
    "check_markers",
    "graded_notebook",
    "notebook_text",
    "points",
    "main",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "# hint:"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NEAR_MISS = re.compile(r"(BEGIN|END)\W*SOLUTION", re.I)  # nbgrader takes any line containing "BEGIN SOLUTION"
CHECK_CALL = re.compile(r"\b(check|compare)_\w+\(")
SCHEMA_VERSION = 3


class NotebookError(ValueError):
    """A notebook the tools cannot use; the message is one line that names the file and what to fix."""


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _as_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def load_notebook(path: Path) -> dict:
    """The notebook at ``path`` as JSON, or a :class:`NotebookError` saying what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NotebookError(f"{path}: not a notebook (not UTF-8 text)") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(f"{path}: not a notebook (broken JSON at line {err.lineno}: {err.msg})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook (no list of cells); open and save it in Jupyter")
    if nb.get("nbformat") != 4:
        raise NotebookError(f"{path}: nbformat {nb.get('nbformat')!r}; the course needs nbformat 4 (save it again)")
    for index, cell in enumerate(nb["cells"]):
        source = cell.get("source") if isinstance(cell, dict) else None
        ok_source = isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))
        if not ok_source or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise NotebookError(f"{path}: cell {index} is not a notebook cell (cell_type and source)")
    return nb


def regions(source: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each marked region of a code cell; ValueError for a malformed one."""
    found: list[tuple[int, int]] = []
    begin = None
    for i, line in enumerate(source.split("\n")):
        if not NEAR_MISS.search(line):
            continue
        marker = line.strip()
        if marker not in (BEGIN, END):
            raise ValueError(f"line {i + 1}: {marker!r} is not a marker: write {BEGIN!r} or {END!r} alone on its line")
        if marker == BEGIN:
            if begin is not None:
                raise ValueError(f"line {i + 1}: a second {BEGIN!r} before the {END!r} of line {begin + 1}'s region")
            begin = i
        else:
            if begin is None:
                raise ValueError(f"line {i + 1}: {END!r} without a {BEGIN!r} before it")
            body = source.split("\n")[begin + 1 : i]
            if not any(b.strip() and not b.strip().startswith("#") for b in body):
                raise ValueError(f"line {begin + 1}: an empty solution region (no code between the markers)")
            found.append((begin, i))
            begin = None
    if begin is not None:
        raise ValueError(f"line {begin + 1}: {BEGIN!r} without an {END!r}")
    return found


def check_markers(nb: dict, name: str) -> list[int]:
    """The indices of the cells holding exercises; NotebookError for markers in text cells or malformed ones."""
    cells = []
    for index, cell in enumerate(nb["cells"]):
        source = cell_source(cell)
        if cell["cell_type"] != "code":
            if NEAR_MISS.search(source):
                raise NotebookError(
                    f"{name}: cell {index} ({cell['cell_type']}) holds a solution marker: "
                    "answers go in code cells only (nbgrader would publish this one)"
                )
            continue
        try:
            if regions(source):
                cells.append(index)
        except ValueError as err:
            raise NotebookError(f"{name}: cell {index}, {err}") from None
    return cells


def _parse(source: str) -> ast.Module | None:
    """The cell as Python (IPython's ``%magics`` made into calls first), or None where it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:  # no IPython: parse the cell as it is
        pass
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _check_tail(source: str) -> int | None:
    """The line where a cell's ``check_…`` part starts, after its last region; None if it has none."""
    tree = _parse(source)
    found = regions(source)
    if tree is None or not found:
        return None
    lines = source.split("\n")
    last_end = found[-1][1] + 1  # 1-based line of the last END marker
    for statement in tree.body:
        if statement.lineno <= last_end:
            continue
        text = "\n".join(lines[statement.lineno - 1 : statement.end_lineno])
        if CHECK_CALL.search(text):
            start = statement.lineno - 1
            while start > last_end and lines[start - 1].lstrip().startswith("#"):
                start -= 1  # a comment right above the check goes with it
            return start
    return None


def _split_checks(cells: list[dict]) -> list[dict]:
    """Each exercise cell that also checks its answer, split in two: the answer, then the check."""
    out: list[dict] = []
    for cell in cells:
        source = cell_source(cell)
        start = _check_tail(source) if cell["cell_type"] == "code" else None
        head = "\n".join(source.split("\n")[:start]).rstrip() if start is not None else ""
        if start is None or not head:
            out.append(cell)
            continue
        tail = "\n".join(source.split("\n")[start:]).strip("\n")
        answer = copy.deepcopy(cell)
        answer["source"] = _as_lines(head)
        check = {
            "cell_type": "code",
            "execution_count": None,
            "id": f"{cell['id']}-check",
            "metadata": {},
            "outputs": [],
            "source": _as_lines(tail),
        }
        out.extend([answer, check])
    return out


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False, points: int = 0):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked}
    if grade:
        meta["points"] = points
    meta.update(schema_version=SCHEMA_VERSION, solution=solution, task=False)
    return meta


def points(nb: dict) -> dict[int, int]:
    """For each check cell (its index), the points it is worth: one per marked region it checks."""
    worth: dict[int, int] = {}
    cells = nb["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not regions(cell_source(cell)):
            continue
        later = range(index + 1, len(cells))
        check = next(
            (
                j
                for j in later
                if cells[j]["cell_type"] == "code"
                and CHECK_CALL.search(cell_source(cells[j]))
                and not regions(cell_source(cells[j]))
            ),
            None,
        )
        if check is None:
            raise ValueError(f"cell {index}: an exercise with no check_… cell after it (nothing to grade it by)")
        worth[check] = worth.get(check, 0) + len(regions(cell_source(cell)))
    return worth


def graded_notebook(nb: dict, name: str = "notebook") -> dict:
    """A copy of the teacher notebook ``nb`` with nbgrader's cell metadata derived from its markers.

    Idempotent: any nbgrader metadata already there is derived again from the cells as they are now.
    """
    check_markers(nb, name)
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out["cells"]):
        if not cell.get("id"):
            raise NotebookError(f"{name}: cell {index} has no id (nbformat 4.5): open and save it in JupyterLab")
        cell.setdefault("metadata", {}).pop("nbgrader", None)
    out["cells"] = _split_checks(out["cells"])
    try:
        worth = points(out)
    except ValueError as err:
        raise NotebookError(f"{name}: {err}") from None
    first_code = next((i for i, c in enumerate(out["cells"]) if c["cell_type"] == "code"), None)
    ids = [c["id"] for c in out["cells"]]
    if len(set(ids)) != len(ids):
        raise NotebookError(f"{name}: two cells share an id: {sorted({i for i in ids if ids.count(i) > 1})}")
    for index, cell in enumerate(out["cells"]):
        if cell["cell_type"] == "code" and regions(cell_source(cell)):
            meta = _meta(cell["id"], solution=True)
        elif index in worth:
            meta = _meta(cell["id"], grade=True, locked=True, points=worth[index])
        elif cell["cell_type"] == "markdown" or index == first_code:
            meta = _meta(cell["id"], locked=True)
        else:
            continue
        cell["metadata"] = {"nbgrader": meta, **cell["metadata"]}
    return out


def notebook_text(nb: dict) -> str:
    """The notebook file's text, laid out as Jupyter writes it."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def notebook_paths(src: Path) -> list[Path]:
    """The course notebooks in ``src`` (``NN_name.ipynb``), or a NotebookError if there are none."""
    if not src.is_dir():
        raise NotebookError(f"{src}: no such folder (give the folder of the teacher notebooks)")
    paths = sorted(src.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise NotebookError(f"{src}: no course notebooks (NN_name.ipynb) in this folder")
    return paths


def planned(src: Path) -> dict[Path, str]:
    """Every notebook of ``src`` with the text it should have; nothing is written."""
    out = {}
    for path in notebook_paths(src):
        out[path] = notebook_text(graded_notebook(load_notebook(path), path.name))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course nbgrader-source [--check] [--from NOTEBOOKS]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gptmini.course nbgrader-source", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--from", dest="src", type=Path, default=NOTEBOOKS, help="the teacher notebooks")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    plan = planned(args.src)  # every notebook checked before any is written
    stale = [path for path, text in plan.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(
                f"{path.name}: nbgrader metadata out of date: python -m gptmini.course nbgrader-source", file=sys.stderr
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(plan[path], encoding="utf-8")
    print(f"nbgrader source: {len(stale)} of {len(plan)} notebooks updated in {args.src}")
    return 0
