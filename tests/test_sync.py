"""One repository URL: every badge and install cell agrees with pyproject.toml, and one command repoints them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gptmini.course.colab import github_path, repo_url, url_from_pyproject
from gptmini.course.sync import (
    badge,
    colab_url,
    install_block,
    planned,
    stale,
    synced_install_cell,
    synced_notebook,
    synced_readme,
    with_repo_url,
)

ROOT = Path(__file__).resolve().parents[1]
FORK = "https://github.com/some-teacher/gptmini-fork"


def test_every_notebook_and_the_readme_agree_with_the_declared_url():
    """Reads each notebook and the README and compares them with what the sync command would write."""
    behind = [str(p.relative_to(ROOT)) for p in stale(ROOT)]
    assert not behind, f"out of date: {behind}; run `python -m gptmini.course sync-notebooks`"
    url = repo_url(ROOT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert colab_url(url, path.name) in readme, f"README.md's table has no row with a Colab badge for {path.name}"


def test_the_url_is_declared_once_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    url = url_from_pyproject(text)
    assert github_path(url).count("/") == 1
    with pytest.raises(ValueError, match=r"\[project.urls\]"):
        url_from_pyproject(text.replace("Repository =", "Homepage ="))


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the files the sync reads and writes."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    return tmp_path


def test_the_command_points_the_course_at_a_fork(checkout):
    run = subprocess.run(
        [sys.executable, "-m", "gptmini.course", "sync-notebooks", "--root", str(checkout), "--repo-url", FORK],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert FORK in run.stdout
    assert repo_url(checkout) == FORK
    assert not stale(checkout)
    old = "github.com/gptmini/gptmini"
    for path in [checkout / "README.md", *sorted((checkout / "notebooks").glob("*.ipynb"))]:
        text = path.read_text(encoding="utf-8")
        assert old not in text, f"{path.name} still points at {old}"
    nb = json.loads((checkout / "notebooks" / "00_setup_and_tour.ipynb").read_text(encoding="utf-8"))
    assert badge(FORK, "00_setup_and_tour.ipynb") in "".join(nb["cells"][0]["source"])
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(code["source"]).startswith(install_block(FORK))
    assert f'"git+{FORK}"' in install_block(FORK)
    # --check: nothing to do now; a hand edit makes it fail
    check = [sys.executable, "-m", "gptmini.course", "sync-notebooks", "--root", str(checkout), "--check"]
    assert subprocess.run(check, capture_output=True, cwd=ROOT).returncode == 0
    readme = checkout / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace(FORK.split("github.com/")[1], "x/y", 1))
    failed = subprocess.run(check, capture_output=True, text=True, cwd=ROOT)
    assert failed.returncode == 1 and "README.md" in failed.stdout


def test_a_new_notebook_gets_badge_install_block_and_drive_pointer():
    """Notebook 11 (or any NN_*.ipynb) written without them gets them; its own lines are kept."""
    nb = {
        "cells": [
            {
                "cell_type": "markdown",
                "id": "a",
                "metadata": {},
                "source": ["# 11 · Inside the model\n", "\n", "Text."],
            },
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "b",
                "metadata": {},
                "outputs": [],
                "source": ["from gptmini.course import course_model, setup\n", "S = setup()"],
            },
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c",
                "metadata": {},
                "outputs": [],
                "source": "m = course_model()",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    out = json.loads(synced_notebook(json.dumps(nb), FORK, "11_inside_the_model.ipynb"))
    title = "".join(out["cells"][0]["source"])
    assert title.startswith(
        "# 11 · Inside the model\n\n" + badge(FORK, "11_inside_the_model.ipynb") + "\n\n> **On Colab**"
    )
    assert "use_drive()" in title and title.endswith("Text.")
    first = "".join(out["cells"][1]["source"])
    assert first == install_block(FORK) + "\n\nfrom gptmini.course import course_model, setup\nS = setup()"
    again = synced_notebook(json.dumps(out), FORK, "11_inside_the_model.ipynb")
    assert json.loads(again) == out  # a second run changes nothing


def test_the_install_block_of_the_old_cells_is_replaced_not_duplicated():
    old = (
        "# Setup. In Colab: install gptmini from GitHub.\nimport sys\n\n"
        'IN_COLAB = "google.colab" in sys.modules\nif IN_COLAB:\n    %pip install -q "gptmini @ git+https://x"\n'
        'try:\n    import gptmini\nexcept ImportError:\n    sys.path.insert(0, "..")\n    import gptmini\n\n'
        "from gptmini.course import setup\n"
    )
    new = synced_install_cell(old, FORK, "01_x.ipynb")
    assert new == install_block(FORK) + "\n\nfrom gptmini.course import setup\n"
    assert new.count("%pip install") == 1
    with pytest.raises(ValueError, match="fallback"):
        synced_install_cell('%pip install -q "gptmini"\nimport gptmini\n', FORK, "01_x.ipynb")


def test_only_github_urls_and_the_pyproject_edit_keeps_everything_else():
    with pytest.raises(ValueError, match="GitHub"):
        colab_url("https://gitlab.com/a/b", "00_x.ipynb")
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    edited = with_repo_url(text, FORK)
    assert url_from_pyproject(edited) == FORK
    assert edited.replace(FORK, url_from_pyproject(text)) == text  # one value changed, comments and order kept
    bare = text.replace(text[text.index("[project.urls]") : text.index("[project.scripts]")], "")
    assert url_from_pyproject(with_repo_url(bare, FORK)) == FORK
    with pytest.raises(ValueError, match="GitHub"):
        with_repo_url(text, "https://example.org/repo")


def test_planned_covers_every_numbered_notebook(checkout):
    (checkout / "notebooks" / "99_extra.ipynb").write_text(
        (checkout / "notebooks" / "01_text_to_tokens.ipynb").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (checkout / "notebooks" / "scratch.ipynb").write_text("not a notebook", encoding="utf-8")
    names = {p.name for p in planned(checkout)}
    assert "99_extra.ipynb" in names and "scratch.ipynb" not in names
    assert checkout / "notebooks" / "99_extra.ipynb" in stale(checkout)  # its badge still names notebook 01


def test_readme_badges_go_in_table_rows_only():
    row = "| 11 | [inside the model](notebooks/11_inside_the_model.ipynb) | heads | gallery | ? |"
    prose = "See [notebook 05](notebooks/05_gpt1_pretraining.ipynb) for the recipe."
    out = synced_readme(f"{row}\n\n{prose}\n", FORK)
    assert out == (
        f"| 11 | [inside the model](notebooks/11_inside_the_model.ipynb) {badge(FORK, '11_inside_the_model.ipynb')}"
        f" | heads | gallery | ? |\n\n{prose}\n"
    )
    assert synced_readme(out, FORK) == out
