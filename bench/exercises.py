"""The exercises of every notebook: how many, how large, and which hints give the code away.

    python bench/exercises.py [--quiet] [--checks] [notebooks ...]

For each notebook: the number of marked regions (``### BEGIN SOLUTION`` ... ``### END SOLUTION``), their
sizes in lines of code (comments and blank lines not counted: median, largest, how many have 5 lines or
more), and every ``# hint:`` line that looks like code. A hint should name the idea or the paper's
equation; the answer lives in the solution only. The heuristic flags a hint with

- a call or an index: a name of two characters or more followed by ``(`` or ``[`` (``topk(``, ``state[``);
  one-letter maths such as P(u) or f(x) passes;
- a method or attribute: ``name.name`` (``x.size``, ``torch.cat``; "e.g." and "i.e." pass);
- an assignment or a comparison sign: ``=``, ``==``, ``<=``, ``>=``, ``!=``, ``+=``;
- operators between names (or a number and a name): ``a * b``, ``2*n``, ``a@b``, ``a ** b``, ``a // b``
  (spaced on both sides or on neither, so *emphasis* passes), and ``a - b``, ``a + b``, ``a / b``,
  ``a < b``, ``a > b`` written with spaces (so "pre-LN" and "GB/s" pass);
- a code span in backticks.

Exit status 1 when a hint is flagged (``--quiet`` prints the table only). ``--checks`` also lists the hints
the ``check_…`` helpers print after a wrong answer (gptmini/course/checks/nbNN.py) that the same rules flag:
a figure for the report, not a failure (a hint after a mistake may name the function to look at).
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import sys
from pathlib import Path

from gptmini.course.nbgrader_source import HINT, regions

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECKS = Path(__file__).resolve().parents[1] / "gptmini" / "course" / "checks"

RULES: dict[str, re.Pattern[str]] = {
    "call or index": re.compile(r"\b[A-Za-z_]\w+[(\[]"),
    "method or attribute": re.compile(r"\b(?!e\.g\b|i\.e\b)[A-Za-z_]\w*\.[A-Za-z_]\w*"),
    "assignment or comparison": re.compile(r"[=!<>+\-*/]?=|(?<![-=<>])>(?!>)\s*\d"),
    "operator between names": re.compile(
        r"\b(?:[A-Za-z_]\w*|\d+)(?:\s+(?:\*\*|//|[*@])\s+|(?:\*\*|//|[*@]))[A-Za-z_(]"
        r"|\b[A-Za-z_]\w*\s+[-+/<>%]\s+[A-Za-z_(]"
    ),
    "code span": re.compile(r"`[^`]+`"),
}


def code_in(hint: str) -> list[str]:
    """The rules a hint line breaks (empty: it reads as prose or maths)."""
    text = hint.strip().removeprefix("# hint:").strip()
    return [name for name, pattern in RULES.items() if pattern.search(text)]


def _text(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's literal parts with ``{…}`` for each field."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return left + right if left is not None and right is not None else None
    return None


def check_hints(path: Path) -> list[str]:
    """The hint texts of one check module: ``hint=…`` and ``hint = …``, failed()'s third argument, and the
    keys of a slips table (a dict from hint to wrong answer) or the hint of a (wrong answer, hint) pair."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Call):
            candidates += [k.value for k in node.keywords if k.arg == "hint"]
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in ("failed", "not_yet") and len(node.args) >= 3:
                candidates.append(node.args[2])
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("hint", "whint") for t in node.targets):
            candidates.append(node.value)
        elif isinstance(node, ast.Dict):
            candidates += [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and _text(node.elts[0]) is None:
            candidates.append(node.elts[1])
        found += [t for t in map(_text, candidates) if t is not None and len(t) > 20]
    return list(dict.fromkeys(found))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def regions_of(path: Path) -> list[tuple[int, list[str], int]]:
    """(cell index, hint lines, lines of code) for every marked region of the notebook at ``path``."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = _source(cell).split("\n")
        for begin, end in regions(_source(cell)):
            body = lines[begin + 1 : end]
            hints = [line.strip() for line in body if line.strip().startswith(HINT)]
            code = [line for line in body if line.strip() and not line.strip().startswith("#")]
            found.append((index, hints, len(code)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook of the course")
    parser.add_argument("--quiet", action="store_true", help="the table only, not each flagged hint")
    parser.add_argument("--checks", action="store_true", help="also the check helpers' hints that show code")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

    rows, flagged, all_sizes = [], [], []
    for path in paths:
        regions = regions_of(path)
        sizes = [n for _, _, n in regions]
        all_sizes += sizes
        bad = [(cell, hint, code_in(hint)) for cell, hints, _ in regions for hint in hints if code_in(hint)]
        flagged += [(path.name, *b) for b in bad]
        n_hints = sum(len(hints) for _, hints, _ in regions)
        rows.append((path.name[:2], len(regions), sizes, n_hints, len(bad)))

    header = f"{'nb':>3} {'regions':>7} {'median':>6} {'largest':>7} {'>=5':>4} {'hint lines':>10} {'code':>5}"
    print(header + "  sizes (lines)")
    for nb, n, sizes, n_hints, n_bad in rows:
        median = statistics.median(sizes) if sizes else 0
        big = sum(s >= 5 for s in sizes)
        print(f"{nb:>3} {n:>7} {median:>6g} {max(sizes, default=0):>7} {big:>4} {n_hints:>10} {n_bad:>5}  {sizes}")
    total_hints = sum(r[3] for r in rows)
    median = statistics.median(all_sizes) if all_sizes else 0
    print(
        f"all {len(all_sizes):>7} {median:>6g} {max(all_sizes, default=0):>7} {sum(s >= 5 for s in all_sizes):>4} "
        f"{total_hints:>10} {len(flagged):>5}"
    )
    if flagged and not args.quiet:
        print("\nhints that contain code:")
        for name, cell, hint, rules in flagged:
            print(f"  {name[:2]} cell {cell} [{', '.join(rules)}]: {hint.strip()}")
    if args.checks:
        print("\ncheck helpers: hints that show code (flagged / all)")
        for module in sorted(CHECKS.glob("nb[0-9][0-9].py")):
            hints = check_hints(module)
            shown = [(h, code_in(h)) for h in hints if code_in(h)]
            print(f"  {module.stem}: {len(shown)} / {len(hints)}")
            if not args.quiet:
                for hint, rules in shown:
                    print(f"      [{', '.join(rules)}] {hint}")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
