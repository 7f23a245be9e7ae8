"""A virtual environment inside the one the tests run in, for the Colab rehearsal and CI's ipywidgets 7.7.1 stage.

It sees every package of the environment that made it, whatever that is (a virtual environment, a conda
environment or the system interpreter), so nothing large is downloaded, and it imports its own packages first,
so what is installed into it (ipywidgets 7.7.1, the course from a clone) wins over the outer copies.

``python -m venv --system-site-packages`` is not enough: made from inside a virtual environment, it sees the
*base* interpreter's packages, not the active environment's. Here the outer environment's site directories are
added after the new environment's own, through a ``.pth`` file that calls :func:`site.addsitedir` (so the
outer ``.pth`` files, an editable install's among them, are read too).

    python tests/nested_venv.py DEST     # make one from the shell (CI's ipywidgets 7.7.1 stage)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PTH_NAME = "outer_environment.pth"


def outer_site_dirs() -> list[str]:
    """The running interpreter's site directories, in import order (user site included when it is on the path)."""
    dirs: list[str] = []
    for entry in sys.path:
        path = Path(entry) if entry else None
        if path and path.name in ("site-packages", "dist-packages") and path.is_dir() and entry not in dirs:
            dirs.append(entry)
    return dirs


def make_nested_venv(dest: str | Path) -> Path:
    """Create a venv at ``dest`` that imports its own packages first, then this environment's; return its python."""
    dest = Path(dest)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    calls = "; ".join(f"site.addsitedir({d!r})" for d in outer_site_dirs())
    (Path(own_site) / PTH_NAME).write_text(f"import site; {calls}\n")
    return python


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/nested_venv.py DEST  (DEST: a folder that does not exist yet)")
    if Path(sys.argv[1]).exists():
        sys.exit(f"{sys.argv[1]} exists already: give a new folder for the nested environment")
    print(make_nested_venv(sys.argv[1]))
