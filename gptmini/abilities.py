"""Zero- and few-shot abilities a Shakespeare model can have, scored the same way on models of every size.

Notebook 12 scores each rung of its ladder (and, online, real GPT-2 models) on the same items. Every item is
a choice between continuations, scored by :func:`gptmini.zeroshot.score_texts` (no second scorer):

* ``next_line``: which of 4 lines follows a passage (the ``next_line`` task of :mod:`gptmini.tasks`, its
  wrong lines from other plays), per-token likelihood; chance 25 %;
* ``swapped``: a line as written or the same line with two words swapped: the same characters, so the
  summed log-probabilities compare fairly; chance 50 %;
* ``next_speaker``: after two speeches of a dialogue, which of two names speaks next (the right one, or a
  speaker of the same play who is not in the passage), per-token likelihood; chance 50 %;
* ``name_tag`` with k examples (names of every play): "Romeo - ROMEO" pairs, then a new name: which of 4
  capitalised names follows? Zero-shot the model has only the name to go on; each example shows the pattern once more
  (GPT-3's Figure 1.2 in miniature); chance 25 %.

Items come from the validation plays (:func:`validation_plays`), which the ladder never trained on, and
are built so that they fit a window of ``max_chars`` characters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .zeroshot import score_texts

TASKS = ("next_line", "swapped", "next_speaker", "name_tag")


@dataclass(frozen=True)
class Item:
    """A context, its candidate continuations and the index of the right one."""

    context: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class Score:
    """How many of ``n`` items a model got right, against ``chance``."""

    right: int
    n: int
    chance: float

    @property
    def accuracy(self) -> float:
        return self.right / self.n

    @property
    def se(self) -> float:
        """The standard error of the accuracy, sqrt(p (1 - p) / n)."""
        p = self.accuracy
        return (p * (1 - p) / self.n) ** 0.5


def validation_plays() -> list:
    """The plays wholly inside the course's validation text (the last 10 % of the corpus, never trained on)."""
    from .data import shakespeare, shakespeare_plays, train_val_split

    _, val_text = train_val_split(shakespeare())
    return [p for p in shakespeare_plays() if p.text in val_text]


def _speeches(play) -> list[tuple[str, str]]:
    """(speaker, first line of the speech) for each speech of the play, in order."""
    out = []
    for i, (speaker, line) in enumerate(play.lines):
        if i == 0 or play.lines[i - 1][0] != speaker:
            out.append((speaker, line))
    return out


def next_line_items(n: int, plays: Sequence | None = None, seed: int = 0, max_chars: int = 50) -> list[Item]:
    """``n`` items: 2 lines of a speech, then which of 4 lines comes next (3 wrong ones from other plays).

    The idea of the ``next_line`` task of :mod:`gptmini.tasks`, on the validation plays (that task's split
    keeps whole plays of every genre for testing, most of which the ladder trained on). Lines have at most
    ``max_chars`` characters, so that a passage and a choice fit a 128-character window.
    """
    rng = random.Random(seed)
    plays = list(plays or validation_plays())
    if len(plays) < 2:
        raise ValueError("next-line items take their wrong lines from other plays: give at least two plays")
    short = {p.title: [line for _, line in p.lines if 3 <= len(line.split()) and len(line) <= max_chars] for p in plays}
    found = []
    for play in plays:
        lines = play.lines
        for i in range(2, len(lines)):
            same = lines[i - 2][0] == lines[i - 1][0] == lines[i][0]
            if same and all(len(line) <= max_chars for _, line in lines[i - 2 : i + 1]):
                found.append((play.title, lines[i - 2][1] + "\n" + lines[i - 1][1] + "\n", lines[i][1]))
    rng.shuffle(found)
    if len(found) < n:
        raise ValueError(f"only {len(found)} passages make next-line items, {n} asked for; ask for fewer")
    items = []
    for j, (title, context, right) in enumerate(found[:n]):
        others = [line for t, lines in short.items() if t != title for line in lines]
        choices = rng.sample(others, 3)
        choices.insert(j % 4, right)
        items.append(Item(context, tuple(choices), j % 4))
    return items


def swapped_items(n: int, plays: Sequence | None = None, seed: int = 0, max_chars: int = 80) -> list[Item]:
    """``n`` lines of at least 5 words, each against itself with two different words swapped."""
    rng = random.Random(seed)
    lines = [line for p in plays or validation_plays() for _, line in p.lines if 5 <= len(line.split())]
    lines = [line for line in lines if len(line) <= max_chars]
    rng.shuffle(lines)
    items = []
    for line in lines:
        words = line.split()
        a, b = rng.sample(range(len(words)), 2)
        if words[a] == words[b]:
            continue
        swapped = list(words)
        swapped[a], swapped[b] = words[b], words[a]
        right, wrong = " ".join(words), " ".join(swapped)
        label = len(items) % 2  # the right line first in half the items
        items.append(Item("\n", (right, wrong) if label == 0 else (wrong, right), label))
        if len(items) == n:
            return items
    raise ValueError(f"only {len(items)} usable lines for {n} swapped-line items; ask for fewer")


def next_speaker_items(n: int, plays: Sequence | None = None, seed: int = 0, max_chars: int = 40) -> list[Item]:
    """``n`` passages of two speeches (first lines of at most ``max_chars``): who speaks next?"""
    rng = random.Random(seed)
    found = []
    for play in plays or validation_plays():
        speeches = _speeches(play)
        cast = sorted({s for s, _ in speeches if s.isupper() or s.istitle()})
        for i in range(len(speeches) - 2):
            (a, la), (b, lb), (c, _) = speeches[i : i + 3]
            others = [s for s in cast if s not in (a, b, c)]
            if a != b and len(la) <= max_chars and len(lb) <= max_chars and others:
                found.append((f"{a}:\n{la}\n\n{b}:\n{lb}\n\n", c, rng.choice(others)))
    rng.shuffle(found)
    if len(found) < n:
        raise ValueError(f"only {len(found)} passages make next-speaker items, {n} asked for; ask for fewer")
    items = []
    for k, (context, right, wrong) in enumerate(found[:n]):
        label = k % 2
        choices = (right + ":", wrong + ":") if label == 0 else (wrong + ":", right + ":")
        items.append(Item(context, choices, label))
    return items


def name_tag_items(n: int, k: int, plays: Sequence | None = None, seed: int = 0) -> list[Item]:
    """``n`` prompts of ``k`` "Name - NAME" examples then a new "Name -": which of 4 tags comes next?

    The test names and their distractors come from the speakers of ``plays`` (default: every play: the task
    is the pattern, not the play, and a model has seen "Romeo" and "ROMEO:" alike); the k examples are the same
    in every item of a given k, so only the number of examples changes between k = 0, 1, 2, 4.
    """
    rng = random.Random(seed)
    from .data import shakespeare_plays

    speakers = {s.title() for p in plays or shakespeare_plays() for s in p.speakers if s.isalpha() and len(s) > 3}
    names = sorted(speakers - {"Both", "Page", "Poet", "Fool"})  # roles, not names
    shots = names[: max(k, 4)]
    pool = [x for x in names if x not in shots]
    if len(pool) < max(n, 4):
        raise ValueError(f"only {len(pool)} names left for {n} name-tag items; ask for fewer")
    examples = "".join(f"{x} - {x.upper()}\n" for x in shots[:k])
    items = []
    for j, name in enumerate(rng.sample(pool, n)):
        wrong = rng.sample([x for x in pool if x != name], 3)
        label = j % 4
        choices = [" " + x.upper() for x in wrong]
        choices.insert(label, " " + name.upper())
        items.append(Item(f"{examples}{name} -", tuple(choices), label))
    return items


def score_items(model, tokenizer, items: Sequence[Item], per_token: bool = True) -> Score:
    """How many ``items`` the model answers right by likelihood (per-token mean, or the sum if not ``per_token``)."""
    if not items:
        raise ValueError("no items to score")
    contexts = [it.context for it in items for _ in it.choices]
    continuations = [c for it in items for c in it.choices]
    scores = score_texts(model, tokenizer, contexts, continuations)
    right, at = 0, 0
    for it in items:
        values = [s.mean_logprob if per_token else s.logprob for s in scores[at : at + len(it.choices)]]
        right += max(range(len(values)), key=values.__getitem__) == it.label
        at += len(it.choices)
    return Score(right, len(items), 1 / len(items[0].choices))


def ability_items(n: int, shots: Sequence[int] = (0, 1, 2, 4)) -> dict[str, list[Item]]:
    """The items of every task, built once and scored on every model: ``name_tag`` once per k in ``shots``."""
    plays = validation_plays()
    items = {
        "next_line": next_line_items(n, plays),
        "swapped": swapped_items(n, plays),
        "next_speaker": next_speaker_items(n, plays),
    }
    for k in shots:
        items[f"name_tag k={k}"] = name_tag_items(n, k)
    return items


def score_abilities(model, tokenizer, items: dict[str, list[Item]]) -> dict[str, Score]:
    """Every task of ``items`` on one model; ``swapped`` compares sums (same characters), the rest per token."""
    return {name: score_items(model, tokenizer, its, per_token=name != "swapped") for name, its in items.items()}


def hub_abilities(
    names: Sequence[str], items: dict[str, list[Item]], device=None, dtype=None
) -> tuple[dict[str, tuple[int, dict[str, Score]]], str | None]:
    """Real GPT-2 models (hub names such as ``"gpt2-medium"``, or local folders in the hub's layout) on ``items``.

    Returns ``{name: (non-embedding parameters, scores)}`` for the models that loaded, one at a time (each is
    freed before the next), and ``None``; or what loaded before the first download failed, and one line
    saying that the rest could not be fetched (offline).
    """
    from .errors import DownloadError
    from .model import GPT
    from .sizes import non_embedding_params
    from .tokenizers import GPT2Tokenizer

    tokenizer = GPT2Tokenizer(fast=True)
    out: dict[str, tuple[int, dict[str, Score]]] = {}
    for name in names:
        try:
            model = GPT.from_pretrained(name, device=device, dtype=dtype)
        except DownloadError:
            missing = ", ".join(names[len(out) :])
            return out, f"offline: {missing} could not be downloaded, so the ladder's rungs stand alone"
        out[name] = (non_embedding_params(model.config), score_abilities(model, tokenizer, items))
        del model
    return out, None
