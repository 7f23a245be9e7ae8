"""Reading questions cut from the plays, for notebook 10's question answering: the answer is in the passage.

GPT-2 was tested on CoQA, questions about a passage it is given. A model that has read only Shakespeare
knows nothing about the world ("What is the capital of France?"), but it has read thousands of exchanges
between two speakers. So each item here is a short exchange from a play, as the corpus writes it::

    ROMEO:
    I know not how to tell thee who I am.

    JULIET:
    My ears have not yet drunk a hundred words.

followed by "Who speaks first?" or "Who speaks second?". The answer is one of the two names in the passage,
so a reader who guesses is right half the time; items alternate between the two questions, so always
naming the first (or the last, or the nearest) speaker is also right exactly half the time.

:func:`speaker_questions` builds the items (from plays the caller picks: notebook 10 uses the validation
plays, never trained on); :func:`extract_speaker` reads the answer out of what a model writes after "A:".
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .zeroshot import extract_answer

QUESTIONS = ("Who speaks first?", "Who speaks second?")
_NAME = re.compile(r"[A-Z][A-Z'\-]*(?: [A-Z][A-Z'\-]*)*")  # "ROMEO", "FIRST CITIZEN", "LADY CAPULET"


@dataclass(frozen=True)
class SpeakerQuestion:
    """A passage of two speeches, a question about it, the right name and the two names to choose from."""

    passage: str
    question: str
    answer: str
    candidates: tuple[str, str]

    @property
    def label(self) -> int:
        """Index of the answer in ``candidates``."""
        return self.candidates.index(self.answer)


def speaker_questions(
    plays: Sequence,
    n: int,
    seed: int = 0,
    max_line_chars: int = 60,
    fits: Callable[[SpeakerQuestion], bool] | None = None,
) -> list[SpeakerQuestion]:
    """``n`` items from two-speaker exchanges of ``plays`` (objects with ``.lines``, as from
    ``gptmini.data.shakespeare_plays()``): one line of speaker A, then one of a different speaker B
    (both names in capitals, as the corpus writes them).

    Items alternate "Who speaks first?" / "Who speaks second?", so the answer is the first speaker in half
    of them. Lines are at most ``max_line_chars`` characters; ``fits(item)`` (e.g. "does its prompt fit the
    model's window?") drops items that are too long for the model at hand. Every exchange is used once.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    exchanges = []
    for play in plays:
        lines = play.lines
        for i in range(len(lines) - 1):
            prev = lines[i - 1][0] if i > 0 else None
            (a, line_a), (b, line_b) = lines[i], lines[i + 1]
            # line i opens A's speech and line i + 1 opens B's: the passage shows both speeches' first lines
            short = len(line_a) <= max_line_chars and len(line_b) <= max_line_chars
            # names in capitals only ("Poet" is a role, not a name a reader would answer with)
            if prev != a and a != b and short and a.isupper() and b.isupper():
                exchanges.append((a, line_a, b, line_b))
    random.Random(seed).shuffle(exchanges)
    items: list[SpeakerQuestion] = []
    for a, line_a, b, line_b in exchanges:
        k = len(items) % 2
        passage = f"{a}:\n{line_a}\n\n{b}:\n{line_b}\n"
        item = SpeakerQuestion(passage, QUESTIONS[k], (a, b)[k], (a, b))
        if fits is None or fits(item):
            items.append(item)
        if len(items) == n:
            return items
    raise ValueError(
        f"only {len(items)} exchanges of these plays make usable questions, {n} asked for; "
        "ask for fewer, allow longer lines (max_line_chars) or give more plays"
    )


def extract_speaker(text: str) -> str:
    """The name a model gives after "A:": a speaker tag ("ROMEO:") counts as naming ROMEO.

    :func:`gptmini.zeroshot.extract_answer` skips speaker tags, right for "what" questions; for "who"
    a model trained on plays often answers with a tag on a new line, and that tag *is* its answer. So:
    the first name in capitals on the first line with words, else what ``extract_answer`` finds.
    """
    for raw in text.split("\n"):
        line = re.sub(r"^A:\s*", "", raw.strip())
        if line.startswith("Q:"):
            return ""
        if line:
            found = _NAME.match(line)
            if found and len(found.group()) >= 2:
                return found.group().strip()
            return extract_answer(text)
    return ""
