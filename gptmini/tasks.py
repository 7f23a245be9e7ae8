"""Small fine-tuning tasks cut from the Shakespeare corpus, one per GPT-1 input transformation.

============  ===============  ========================================================  =======
task          transformation   question                                                  classes
============  ===============  ========================================================  =======
acceptable    classification   is this line as written, or were two of its words swapped?  2
follows       entailment       does this line continue the speech of these 4 lines?      2
same_speech   similarity       are these two 2-line stretches one speech, back to back?  2
next_line     multiple choice  which of 4 lines comes after these 4 lines?               4
genre         classification   is this 4-line passage from a comedy, history or tragedy?  3
============  ===============  ========================================================  =======

``acceptable`` is the Shakespeare cousin of CoLA (is this sentence acceptable English?), the classification
task on which GPT-1's pretraining made its biggest jump. ``genre`` is an extra: a model trained from scratch
learns its topic words about as fast as a pretrained one, so it shows little transfer at this scale
(``bench/finetune.py`` reports it beside the four).

No download is needed. Train and test examples come from *different plays* (a fixed split, stratified
by genre folder), so no test line, speaker or scene is ever seen in training; labels are balanced, so
chance is 1 / classes. Only the lines' words are used, never the speakers' names (a name would give the
play, and with it the answer, away).

How hard the three pair tasks are depends on where the wrong lines come from (``distractors``). By
default they come from *another play* of the same split, so a model can win on topic and cast as well as
on the order of the words: that is what a model of a few million parameters, pretrained for minutes on a
CPU, can learn from a couple of thousand examples (``bench/finetune.py`` measures it). With
``distractors="same_play"`` they come from the same play, far from the right place, and only the flow of
the speech tells them apart: a harder version for bigger models.

With a network and the ``datasets`` package, :func:`load_glue_like` fetches a real task of each kind.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

TASK_NAMES = ("acceptable", "follows", "same_speech", "next_line")  # one per transformation
EXTRA_TASKS = ("genre",)
SPAN = 2  # lines per stretch in same_speech
GENRES = ("comedies", "histories", "tragedies")


@dataclass(frozen=True)
class Example:
    """One example: its texts (1 for classification, 2 for pairs, context + choices) and the label index."""

    texts: tuple[str, ...]
    label: int


@dataclass
class Task:
    """A fine-tuning task: which transformation it uses, label names, and fixed train/test examples."""

    name: str
    kind: str  # "classification" | "entailment" | "similarity" | "multiple_choice"
    labels: tuple[str, ...]
    train: list[Example]
    test: list[Example]
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def chance(self) -> float:
        """Accuracy of always answering the most common test label (1 / classes when balanced)."""
        counts = Counter(ex.label for ex in self.test)
        return max(counts.values()) / len(self.test)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, {self.kind}, labels={list(self.labels)}, train={len(self.train)}, "
            f"test={len(self.test)}, chance={self.chance:.3f})"
        )


# ------------------------------------------------------------------------------------ the play split
def split_plays(plays: Sequence, test_fraction: float = 0.25, seed: int = 0) -> tuple[list, list]:
    """(train plays, test plays): within each genre folder a fixed, seeded share of plays is held out.

    Stratifying by genre keeps every genre in both halves; the same split serves all four tasks, so a
    model can also be pretrained on the train plays alone (``"\\n\\n".join(p.text for p in train)``).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    by_genre: dict[str, list] = {}
    for play in plays:
        by_genre.setdefault(play.genre, []).append(play)
    train, test = [], []
    for genre in sorted(by_genre):
        group = sorted(by_genre[genre], key=lambda p: p.title)
        if len(group) < 2:
            raise ValueError(f"genre {genre!r} has only {len(group)} play; a split needs at least 2 per genre")
        random.Random(f"{seed}-{genre}").shuffle(group)
        n_test = min(len(group) - 1, max(1, round(test_fraction * len(group))))
        test += group[:n_test]
        train += group[n_test:]
    return train, test


def _plays(plays: Sequence | None) -> list:
    if plays is None:
        from .data import shakespeare_plays

        plays = shakespeare_plays()
    return list(plays)


def _usable(play, min_words: int, max_chars: int | None = None) -> list[int]:
    """Indices of lines long enough to carry a signal (one-word lines like "O!" are too easy to confuse)
    and, if ``max_chars`` is set, short enough to fit a small model's window whole."""
    return [
        i
        for i, (_, line) in enumerate(play.lines)
        if len(line.split()) >= min_words and (max_chars is None or len(line) <= max_chars)
    ]


# -------------------------------------------------------------------------------------- the builders
def _collect(n: int, n_classes: int, propose) -> list[Example]:
    """Draw ``n`` distinct examples; the k-th gets label k mod n_classes, so labels are balanced.

    ``propose(label)`` returns the texts of an example with that label, or None when a draw failed.
    """
    out: list[Example] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(50 * n + 1000):
        if len(out) == n:
            return out
        label = len(out) % n_classes
        texts = propose(label)
        if texts is not None and texts not in seen:
            seen.add(texts)
            out.append(Example(texts, label))
    if len(out) < n:
        raise ValueError(f"could only draw {len(out)} distinct examples of the {n} asked for; ask for fewer")
    return out


def _far_line(play, i: int, rng: random.Random, usable: list[int], exclude: Sequence[str] = ()) -> int | None:
    """A random usable line at least 3 lines away from line i, with a different text (not in ``exclude``)."""
    text = play.lines[i][1]
    for _ in range(50):
        j = rng.choice(usable)
        other_text = play.lines[j][1]
        if abs(j - i) > 2 and other_text != text and other_text not in exclude:
            return j
    return None


def _genre_examples(plays: list, n: int, rng: random.Random, genres: Sequence[str], n_lines: int) -> list[Example]:
    by_genre = {g: [p for p in plays if p.genre == g] for g in genres}
    for g, group in by_genre.items():
        if not group:
            raise ValueError(f"no play of genre {g!r} in this split")

    def propose(label: int) -> tuple[str, ...]:
        play = rng.choice(by_genre[genres[label]])
        start = rng.randrange(len(play.lines) - n_lines)
        return ("\n".join(line for _, line in play.lines[start : start + n_lines]),)

    return _collect(n, len(genres), propose)


def _acceptable_examples(
    plays: list, n: int, rng: random.Random, min_words: int, max_chars: int | None
) -> list[Example]:
    usable = {p.title: _usable(p, max(min_words, 4), max_chars) for p in plays}

    def propose(label: int) -> tuple[str, ...] | None:  # label 1: as written
        play = rng.choice(plays)
        words = play.lines[rng.choice(usable[play.title])][1].split()
        if label == 0:
            a, b = rng.sample(range(len(words)), 2)
            if words[a] == words[b]:
                return None
            words[a], words[b] = words[b], words[a]
        return (" ".join(words),)  # both kinds joined the same way, so spacing gives nothing away

    return _collect(n, 2, propose)


def _distractor(
    plays: list, usable: dict, play, i: int, rng: random.Random, mode: str, exclude: Sequence[str] = ()
) -> str | None:
    """A line that is *not* the answer: from the same play far from line i, or from another play."""
    if mode == "same_play":
        j = _far_line(play, i, rng, usable[play.title], exclude=exclude)
        return None if j is None else play.lines[j][1]
    other = rng.choice(_others(plays, play))
    text = other.lines[rng.choice(usable[other.title])][1]
    return None if text == play.lines[i][1] or text in exclude else text


def _others(plays: list, play) -> list:
    others = [p for p in plays if p.title != play.title]
    if not others:
        raise ValueError("distractors='other_play' needs at least two plays in each split")
    return others


def _context(play, i: int, n_context: int) -> str | None:
    """The ``n_context`` lines before line i, one per text line (None if line i is too close to the start)."""
    if i < n_context:
        return None
    return "\n".join(line for _, line in play.lines[i - n_context : i])


def _follows_examples(
    plays: list, n: int, rng: random.Random, n_context: int, min_words: int, max_chars: int | None, mode: str
) -> list[Example]:
    usable = {p.title: _usable(p, min_words, max_chars) for p in plays}
    # line i can be a right answer when it is usable and its speaker also spoke line i - 1 (the speech goes on)
    answers = {
        p.title: [i for i in usable[p.title] if i >= n_context and p.lines[i][0] == p.lines[i - 1][0]] for p in plays
    }
    plays = [p for p in plays if answers[p.title]] or plays

    def propose(label: int) -> tuple[str, ...] | None:  # label 1: B continues the speech
        play = rng.choice(plays)
        if not answers[play.title]:
            return None
        i = rng.choice(answers[play.title])
        b = play.lines[i][1] if label else _distractor(plays, usable, play, i, rng, mode)
        return None if b is None else (_context(play, i, n_context), b)

    return _collect(n, 2, propose)


def _stretches(play, min_words: int, max_chars: int | None) -> list[int]:
    """Starts of ``SPAN``-line stretches spoken by one character, every line usable."""
    ok = set(_usable(play, min_words, max_chars))
    lines = play.lines
    return [
        i
        for i in range(len(lines) - SPAN + 1)
        if all(i + k in ok and lines[i + k][0] == lines[i][0] for k in range(SPAN))
    ]


def _same_speech_examples(
    plays: list, n: int, rng: random.Random, min_words: int, max_chars: int | None, mode: str
) -> list[Example]:
    starts = {p.title: _stretches(p, min_words, max_chars) for p in plays}
    start_set = {title: set(ids) for title, ids in starts.items()}
    # a pair that is one speech: two stretches back to back, all 2 * SPAN lines by one speaker
    pairs = {
        p.title: [
            i for i in starts[p.title] if i + SPAN in start_set[p.title] and p.lines[i][0] == p.lines[i + SPAN][0]
        ]
        for p in plays
    }
    plays = [p for p in plays if pairs[p.title]] or plays

    def stretch(play, i: int) -> str:
        return "\n".join(line for _, line in play.lines[i : i + SPAN])

    def propose(label: int) -> tuple[str, ...] | None:  # label 1: one speech
        play = rng.choice(plays)
        if not pairs[play.title]:
            return None
        i = rng.choice(pairs[play.title])
        if label:
            return stretch(play, i), stretch(play, i + SPAN)
        if mode == "other_play":
            other = rng.choice(_others(plays, play))
            return (stretch(play, i), stretch(other, rng.choice(starts[other.title]))) if starts[other.title] else None
        # same play: another character's stretch, far from this one
        speaker = play.lines[i][0]
        for _ in range(50):
            j = rng.choice(starts[play.title])
            if abs(j - i) > 2 * SPAN and play.lines[j][0] != speaker:
                return stretch(play, i), stretch(play, j)
        return None

    return _collect(n, 2, propose)


def _next_line_examples(
    plays: list,
    n: int,
    rng: random.Random,
    n_choices: int,
    n_context: int,
    min_words: int,
    max_chars: int | None,
    mode: str,
) -> list[Example]:
    usable = {p.title: _usable(p, min_words, max_chars) for p in plays}

    def propose(label: int) -> tuple[str, ...] | None:  # label: where the right line goes among the choices
        play = rng.choice(plays)
        i = rng.choice(usable[play.title])
        context = _context(play, i, n_context)
        if context is None:
            return None
        wrong: list[str] = []
        for _ in range(n_choices - 1):
            text = _distractor(plays, usable, play, i, rng, mode, exclude=wrong)
            if text is None:
                return None
            wrong.append(text)
        return (context, *wrong[:label], play.lines[i][1], *wrong[label:])

    return _collect(n, n_choices, propose)


def build_task(
    name: str,
    n_train: int = 2000,
    n_test: int = 1000,
    seed: int = 0,
    plays: Sequence | None = None,
    test_fraction: float = 0.25,
    min_words: int = 3,
    max_chars: int | None = 120,
    distractors: str = "other_play",
    context_lines: int = 4,
) -> Task:
    """Build one task by name (``TASK_NAMES`` or ``EXTRA_TASKS``); the same arguments always give the same examples.

    Lines used as a pair, a hypothesis or a choice have at least ``min_words`` words and at most
    ``max_chars`` characters (None: no limit), so that an answer always fits a small model's window.
    ``follows`` and ``next_line`` show the ``context_lines`` lines before the answer.

    ``distractors`` picks the wrong lines: ``"other_play"`` (default) takes them from another play of
    the same split; ``"same_play"`` from the same play, far from the right place (harder: only the flow
    of the speech tells them apart, not the topic or the cast).
    """
    if distractors not in ("same_play", "other_play"):
        raise ValueError(f"distractors must be 'same_play' or 'other_play', got {distractors!r}")
    if name not in TASK_NAMES + EXTRA_TASKS:
        hint = " ('same_speaker' is now 'same_speech')" if name == "same_speaker" else ""
        raise ValueError(f"unknown task {name!r}{hint}; choose one of {', '.join(TASK_NAMES + EXTRA_TASKS)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    if context_lines < 1:
        raise ValueError(f"context_lines must be at least 1, got {context_lines}")
    train_plays, test_plays = split_plays(_plays(plays), test_fraction, seed)
    tasks = {
        "acceptable": (
            "classification",
            ("swapped", "as written"),
            "Is this line as Shakespeare wrote it, or were two of its words swapped?",
            lambda ps, k, rng: _acceptable_examples(ps, k, rng, min_words, max_chars),
        ),
        "genre": (
            "classification",
            GENRES,
            "Which kind of play is this 4-line passage from?",
            lambda ps, k, rng: _genre_examples(ps, k, rng, GENRES, 4),
        ),
        "follows": (
            "entailment",
            ("no", "yes"),
            f"Does the line continue the speech of the {context_lines} lines before it?",
            lambda ps, k, rng: _follows_examples(ps, k, rng, context_lines, min_words, max_chars, distractors),
        ),
        "same_speech": (
            "similarity",
            ("no", "yes"),
            f"Are the two {SPAN}-line stretches one character's speech, back to back?",
            lambda ps, k, rng: _same_speech_examples(ps, k, rng, min_words, max_chars, distractors),
        ),
        "next_line": (
            "multiple_choice",
            ("A", "B", "C", "D"),
            f"Given {context_lines} lines, which of four lines comes next?",
            lambda ps, k, rng: _next_line_examples(ps, k, rng, 4, context_lines, min_words, max_chars, distractors),
        ),
    }
    kind, labels, description, make = tasks[name]
    train = make(train_plays, n_train, random.Random(f"{seed}-{name}-train"))
    test = make(test_plays, n_test, random.Random(f"{seed}-{name}-test"))
    random.Random(f"{seed}-{name}-order").shuffle(train)  # labels were assigned in a cycle: mix them
    random.Random(f"{seed}-{name}-order-test").shuffle(test)
    return Task(name, kind, labels, train, test, description)


def shakespeare_tasks(
    n_train: int = 2000,
    n_test: int = 1000,
    seed: int = 0,
    plays: Sequence | None = None,
    names: Sequence[str] = TASK_NAMES,
    **options,
) -> dict[str, Task]:
    """Tasks keyed by name (the four of ``TASK_NAMES`` unless ``names`` says otherwise, e.g. ``(*TASK_NAMES,
    "genre")``); ``options`` go to :func:`build_task`."""
    plays = _plays(plays)
    return {name: build_task(name, n_train, n_test, seed, plays, **options) for name in names}


# --------------------------------------------------------------------------- real datasets (optional)
_REAL = {
    # name: (datasets path, config, kind, label names, text fields, test split)
    "sst2": ("glue", "sst2", "classification", ("negative", "positive"), ("sentence",), "validation"),
    "rte": ("glue", "rte", "entailment", ("entailment", "not_entailment"), ("sentence1", "sentence2"), "validation"),
    "mrpc": ("glue", "mrpc", "similarity", ("different", "paraphrase"), ("sentence1", "sentence2"), "validation"),
    "hellaswag": ("Rowan/hellaswag", None, "multiple_choice", ("0", "1", "2", "3"), ("ctx", "endings"), "validation"),
}


def load_glue_like(name: str, n_train: int | None = None, n_test: int | None = None) -> Task:
    """A real task through the ``datasets`` package (needs the network the first time).

    sst2 (classification), rte (entailment), mrpc (similarity), hellaswag (multiple choice). Never needed
    offline: the Shakespeare tasks cover every transformation.
    """
    if name not in _REAL:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(_REAL)}")
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"loading {name!r} needs the 'datasets' package (pip install datasets) and a network; "
            "offline, use shakespeare_tasks() instead"
        ) from err
    path, config, kind, labels, fields, test_split = _REAL[name]

    def convert(split: str, limit: int | None) -> list[Example]:
        rows = datasets.load_dataset(path, config, split=split)
        out = []
        for row in rows:
            if kind == "multiple_choice":
                texts = (row[fields[0]], *row[fields[1]])
            else:
                texts = tuple(row[f] for f in fields)
            out.append(Example(texts, int(row["label"])))
            if limit is not None and len(out) >= limit:
                break
        return out

    return Task(name, kind, labels, convert("train", n_train), convert(test_split, n_test), f"{path}/{config}")
