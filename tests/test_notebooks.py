"""The course notebooks: each runs top to bottom from a fresh kernel (fast mode, offline), and is committed clean.

The notebooks run in order and share one temporary ``GPTMINI_HOME``, so the checkpoint notebook 05 saves
is there for notebooks 09 and 10. The time each one takes is printed (a figure, not an assertion); run
one or a few with e.g. ``pytest tests/test_notebooks.py -k "00 or 01" -s``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "00_setup_and_tour.ipynb",
    "01_text_to_tokens.ipynb",
    "02_embeddings.ipynb",
    "03_masked_self_attention.ipynb",
    "04_multihead_attention_and_block.ipynb",
    "05_gpt1_pretraining.ipynb",
    "06_byte_pair_encoding.ipynb",
    "07_gpt1_finetuning.ipynb",
    "08_gpt1_to_gpt2.ipynb",
    "09_real_gpt2_weights_and_decoding.ipynb",
    "10_zero_and_few_shot.ipynb",
    "11_inside_the_model.ipynb",
    "12_from_gpt2_to_gpt3.ipynb",
]
CELL_TIMEOUT_S = 600
TIMES: dict[str, float] = {}


def notebook_paths() -> list[Path]:
    """Every notebook of the course, in course order (by the number in front of its name)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.fixture(scope="module")
def course_home(tmp_path_factory) -> Path:
    """One GPTMINI_HOME for the whole run: 05 writes its checkpoint here, 00/09/10 read it."""
    return tmp_path_factory.mktemp("gptmini_home")


def _environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GPTMINI_MODE="fast",
        GPTMINI_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        TQDM_DISABLE="1",
        # one thread per kernel unless told otherwise: on a shared 2-core runner, two threads per process
        # made small models 10x slower (threads waiting on each other), one thread never worse than 2x
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    return env


def _run(path: Path, home: Path, nb=None) -> float:
    """Execute ``path`` in a fresh kernel with cwd=notebooks/; raise with the failing cell's source and error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nb if nb is not None else nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    started = time.perf_counter()
    try:
        client.execute(env=_environment(home))  # the kernel's environment: fast mode, offline, shared home
    except CellExecutionError as err:
        failing = next(
            (
                c
                for c in nb.cells
                if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            None,
        )
        source = failing.source if failing is not None else "(cell not found)"
        pytest.fail(f"{path.name} failed in the cell:\n{source}\n\n{err}", pytrace=False)
    return time.perf_counter() - started


def test_the_course_is_complete():
    names = [p.name for p in notebook_paths()]
    missing = [n for n in EXPECTED if n not in names]
    assert not missing, f"notebooks missing from notebooks/: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=_ids(notebook_paths()))
def test_notebook_runs_top_to_bottom(path: Path, course_home: Path):
    pytest.importorskip("nbclient")
    seconds = _run(path, course_home)
    TIMES[path.stem] = seconds
    print(f"\n{path.name}: {seconds:.1f} s (GPTMINI_MODE=fast)")


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("path", notebook_paths(), ids=_ids(notebook_paths()))
def test_notebook_is_clean_and_colab_ready(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    cells = nb["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or an execution count; clear them before committing"

    from gptmini.course.colab import repo_url
    from gptmini.course.sync import colab_url, install_block

    badge = colab_url(repo_url(ROOT), path.name)  # the declared URL (pyproject.toml); see tests/test_sync.py
    assert badge in _source(cells[0]), f"{path.name}: the first cell needs the 'Open in Colab' badge linking {badge}"
    assert "colab-badge.svg" in _source(cells[0])

    first_code = next(c for c in cells if c["cell_type"] == "code")
    src = _source(first_code)
    assert "google.colab" in src, f"{path.name}: the first code cell must detect Colab"
    install = src.startswith(install_block(repo_url(ROOT)))
    assert install, f"{path.name}: the install block is out of date: python -m gptmini.course sync-notebooks"
    assert re.search(r"if\s+IN_COLAB\s*:", src), f"{path.name}: the install must only run inside Colab"
    assert "setup(" in src, f"{path.name}: the first code cell must call gptmini.course.setup()"
