"""A classroom run as a benchmark: execute notebooks as a student would and record what each one took and said.

    python bench/course.py                               # every notebook, classroom mode, offline
    python bench/course.py 08 10 --mode fast             # a subset (by number), the tests' speed
    python bench/course.py 08 --home /tmp/fresh --out bench/course.md

Each notebook runs top to bottom in a fresh kernel (nbclient), in ``notebooks/``, with ``GPTMINI_MODE`` set,
the network switched off for the Hugging Face hub (``HF_HUB_OFFLINE=1``, what a classroom without internet
gets) unless ``--online``, and ``GPTMINI_HOME`` where checkpoints are looked for and saved (default: the same
place a student's notebooks use). The table records per notebook:

* wall time, and its slowest cell (the one a student waits for);
* its **key numbers**: every call of :func:`gptmini.course.expect.expect` in the notebook, i.e. each number the
  prose quotes, with the range the prose gives and whether this run fell inside it (``$GPTMINI_RECORD``
  collects them, so the notebook does not have to print them twice);
* the machine: ``nproc``, CPU model, load average before and after (other jobs inflate wall times, never the
  seeded numbers), and which checkpoints were already in ``GPTMINI_HOME`` when the notebook started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def select(wanted: list[str]) -> list[Path]:
    """Notebooks whose name starts with one of ``wanted`` (e.g. "08"), in course order; all when empty."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    chosen = [p for p in paths if not wanted or any(p.name.startswith(w) for w in wanted)]
    missing = [w for w in wanted if not any(p.name.startswith(w) for p in paths)]
    if missing:
        raise SystemExit(f"no notebook starts with {missing}; have {[p.name[:2] for p in paths]}")
    return chosen


def checkpoints(home: Path) -> list[str]:
    folder = home / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _cell_seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run_notebook(path: Path, mode: str, home: Path, online: bool, timeout: int, keep: Path | None = None) -> dict:
    """Execute one notebook; return its wall time, slowest cell, key numbers (expect records) and any error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as f:
        record_path = Path(f.name)
    env = dict(os.environ)
    env.update(
        GPTMINI_MODE=mode,
        GPTMINI_HOME=str(home),
        GPTMINI_RECORD=str(record_path),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    if not online:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    result = {"notebook": path.name, "mode": mode, "checkpoints_before": checkpoints(home), "error": None}
    result["load_before"] = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        result["error"] = str(err).strip().splitlines()[-1][:200]
    except Exception as err:  # a timeout or a dead kernel: still report what ran
        result["error"] = f"{type(err).__name__}: {str(err)[:200]}"
    result["seconds"] = time.perf_counter() - started
    result["load_after"] = os.getloadavg()[0]
    timed = [(s, i) for i, c in enumerate(nb.cells) if c.cell_type == "code" and (s := _cell_seconds(c)) is not None]
    if timed:
        seconds, index = max(timed)
        first = next((line for line in nb.cells[index].source.splitlines() if line.strip()), "")
        result["slowest_cell"] = {"index": index, "seconds": seconds, "first_line": first[:60]}
    if keep is not None:  # the executed notebook, outputs and all, to read what a student saw
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    result["key_numbers"] = [json.loads(line) for line in record_path.read_text().splitlines() if line.strip()]
    record_path.unlink(missing_ok=True)
    return result


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:.4g}"


def markdown(results: list[dict], machine: dict) -> str:
    lines = [
        f"# Course run: {machine['mode']} mode, {machine['when']}",
        "",
        f"Machine: `nproc` {machine['nproc']}, {machine['cpu']}, torch {machine['torch']} ({machine['threads']} "
        f"threads), Python {machine['python']}; network: {machine['network']}; commit {machine['commit']}.",
        f"GPTMINI_HOME: `{machine['home']}`; checkpoints there at the start: "
        f"{', '.join(machine['checkpoints']) or 'none'}.",
        "Load average (1 min) before/after each notebook is shown: above `nproc`, other jobs shared the CPUs "
        "and wall times are inflated; the seeded numbers do not depend on it.",
        "",
        "| notebook | wall time | slowest cell | load before → after | checkpoints present "
        "| key numbers (this run; the text's range) |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        slow = r.get("slowest_cell")
        slow_text = f"{slow['seconds']:.0f} s (cell {slow['index']}: `{slow['first_line']}`)" if slow else "—"
        keys = []
        for k in r["key_numbers"]:
            verdict = {True: "✓", False: "✗ outside", None: f"not judged ({k['mode']} range)"}[k["inside"]]
            keys.append(f"{k['what']}: {_number(k['value'])} ({_number(k['low'])}–{_number(k['high'])}, {verdict})")
        if r["error"]:
            keys.insert(0, f"**failed**: {r['error']}")
        lines.append(
            f"| {r['notebook']} | {r['seconds'] / 60:.1f} min ({r['seconds']:.0f} s) | {slow_text} | "
            f"{r['load_before']:.1f} → {r['load_after']:.1f} | {', '.join(r['checkpoints_before']) or 'none'} | "
            f"{'<br>'.join(keys) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers (e.g. 08 10); all notebooks when none")
    parser.add_argument("--mode", default="classroom", choices=["fast", "classroom", "full"])
    parser.add_argument(
        "--home", type=Path, default=None, help="GPTMINI_HOME (default: $GPTMINI_HOME or ~/.cache/gptmini)"
    )
    parser.add_argument("--online", action="store_true", help="let notebooks reach the Hugging Face hub")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--keep", type=Path, default=None, help="save the executed notebooks (with outputs) here")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here (and a .json beside it)")
    args = parser.parse_args(argv)

    import torch

    home = args.home or Path(os.environ.get("GPTMINI_HOME", Path.home() / ".cache" / "gptmini")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    machine = {
        "mode": args.mode,
        "when": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "network": "allowed" if args.online else "off for the hub (HF_HUB_OFFLINE=1)",
        "commit": git_commit(),
        "home": str(home),
        "checkpoints": checkpoints(home),
    }
    results = []
    for path in select(args.notebooks):
        print(f"running {path.name} ({args.mode} mode) ...", file=sys.stderr, flush=True)
        result = run_notebook(path, args.mode, home, args.online, args.timeout, args.keep)
        status = "failed: " + result["error"] if result["error"] else "ok"
        print(f"  {result['seconds']:.0f} s, {status}", file=sys.stderr, flush=True)
        results.append(result)
    table = markdown(results, machine)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
