"""Colab helpers: the course's one repository URL, and checkpoints kept on Google Drive.

The repository URL is declared once, as ``Repository`` under ``[project.urls]`` in pyproject.toml. Every
badge and install cell is written from it by ``python -m gptmini.course sync-notebooks`` (see
:mod:`gptmini.course.sync`), so pointing the course at a fork is one command, not eleven hand edits.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DIST = "gptmini"
URL_KEY = "Repository"
#: Where notebooks 00-11 install the package from on Colab, unless $GPTMINI_INSTALL_SOURCE says otherwise.
INSTALL_SOURCE_ENV = "GPTMINI_INSTALL_SOURCE"
#: Where Google Drive is mounted on Colab; tests point it at a temporary folder.
DRIVE_ENV = "GPTMINI_DRIVE"
DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = "MyDrive/gptmini"


def checkout_root() -> Path | None:
    """The repository folder when this package runs from a checkout (pyproject.toml next to it), else None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"gptmini"', pyproject.read_text(encoding="utf-8"), re.M):
        return root
    return None


def url_from_pyproject(text: str) -> str:
    """``Repository`` under ``[project.urls]``; a missing entry is an error that says where to add it."""
    section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = section and re.search(rf'^{URL_KEY}\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not found:
        raise ValueError(f'pyproject.toml needs `{URL_KEY} = "https://github.com/OWNER/REPO"` under [project.urls]')
    return found.group(1).rstrip("/")


def url_from_metadata() -> str:
    """``Project-URL: Repository, …`` of the installed distribution (a pip install has no pyproject.toml)."""
    from importlib.metadata import metadata

    for entry in metadata(DIST).get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == URL_KEY:
            return url.strip().rstrip("/")
    raise ValueError(f"the installed {DIST} declares no {URL_KEY} URL; reinstall it from a current checkout")


def repo_url(root: Path | None = None) -> str:
    """The course's repository URL: from pyproject.toml in a checkout (current even before a reinstall), else
    from the installed package's metadata."""
    root = root if root is not None else checkout_root()
    if root is not None:
        return url_from_pyproject((root / "pyproject.toml").read_text(encoding="utf-8"))
    return url_from_metadata()


def github_path(url: str) -> str:
    """``OWNER/REPO`` of a GitHub URL: Colab opens notebooks from GitHub only, so anything else is an error."""
    found = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url)
    if not found:
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/OWNER/REPO): Colab needs one")
    return f"{found.group(1)}/{found.group(2)}"


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is imported there from the start)."""
    return "google.colab" in sys.modules


def use_drive(folder: str = DRIVE_FOLDER) -> Path:
    """On Colab, mount Google Drive and keep checkpoints there (``GPTMINI_HOME``), so they outlive the session.

    Elsewhere it changes nothing and says so. Returns the folder checkpoints now go to.
    """
    from .checkpoints import home

    if not in_colab():
        print(f"not on Colab: checkpoints stay in {home()}")
        return home()
    from google.colab import drive

    mountpoint = os.environ.get(DRIVE_ENV, DRIVE_MOUNT)
    drive.mount(mountpoint)
    target = Path(mountpoint) / folder
    target.mkdir(parents=True, exist_ok=True)
    os.environ["GPTMINI_HOME"] = str(target)
    print(f"checkpoints are kept on your Google Drive: GPTMINI_HOME={target}")
    return target
