"""A Colab rehearsal that runs here, offline: notebook 00, top to bottom, as a learner on Colab would run it.

A fresh virtual environment with Colab's preinstalled versions where they matter: ipywidgets 7.7.1 (Colab's
page is built for it) and the CPU torch already here (the new environment sees the packages of the one the tests
run in, see ``nested_venv.py``: nothing large is downloaded, only ipywidgets 7.7.1 and its small dependencies,
and setuptools where the installed one is too old to build a wheel). A stub ``google.colab``, imported before
the first cell as Colab does, whose ``drive.mount`` records the call and makes the folder. The
install cell is pointed at a local clone (``GPTMINI_INSTALL_SOURCE=git+file://localhost/…``) and pip is offline
(``PIP_NO_INDEX``): every dependency must already be satisfied, as Colab's preinstalled packages satisfy them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nested_venv import make_nested_venv

from gptmini.course.colab import DRIVE_ENV, DRIVE_FOLDER, INSTALL_SOURCE_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_setup_and_tour.ipynb"
COLAB_IPYWIDGETS = "7.7.1"
KERNEL = "colab-rehearsal"

STUB_DRIVE = '''"""Stand-in for Colab's google.colab.drive: records the mount and makes the folder."""
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
    with open(os.environ["COLAB_STUB_LOG"], "a") as log:
        log.write(f"mount {mountpoint}\\n")
'''

# Appended to the notebook: what got imported, from where, and every widget built under Colab's ipywidgets.
REPORT_CELL = """
import json, os, sys
import ipywidgets
from gptmini.tokenizers import BPETokenizer
from gptmini.viz import LivePlot, attention_explorer, bpe_explorer, sampling_explorer

live = LivePlot(show=False)
live({"kind": "train", "step": 1, "train_loss": 3.0})
bpe = BPETokenizer().train("to be or not to be " * 20, vocab_size=256 + 10, progress=False)
built = [attention_explorer(model, tok, "ROMEO:"), sampling_explorer(model, tok, "ROMEO:"), live.widget,
         bpe_explorer(bpe, "to be or not")]
for widget in built:
    display(widget)
print("REPORT " + json.dumps({
    "gptmini": gptmini.__file__, "ipywidgets": ipywidgets.__version__, "python": sys.executable,
    "home": os.environ.get("GPTMINI_HOME"), "widgets": [type(w).__name__ for w in built],
}))
"""


def _git(*args: str, cwd: Path) -> None:
    # safe.directory: a CI checkout may belong to another user than the one running the tests
    identity = ["-c", "safe.directory=*", "-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def local_clone(dest: Path) -> Path:
    """``git clone`` of this repository, plus one commit holding the working tree as it is now (so the
    rehearsal installs what is being tested, committed or not)."""
    if subprocess.run(["git", "-c", "safe.directory=*", "rev-parse"], cwd=ROOT, capture_output=True).returncode == 0:
        _git("clone", "-q", str(ROOT), str(dest), cwd=ROOT)
    else:  # an exported tree without .git
        dest.mkdir()
        _git("init", "-q", cwd=dest)
    _git(f"--work-tree={ROOT}", "add", "-A", cwd=dest)
    _git("commit", "-q", "--allow-empty", "-m", "working tree", cwd=dest)
    return dest


def colab_like_venv(dest: Path) -> Path:
    """A venv that sees this environment's packages (torch, Jupyter, pip) but imports ipywidgets 7.7.1."""
    python = make_nested_venv(dest)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # setuptools: the clone is built offline with what is installed (no build isolation), and setuptools
    # older than 70.1 cannot build a wheel without the `wheel` package; a newer one here downloads nothing.
    subprocess.run([*pip, f"ipywidgets=={COLAB_IPYWIDGETS}", "setuptools>=70.1"], check=True, capture_output=True)
    version = subprocess.run(
        [str(python), "-c", "import ipywidgets; print(ipywidgets.__version__, ipywidgets.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=dest,
    ).stdout.split()
    assert version[0] == COLAB_IPYWIDGETS and version[1].startswith(str(dest)), version
    return python


def kernel_spec(jupyter_dir: Path, python: Path) -> None:
    folder = jupyter_dir / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (folder / "kernel.json").write_text(json.dumps({**spec, "display_name": "Colab rehearsal"}))


def test_notebook_00_installs_from_a_clone_and_runs_as_on_colab(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    if shutil.which("git") is None:
        pytest.skip("git is needed to clone the repository")
    import nbformat
    from nbclient import NotebookClient

    python = colab_like_venv(tmp_path / "venv")
    clone = local_clone(tmp_path / "clone")
    stub = tmp_path / "stub"
    (stub / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: a namespace, like Colab's
    (stub / "google" / "colab" / "__init__.py").write_text("from . import drive  # noqa: F401\n")
    (stub / "google" / "colab" / "drive.py").write_text(STUB_DRIVE)
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab's kernel has it imported already\n")
    kernel_spec(tmp_path / "jupyter", python)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    content = tmp_path / "content"  # Colab's working directory: nothing of the course in it
    content.mkdir()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPTMINI_HOME", "VIRTUAL_ENV")}
    env.update(
        PYTHONPATH=str(stub),
        IPYTHONDIR=str(tmp_path / "ipython"),
        COLAB_STUB_LOG=str(tmp_path / "mounts.log"),
        PIP_NO_INDEX="1",  # offline: the install must need nothing that is not here already
        PIP_NO_BUILD_ISOLATION="0",  # build with the setuptools already here (pip reads "0" as: no isolation)
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        GPTMINI_MODE="fast",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        TQDM_DISABLE="1",
        OMP_NUM_THREADS="1",
    )
    env[INSTALL_SOURCE_ENV] = f"git+file://localhost{clone}"  # pip < 24 rejects `name @ git+file:///path`
    env[DRIVE_ENV] = str(tmp_path / "drive")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    client = NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(content)}})
    client.execute(env=env)

    printed = "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"
    )
    report = json.loads(printed.split("REPORT ", 1)[1].splitlines()[0])
    site = tmp_path / "venv" / "lib"
    assert report["python"].startswith(str(tmp_path / "venv")), report
    assert report["gptmini"].startswith(str(site)) and "site-packages" in report["gptmini"], (
        f"the notebook imported {report['gptmini']}, not the package its install cell put in the venv"
    )
    assert report["ipywidgets"] == COLAB_IPYWIDGETS
    drive = tmp_path / "drive"
    assert (tmp_path / "mounts.log").read_text().splitlines() == [f"mount {drive}"]
    assert report["home"] == str(drive / DRIVE_FOLDER) and (drive / DRIVE_FOLDER).is_dir()
    assert "checkpoints are kept on your Google Drive" in printed
    assert len(report["widgets"]) == 4
    views = [
        o["data"]["application/vnd.jupyter.widget-view+json"]
        for o in nb.cells[-1].outputs
        if o.get("output_type") == "display_data" and "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 4, nb.cells[-1].outputs
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    for view in views:
        model = state[view["model_id"]]
        assert model["model_module"] == "@jupyter-widgets/controls"
        assert model["model_module_version"] == "1.5.0"  # ipywidgets 7's protocol, the one Colab's page speaks
