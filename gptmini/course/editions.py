"""Teacher and student editions of the course notebooks.

The committed notebooks are the *teacher edition*: complete, every check passes. Each piece a learner is
meant to write sits between nbgrader's solution markers, inside a code cell::

    def softmax(s):
        ### BEGIN SOLUTION
        # hint: subtract the row's max, exponentiate, divide by the row's sum
        ...the answer...
        ### END SOLUTION

``python -m gptmini.course student-edition OUT_DIR`` writes the *student edition*: every marked region becomes
a stub that keeps its ``# hint:`` lines. Inside a function the stub raises NotImplementedError; at the top
level of a cell it sets each name the answer assigns to ``None``. Both are what the ``check_…`` helpers
report as "not yet" (one line, no exception), so Run All goes through and the notebook carries on with
the package's version. The answers go to ``OUT_DIR/solutions/NN_….md``, together with any older
``<details>`` solution blocks, which are taken out of the student notebooks.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BEGIN", "END", "Region", "stub_source", "student_notebook", "write_student_edition", "main"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "# hint:"
STUB_COMMENT = "# your code here"
DETAILS = re.compile(r"\n*<details>.*?</details>\n*", re.S)
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Region:
    """One marked answer: where it is, its hint lines, the answer and the stub that replaces it."""

    cell: int
    hints: list[str]
    answer: str
    stub: str
    teacher_source: str = ""


def _assigned_names(code: str) -> list[str]:
    """Names that ``code`` binds outside functions and classes (assignments, with/for blocks, defs), in order."""
    names: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
                targets = [node.target]
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.append(node.name)
            for target in targets:
                names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name) and n.id != "_")
            for field in ("body", "orelse", "finalbody"):  # with / if / for / try blocks bind at the top level too
                inner = getattr(node, field, None)
                if isinstance(inner, list) and not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    visit(inner)

    visit(ast.parse(code).body)
    return list(dict.fromkeys(names))


def _stub(answer: list[str], indent: str) -> list[str]:
    """Inside a function: raise NotImplementedError. At the top level: every assigned name = None."""
    if indent:
        return [f"{indent}raise NotImplementedError  {STUB_COMMENT}"]
    names = _assigned_names("\n".join(answer))
    if not names:
        raise ValueError("a top-level solution must assign a name (the stub sets it to None)")
    return [f"{name} = None  {STUB_COMMENT}" for name in names]


def stub_source(source: str) -> tuple[str, list[Region]]:
    """The cell ``source`` with every marked region replaced by its hints and a stub; and the regions."""
    lines = source.split("\n")
    out: list[str] = []
    regions: list[Region] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise ValueError(f"line {i + 1}: {END!r} without a {BEGIN!r} before it")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        try:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() in (BEGIN, END))
        except StopIteration:
            raise ValueError(f"line {i + 1}: {BEGIN!r} without an {END!r}") from None
        if lines[end].strip() != END:
            raise ValueError(f"line {end + 1}: solution regions cannot nest")
        body = lines[i + 1 : end]
        n_hints = next((n for n, b in enumerate(body) if not b.strip().startswith(HINT)), len(body))
        hints, answer = body[:n_hints], body[n_hints:]
        if not any(a.strip() for a in answer):
            raise ValueError(f"line {i + 1}: an empty solution region")
        dedented = [a[len(indent) :] if a.startswith(indent) else a for a in answer]
        stub = hints + _stub(dedented if indent else answer, indent)
        out.extend(stub)
        regions.append(Region(-1, [h.strip() for h in hints], "\n".join(dedented), "\n".join(stub)))
        i = end + 1
    return "\n".join(out), regions


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def student_notebook(nb) -> tuple[object, list[Region], list[str]]:
    """A student copy of the notebook ``nb`` (nbformat), its regions, and the ``<details>`` blocks it lost.

    Outputs and execution counts are cleared, so the copy is as clean as the committed teacher edition.
    """
    student = copy.deepcopy(nb)
    regions: list[Region] = []
    details: list[str] = []
    for index, cell in enumerate(student.cells):
        source = _source(cell)
        if cell.cell_type == "code":
            new, found = stub_source(source)
            for region in found:
                region.cell, region.teacher_source = index, source
            regions.extend(found)
            cell.source = new
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown" and "<details>" in source:
            details.extend(m.group(0).strip() for m in DETAILS.finditer(source))
            cell.source = DETAILS.sub("\n\n", source).strip("\n")
    kept = [c for c in student.cells if c.cell_type != "markdown" or _source(c).strip()]
    position = {id(c): i for i, c in enumerate(kept)}
    for region in regions:  # renumber: cells left empty by a removed <details> block are dropped
        region.cell = position[id(student.cells[region.cell])]
    student.cells = kept
    return student, regions, details


def _answer_cell(source: str) -> str:
    """The teacher's cell as the learner will want to compare it: markers and hint lines left out."""
    skip = (BEGIN, END)
    return "\n".join(
        line for line in source.split("\n") if line.strip() not in skip and not line.strip().startswith(HINT)
    )


def _solutions_markdown(name: str, regions: list[Region], details: list[str]) -> str:
    parts = [f"# Solutions: {name}\n"]
    by_cell: dict[int, list[Region]] = {}
    for region in regions:
        by_cell.setdefault(region.cell, []).append(region)
    for n, (cell, found) in enumerate(by_cell.items(), 1):
        hints = "".join(f"- {h[len(HINT) :].strip()}\n" for r in found for h in r.hints)
        code = _answer_cell(found[0].teacher_source)
        parts.append(f"## Exercise {n} (code cell {cell})\n\n{hints}\n```python\n{code}\n```\n")
    for block in details:
        parts.append("## From the notebook\n\n" + block.replace("<details>", "").replace("</details>", "").strip())
    return "\n".join(parts) + "\n"


def write_student_edition(out_dir: str | Path, src_dir: str | Path = NOTEBOOKS) -> list[Path]:
    """Write the student notebooks into ``out_dir`` and their answers into ``out_dir/solutions``."""
    try:
        import nbformat
    except ImportError:  # not a dependency of the package itself; it comes with JupyterLab
        raise SystemExit("the student edition needs nbformat: pip install nbformat (JupyterLab brings it)") from None

    out, src = Path(out_dir), Path(src_dir)
    if out.resolve() == src.resolve():
        raise ValueError("the student edition must not overwrite the teacher edition: pick another folder")
    (out / "solutions").mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        try:
            student, regions, details = student_notebook(nb)
        except ValueError as err:
            raise ValueError(f"{path.name}: {err}") from None
        nbformat.write(student, out / path.name)
        written.append(out / path.name)
        if regions or details:
            solutions = out / "solutions" / f"{path.stem}.md"
            solutions.write_text(_solutions_markdown(path.stem, regions, details), encoding="utf-8")
            written.append(solutions)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course student-edition OUT_DIR [--from NOTEBOOKS]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gptmini.course student-edition", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--from", dest="src", type=Path, default=NOTEBOOKS, help="the teacher notebooks")
    args = parser.parse_args(argv)
    written = write_student_edition(args.out_dir, args.src)
    n_notebooks = sum(p.suffix == ".ipynb" for p in written)
    print(f"student edition: {n_notebooks} notebooks and {len(written) - n_notebooks} solution files in {args.out_dir}")
    return 0
