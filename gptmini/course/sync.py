"""Write every notebook's Colab badge and install block, and the README's badges, from the one repository URL.

``python -m gptmini.course sync-notebooks [--repo-url URL] [--check]`` rewrites, in each
``notebooks/NN_*.ipynb``: the badge line of the first (markdown) cell, plus a one-line Google Drive pointer
in notebooks that use a checkpoint; and the install block that opens the first code cell (up to the
``import gptmini`` fallback; the notebook's own imports after it are kept). ``--repo-url`` first writes the
URL into pyproject.toml. ``--check`` writes nothing and fails when a file differs (what the tests do).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .colab import INSTALL_SOURCE_ENV, URL_KEY, checkout_root, github_path, repo_url

BRANCH = "main"
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)$", re.M)
POINTER_PREFIX = "> **On Colab**"
# Code that calls one of these reads or writes a course checkpoint: such notebooks get the Drive pointer.
USES_CHECKPOINT = re.compile(r"\b(checkpoint_dir|course_model|finetune_base_model|ladder_model|save_pretrained)\(")
# A row of the README's notebook table: "| NN | [title](notebooks/NN_name.ipynb) [badge] | ...".
README_ROW = re.compile(
    r"^(\|[^|\n]*\|\s*)\[([^\]\n]+)\]\(notebooks/(\d\d_[\w.-]+\.ipynb)\)"
    r"(?: \[!\[Open In Colab\]\([^)\s]*\)\]\([^)\s]*\))?",
    re.M,
)


def colab_url(url: str, name: str, branch: str = BRANCH) -> str:
    """The link that opens ``notebooks/<name>`` of the GitHub repository ``url`` in Colab."""
    return f"https://colab.research.google.com/github/{github_path(url)}/blob/{branch}/notebooks/{name}"


def badge(url: str, name: str) -> str:
    return f"[![Open In Colab]({BADGE_SVG})]({colab_url(url, name)})"


def drive_pointer(name: str) -> str:
    """One line for notebooks that use a checkpoint: a Colab runtime forgets its files when it stops."""
    where = (
        "run the optional Google Drive cell in section 1"
        if name.startswith("00_")
        else "run `from gptmini.course.colab import use_drive; use_drive()` right after the set-up cell (notebook 00)"
    )
    return f"{POINTER_PREFIX}, checkpoints vanish with the runtime; to keep them on Google Drive, {where}."


def install_block(url: str) -> str:
    """The lines that open every notebook's first code cell. On Colab they install gptmini with Colab's own
    torch and ipywidgets left in place (the package's ranges accept them); ``$GPTMINI_INSTALL_SOURCE`` (e.g.
    ``git+file:///path/to/clone``) replaces the source, for a rehearsal or a classroom mirror."""
    return "\n".join(
        [
            "# Setup. On Colab: install gptmini (Colab's torch and widgets stay). In a checkout: nothing to install.",
            "import os",
            "import sys",
            "",
            'IN_COLAB = "google.colab" in sys.modules',
            "if IN_COLAB:",
            f'    GPTMINI_SOURCE = os.environ.get("{INSTALL_SOURCE_ENV}", "git+{url}")',
            '    %pip install -q "gptmini[bertviz] @ {GPTMINI_SOURCE}"',
            "try:",
            "    import gptmini",
            "except ImportError:  # a local checkout that was not pip-installed: the package is one folder up",
            '    sys.path.insert(0, "..")',
            "    import gptmini",
        ]
    )


def _text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def synced_badge_cell(text: str, url: str, name: str, pointer: bool) -> str:
    """``text`` with its badge line (and the Drive pointer after it) rewritten; a missing badge goes after the
    title line."""
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if BADGE_RE.match(line)), None)
    if at is None:  # a new notebook: badge after the "# NN · title" line
        lines[1:1] = ["", badge(url, name)]
        at = 2
    lines[at] = badge(url, name)
    if at + 2 < len(lines) and lines[at + 1] == "" and lines[at + 2].startswith(POINTER_PREFIX):
        del lines[at + 1 : at + 3]
    if pointer:
        lines[at + 1 : at + 1] = ["", drive_pointer(name)]
    return "\n".join(lines)


def synced_install_cell(text: str, url: str, name: str) -> str:
    """``text`` with its install block (from the top to the ``import gptmini`` fallback) rewritten."""
    lines = text.split("\n")
    end = None
    for i, line in enumerate(lines):
        if line.startswith("except ImportError"):
            end = next((j for j in range(i + 1, len(lines)) if re.fullmatch(r"\s+import gptmini\s*", lines[j])), None)
            break
    if end is None:
        if "%pip install" in text:
            raise ValueError(f"{name}: the first code cell installs gptmini but has no `import gptmini` fallback")
        rest = lines  # a new notebook: put the block in front of what is there
    else:
        rest = lines[end + 1 :]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return install_block(url) + ("\n\n" + "\n".join(rest) if rest else "")


def synced_notebook(raw: str, url: str, name: str) -> str:
    """The notebook file's text as the sync writes it (same JSON layout as Jupyter's)."""
    nb = json.loads(raw)
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        raise ValueError(f"{name}: the first cell must be the markdown title with the Colab badge")
    code = [c for c in cells if c["cell_type"] == "code"]
    if not code:
        raise ValueError(f"{name}: no code cell to put the install block in")
    pointer = any(USES_CHECKPOINT.search(_text(c)) for c in code)
    cells[0]["source"] = _lines(synced_badge_cell(_text(cells[0]), url, name, pointer))
    code[0]["source"] = _lines(synced_install_cell(_text(code[0]), url, name))
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def synced_readme(text: str, url: str) -> str:
    """Every notebook link in the README's table followed by its badge, pointing at ``url`` (links in prose
    are left alone)."""
    return README_ROW.sub(lambda m: f"{m[1]}[{m[2]}](notebooks/{m[3]}) {badge(url, m[3])}", text)


def with_repo_url(pyproject: str, url: str) -> str:
    """pyproject.toml's text with ``Repository`` under ``[project.urls]`` set to ``url`` (added if missing)."""
    github_path(url)  # refuse a URL Colab cannot open before writing anything
    line = f'{URL_KEY} = "{url}"'
    section = re.search(r"^\[project\.urls\]\s*\n", pyproject, re.M)
    if section is None:
        anchor = re.search(r"^\[project\.scripts\]", pyproject, re.M) or re.search(r"\Z", pyproject)
        return f"{pyproject[: anchor.start()]}[project.urls]\n{line}\n\n{pyproject[anchor.start() :]}"
    body_start = section.end()
    body_end = (re.compile(r"^\[", re.M).search(pyproject, body_start) or re.search(r"\Z", pyproject)).start()
    body = pyproject[body_start:body_end]
    new_body, found = re.subn(
        rf'^({URL_KEY}\s*=\s*)"[^"]*"', lambda m: f'{m.group(1)}"{url}"', body, count=1, flags=re.M
    )
    if not found:
        new_body = line + "\n" + body
    return pyproject[:body_start] + new_body + pyproject[body_end:]


def planned(root: Path, url: str | None = None) -> dict[Path, str]:
    """Each file the sync owns -> the text it should have (with ``url``, else the declared URL)."""
    url = repo_url(root) if url is None else url.rstrip("/")
    out = {}
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        out[path] = synced_notebook(path.read_text(encoding="utf-8"), url, path.name)
    readme = root / "README.md"
    out[readme] = synced_readme(readme.read_text(encoding="utf-8"), url)
    return out


def stale(root: Path) -> list[Path]:
    """The files that differ from what the sync would write now."""
    return [path for path, text in planned(root).items() if path.read_text(encoding="utf-8") != text]


def sync(root: Path, url: str | None = None) -> list[Path]:
    """Set the URL (when given) and rewrite badges and install blocks; returns the files that changed."""
    changed = []
    if url is not None:
        url = url.rstrip("/")
        pyproject = root / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        if with_repo_url(text, url) != text:
            pyproject.write_text(with_repo_url(text, url), encoding="utf-8")
            changed.append(pyproject)
    for path, text in planned(root).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptmini.course sync-notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("--repo-url", help="GitHub URL to point the course at (written to pyproject.toml first)")
    parser.add_argument("--root", type=Path, help="the repository checkout (default: the one this package is in)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    root = args.root or checkout_root()
    if root is None or not (root / "notebooks").is_dir():
        parser.error("run it from a checkout of the course (or pass --root): it rewrites notebooks/ and README.md")
    if args.check:
        if args.repo_url is not None:
            parser.error("--check compares with the declared URL; drop --repo-url")
        behind = stale(root)
        for path in behind:
            print(f"out of date: {path.relative_to(root)}")
        if behind:
            print("run: python -m gptmini.course sync-notebooks", file=sys.stderr)
        return 1 if behind else 0
    changed = sync(root, args.repo_url)
    print(f"repository: {repo_url(root)}; {len(changed)} file(s) rewritten")
    for path in changed:
        print(f"  {path.relative_to(root)}")
    return 0
