"""The Shakespeare fine-tuning tasks: right labels, balanced, split by play with no leakage, repeatable."""

from collections import Counter

import pytest

from gptmini.data import Play
from gptmini.tasks import (
    EXTRA_TASKS,
    GENRES,
    TASK_NAMES,
    Example,
    Task,
    build_task,
    load_glue_like,
    shakespeare_tasks,
    split_plays,
)


def _fake_plays():
    """12 plays, 4 per genre; every line says which play, speaker and position it is, so labels can be checked."""
    plays = []
    for g, genre in enumerate(GENRES):
        for p in range(4):
            title = f"{genre} play {p}"
            lines = []
            for i in range(120):
                speaker = f"S{(i // 6) % 4}"  # speeches of 6 lines, 4 speakers taking turns
                lines.append((speaker, f"g{g} p{p} line {i} by {speaker}"))
            plays.append(Play(title=title, genre=genre, text="", lines=lines))
    return plays


PLAYS = _fake_plays()
WHERE = {line: (play.title, i, speaker) for play in PLAYS for i, (speaker, line) in enumerate(play.lines)}
GENRE_OF = {play.title: play.genre for play in PLAYS}
BY_WORDS = {tuple(sorted(line.split())): where for line, where in WHERE.items()}  # finds a line with swapped words


def _where(line):
    return WHERE.get(line) or BY_WORDS[tuple(sorted(line.split()))]


def test_split_is_by_play_stratified_and_fixed():
    train, test = split_plays(PLAYS)
    assert {p.title for p in train}.isdisjoint(p.title for p in test)
    assert len(train) + len(test) == len(PLAYS)
    assert Counter(p.genre for p in test) == {g: 1 for g in GENRES}  # round(0.25 * 4) per genre
    again = split_plays(list(reversed(PLAYS)))
    assert [p.title for p in again[1]] == [p.title for p in test]  # input order does not matter
    with pytest.raises(ValueError, match="test_fraction"):
        split_plays(PLAYS, test_fraction=1.0)


def _test_titles():
    return {p.title for p in split_plays(PLAYS)[1]}


@pytest.mark.parametrize("name", TASK_NAMES + EXTRA_TASKS)
def test_no_test_line_comes_from_a_training_play(name):
    task = build_task(name, n_train=120, n_test=40, plays=PLAYS)
    test_titles = _test_titles()
    for split, examples in (("train", task.train), ("test", task.test)):
        for ex in examples:
            for text in ex.texts:
                for line in text.split("\n"):
                    assert (_where(line)[0] in test_titles) == (split == "test"), (split, line)


@pytest.mark.parametrize(
    "name, n_classes", [("acceptable", 2), ("genre", 3), ("follows", 2), ("same_speech", 2), ("next_line", 4)]
)
def test_labels_are_balanced_and_chance_is_reported(name, n_classes):
    task = build_task(name, n_train=120, n_test=40, plays=PLAYS)
    assert task.n_classes == n_classes and len(task.labels) == n_classes
    assert len(task.train) == 120 and len(task.test) == 40
    counts = Counter(ex.label for ex in task.train)
    assert set(counts) == set(range(n_classes)) and max(counts.values()) - min(counts.values()) <= 1
    assert task.chance == pytest.approx(max(Counter(ex.label for ex in task.test).values()) / 40)
    assert task.chance <= 1 / n_classes + 1 / 40
    assert len(set(ex.label for ex in task.train[:8])) > 1  # shuffled, not in label order


def test_acceptable_labels():
    task = build_task("acceptable", n_train=100, n_test=30, plays=PLAYS)
    assert task.kind == "classification" and task.labels == ("swapped", "as written")
    for ex in task.train + task.test:
        (line,) = ex.texts
        if ex.label:
            assert line in WHERE
        else:  # a real line with exactly two of its words swapped
            assert line not in WHERE
            original = next(text for text in WHERE if sorted(text.split()) == sorted(line.split()))
            assert sum(a != b for a, b in zip(original.split(), line.split(), strict=True)) == 2


def test_genre_labels():
    task = build_task("genre", n_train=60, n_test=30, plays=PLAYS)
    assert task.kind == "classification"
    for ex in task.train + task.test:
        lines = ex.texts[0].split("\n")
        assert len(lines) == 4
        titles = {WHERE[line][0] for line in lines}
        assert len(titles) == 1 and GENRE_OF[titles.pop()] == GENRES[ex.label]
        positions = [WHERE[line][1] for line in lines]
        assert positions == list(range(positions[0], positions[0] + 4))  # consecutive lines


def _lines(text):
    """(title, position, speaker) of every line of a text."""
    return [WHERE[line] for line in text.split("\n")]


def _consecutive(text, n):
    where = _lines(text)
    assert len(where) == n and len({t for t, _, _ in where}) == 1
    assert [i for _, i, _ in where] == list(range(where[0][1], where[0][1] + n))
    return where


@pytest.mark.parametrize("distractors", ["other_play", "same_play"])
def test_follows_labels(distractors):
    task = build_task("follows", n_train=100, n_test=30, plays=PLAYS, distractors=distractors)
    assert task.kind == "entailment"
    test_titles = _test_titles()
    for ex in task.train + task.test:
        premise = _consecutive(ex.texts[0], 4)  # the 4 lines before the answer
        title, last, speaker = premise[-1]
        tb, ib, sb = WHERE[ex.texts[1]]
        if ex.label:  # the next line, and the same character goes on speaking
            assert (tb, ib, sb) == (title, last + 1, speaker)
        elif distractors == "other_play":
            assert tb != title and (tb in test_titles) == (title in test_titles)
        else:
            assert tb == title and abs(ib - (last + 1)) > 2


@pytest.mark.parametrize("distractors", ["other_play", "same_play"])
def test_same_speech_labels(distractors):
    task = build_task("same_speech", n_train=100, n_test=30, plays=PLAYS, distractors=distractors)
    assert task.kind == "similarity"
    for ex in task.train + task.test:
        a, b = _consecutive(ex.texts[0], 2), _consecutive(ex.texts[1], 2)
        assert len({s for _, _, s in a}) == 1 and len({s for _, _, s in b}) == 1  # each stretch: one speaker
        if ex.label:  # back to back, one speaker
            assert b[0][0] == a[0][0] and b[0][1] == a[0][1] + 2 and b[0][2] == a[0][2]
        elif distractors == "other_play":
            assert b[0][0] != a[0][0]
        else:
            assert b[0][0] == a[0][0] and b[0][2] != a[0][2] and abs(b[0][1] - a[0][1]) > 4


@pytest.mark.parametrize("distractors", ["other_play", "same_play"])
def test_next_line_labels(distractors):
    task = build_task("next_line", n_train=100, n_test=40, plays=PLAYS, distractors=distractors)
    assert task.kind == "multiple_choice"
    assert Counter(ex.label for ex in task.test) == {k: 10 for k in range(4)}
    test_titles = _test_titles()
    for ex in task.train + task.test:
        context, choices = _consecutive(ex.texts[0], 4), ex.texts[1:]
        assert len(choices) == 4 and len(set(choices)) == 4
        title, last, _ = context[-1]
        assert WHERE[choices[ex.label]][:2] == (title, last + 1)
        wrong = [WHERE[c] for k, c in enumerate(choices) if k != ex.label]
        if distractors == "other_play":
            assert all(t != title and (t in test_titles) == (title in test_titles) for t, _, _ in wrong)
        else:
            assert all(t == title and i != last + 1 for t, i, _ in wrong)


def test_context_lines():
    two = build_task("next_line", n_train=20, n_test=8, plays=PLAYS, context_lines=2)
    assert all(len(ex.texts[0].split("\n")) == 2 for ex in two.train + two.test)
    one = build_task("follows", n_train=20, n_test=8, plays=PLAYS, context_lines=1)
    assert all(len(ex.texts[0].split("\n")) == 1 for ex in one.train + one.test)
    with pytest.raises(ValueError, match="context_lines"):
        build_task("follows", plays=PLAYS, context_lines=0)


def test_tasks_are_repeatable_and_seeded():
    one = build_task("next_line", n_train=50, n_test=20, plays=PLAYS, seed=0)
    two = build_task("next_line", n_train=50, n_test=20, plays=PLAYS, seed=0)
    other = build_task("next_line", n_train=50, n_test=20, plays=PLAYS, seed=1)
    assert one.train == two.train and one.test == two.test
    assert one.train != other.train


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown task"):
        build_task("sentiment", plays=PLAYS)
    with pytest.raises(ValueError, match="now 'same_speech'"):
        build_task("same_speaker", plays=PLAYS)
    with pytest.raises(ValueError, match="positive"):
        build_task("genre", n_train=0, plays=PLAYS)
    with pytest.raises(ValueError, match="distinct"):  # 3 x 116 passage starts per genre in the train plays
        build_task("genre", n_train=1500, plays=PLAYS)


def test_real_corpus_tasks():
    tasks = shakespeare_tasks(n_train=40, n_test=20)
    assert list(tasks) == list(TASK_NAMES)
    for task in tasks.values():
        assert isinstance(task, Task) and len(task.train) == 40 and len(task.test) == 20
        assert task.chance == pytest.approx(1 / task.n_classes, abs=0.05)
        assert all(isinstance(ex, Example) and all(t.strip() for t in ex.texts) for ex in task.train)
    from gptmini.data import shakespeare_plays

    train, test = split_plays(shakespeare_plays())
    assert len(test) >= 6 and {p.genre for p in test} == {p.genre for p in train}
    # no line of a test example appears among the training plays' lines
    train_lines = {line for play in train for _, line in play.lines}
    leaked = [ex for ex in tasks["next_line"].test if ex.texts[1 + ex.label] in train_lines]
    assert len(leaked) <= 1  # a stock line ("Exeunt" is dropped, but "My lord?" is not) may recur by chance


def test_real_loader_needs_datasets(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the package were not installed
    with pytest.raises(ImportError, match="shakespeare_tasks"):
        load_glue_like("sst2")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_glue_like("imagenet")


def test_max_chars_keeps_pairs_and_choices_short():
    # only lines 0-9 of each fake play are 18 characters or shorter ("g0 p0 line 7 by S1")
    follows = build_task("follows", n_train=30, n_test=10, plays=PLAYS, max_chars=18)
    assert all(len(ex.texts[1]) <= 18 for ex in follows.train + follows.test)  # the hypothesis, not the context
    next_line = build_task("next_line", n_train=30, n_test=10, plays=PLAYS, max_chars=18)
    assert all(len(t) <= 18 for ex in next_line.train + next_line.test for t in ex.texts[1:])
    assert any(len(ex.texts[1]) > 18 for ex in build_task("follows", 30, 10, plays=PLAYS).train)


def test_bad_distractors():
    with pytest.raises(ValueError, match="distractors"):
        build_task("follows", plays=PLAYS, distractors="elsewhere")
