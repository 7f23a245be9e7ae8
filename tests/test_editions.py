"""The student edition (gptmini.course.editions) and the checks of the exercises it leaves blank.

Static tests here (fast); the notebooks of both editions are executed in tests/test_notebooks.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gptmini.config import GPTConfig
from gptmini.course import editions
from gptmini.course.checks import package_version
from gptmini.course.checks._report import CheckResult
from gptmini.course.checks.nb01 import check_follower, check_get_batch, check_lower_vocab_size
from gptmini.course.checks.nb02 import check_counted_bigram
from gptmini.course.checks.nb03 import check_softmax
from gptmini.course.checks.nb04 import check_block, check_block_params, check_multihead
from gptmini.course.checks.nb06 import check_gpt2_split, check_merge_pair
from gptmini.course.checks.nb08 import check_embedding_params
from gptmini.course.checks.nb10 import check_bloom_filter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Every notebook of the course is written in the marked-solution pattern (teacher edition).
CONVERTED = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


# ---------------------------------------------------------------------------------------- the writer
CELL = """import torch


def softmax(s):
    ### BEGIN SOLUTION
    # hint: subtract the max first
    e = (s - s.max(-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)
    ### END SOLUTION


check_softmax(softmax)"""


def test_a_region_inside_a_function_becomes_a_raise_with_its_hint():
    stubbed, regions = editions.stub_source(CELL)
    assert "# hint: subtract the max first" in stubbed
    assert "raise NotImplementedError" in stubbed
    assert "e.sum(-1" not in stubbed and "BEGIN SOLUTION" not in stubbed and "END SOLUTION" not in stubbed
    assert stubbed.startswith("import torch") and stubbed.endswith("check_softmax(softmax)")
    assert len(regions) == 1 and regions[0].answer.startswith("e = (s - s.max")  # dedented to the marker
    namespace: dict = {}
    exec(stubbed.replace("check_softmax(softmax)", ""), namespace)
    result = check_softmax(namespace["softmax"])
    assert not result and result.pending and "not yet" in result.message


def test_a_top_level_region_sets_each_assigned_name_to_none():
    answer = "followers = [x]\na, b = 2, 3\ndef f():\n    inner = 1\nwith open(x) as g:\n    out, _ = 4, 5"
    source = f"x = 1\n### BEGIN SOLUTION\n{answer}\n### END SOLUTION\nprint(a)"
    stubbed, _ = editions.stub_source(source)
    assert stubbed.splitlines() == [
        "x = 1",
        "followers = None  # your code here",
        "a = None  # your code here",
        "b = None  # your code here",
        "f = None  # your code here",
        "out = None  # your code here",
        "print(a)",
    ]


@pytest.mark.parametrize(
    "source",
    [
        "### BEGIN SOLUTION\nx = 1",
        "x = 1\n### END SOLUTION",
        "### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
        "### BEGIN SOLUTION\nprint(1)\n### END SOLUTION",  # assigns nothing: no stub possible
    ],
)
def test_broken_markers_are_reported(source):
    with pytest.raises(ValueError):
        editions.stub_source(source)


def test_the_command_writes_notebooks_and_solutions(tmp_path, capsys):
    src = tmp_path / "teacher"
    src.mkdir()
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 99 · demo"),
            new_code_cell(CELL),
            new_markdown_cell("Read on.\n\n<details><summary>Solution</summary>\n\n```python\nq = 2\n```\n</details>"),
            new_markdown_cell("<details><summary>Solution</summary>\n\nx\n</details>"),
        ]
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="✅")]
    nbformat.write(nb, src / "99_demo.ipynb")
    out = tmp_path / "student"
    assert editions.main([str(out), "--from", str(src)]) == 0
    assert "1 notebooks and 1 solution files" in capsys.readouterr().out
    student = nbformat.read(out / "99_demo.ipynb", as_version=4)
    assert [c.cell_type for c in student.cells] == ["markdown", "code", "markdown"]  # the details-only cell is gone
    assert student.cells[1].outputs == [] and "raise NotImplementedError" in student.cells[1].source
    assert student.cells[2].source == "Read on."
    solutions = (out / "solutions" / "99_demo.md").read_text(encoding="utf-8")
    assert "e.sum(-1, keepdim=True)" in solutions and "subtract the max first" in solutions and "q = 2" in solutions
    with pytest.raises(ValueError, match="overwrite"):
        editions.write_student_edition(src, src)


# ------------------------------------------------------------------------------- the course notebooks
@pytest.mark.parametrize("name", CONVERTED, ids=[n.split("_")[0] for n in CONVERTED])
def test_every_marked_region_becomes_a_stub_and_no_answer_leaks(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    teacher_text = "\n".join(_source(c) for c in nb.cells)
    assert "<details>" not in teacher_text, f"{name}: converted notebooks keep their solutions between markers"
    student, regions, _ = editions.student_notebook(nb)
    fewest = 2 if name.startswith("00") else 3  # notebook 00 is a tour of the set-up: two short exercises
    assert fewest <= len(regions) <= 8, f"{name}: {len(regions)} exercises"
    student_text = "\n".join(_source(c) for c in student.cells)
    assert editions.BEGIN not in student_text and editions.END not in student_text
    for region in regions:
        assert region.hints, f"{name}, cell {region.cell}: every exercise needs a '# hint:' line"
        assert "raise NotImplementedError" in region.stub or "= None" in region.stub
        code = [
            line.strip() for line in region.answer.splitlines() if line.strip() and not line.strip().startswith("#")
        ]
        # a line may also stand outside the markers (a demo of a wrong version, say): only extra copies leak
        outside = {line: teacher_text.count(line) - sum(r.answer.count(line) for r in regions) for line in code}
        leaked = [line for line in code if len(line) > 12 and student_text.count(line) > outside[line]]
        assert not leaked, f"{name}, cell {region.cell}: the answer is still in the student notebook: {leaked}"
    # the check cells hide the reference answers: no "expected" value is computed in a check cell
    stub_cells = {r.cell for r in regions}
    assert all(c.cell_type == "code" for i, c in enumerate(student.cells) if i in stub_cells)
    json.dumps(student)  # writable as it is


# ----------------------------------------------------------------------------------- the new checks
def _ok(result: CheckResult) -> bool:
    return bool(result) and "✅" in result.message


def _said(result: CheckResult) -> str:
    """Everything a check printed: its verdict and the lines of its sub-checks."""
    return "\n".join([result.message, *(_said(r) for r in result.details)])


def test_check_get_batch():
    data = torch.arange(100)
    assert _ok(check_get_batch(package_version("get_batch"), data))
    swapped = check_get_batch(lambda d, b, t: (d[:t].repeat(b, 1).T, d[1 : t + 1].repeat(b, 1).T), data, 4, 8)
    assert not swapped and "swapped" in swapped.message
    same = check_get_batch(lambda d, b, t: (d[:t].repeat(b, 1), d[:t].repeat(b, 1)), data)
    assert not same and "shifted" in same.message


def test_check_follower_and_vocab():
    text = "quick quiet qatar queen qu"
    assert _ok(check_follower("u", 4 / 5, text))
    assert "that is a count" in check_follower("u", 4, text).message
    assert "not by the length" in check_follower("u", 4 / len(text), text).message
    assert "looks like an id" in check_follower(17, 0.8, text).message
    assert check_follower(None, None, text).pending
    assert _ok(check_lower_vocab_size(len(set("AbBa".lower())), "AbBa"))
    assert "with capitals" in check_lower_vocab_size(4, "AbBa").message


def test_check_counted_bigram():
    g = torch.Generator().manual_seed(0)
    train, val = torch.randint(5, (400,), generator=g), torch.randint(5, (50,), generator=g)
    val[:2] = torch.tensor([4, 4])
    train[train == 4] = 3  # the pair (4, 4) is never seen in training: unsmoothed counts give inf
    counts = torch.zeros(5, 5).index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)

    def loss(table, data):
        return float(-(table / table.sum(1, keepdim=True)).log()[data[:-1], data[1:]].mean())

    assert _ok(check_counted_bigram(loss(counts + 1, val), train, val, 5))
    assert "add 1 to every count" in check_counted_bigram(math.inf, train, val, 5).message
    assert "training pairs" in check_counted_bigram(loss(counts + 1, train), train, val, 5).message
    assert "sign" in check_counted_bigram(-loss(counts + 1, val), train, val, 5).message


def test_check_block_params():
    assert _ok(check_block_params(lambda c: 12 * c * c + 13 * c))
    assert "weight matrices only" in _said(check_block_params(lambda c: 12 * c * c))
    assert "LayerNorms are missing" in _said(check_block_params(lambda c: 12 * c * c + 9 * c))


def test_check_merge_pair():
    assert _ok(check_merge_pair(package_version("merge")))

    def no_skip(ids, pair, new_id):  # after a match, steps by one: the pair's second id survives
        out, i = [], 0
        while i < len(ids):
            out.append(new_id if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair else ids[i])
            i += 1
        return out

    def drops_last(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids) - 1:
            out.append(new_id if (ids[i], ids[i + 1]) == pair else ids[i])
            i += 2 if (ids[i], ids[i + 1]) == pair else 1
        return out

    assert "skip both ids" in check_merge_pair(no_skip).message
    assert "went missing" in check_merge_pair(drops_last).message
    assert check_merge_pair(lambda ids, pair, new_id: None).pending


def test_check_gpt2_split_accepts_a_pattern():
    from gptmini.tokenizers import GPT2_PATTERN

    assert _ok(check_gpt2_split(GPT2_PATTERN))
    partial = check_gpt2_split(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\s+")
    assert not partial and "join back" in _said(partial)
    assert check_gpt2_split(None).pending


def test_check_embedding_params():
    assert _ok(check_embedding_params(50257 * 768 + 1024 * 768))
    assert "token table alone" in check_embedding_params(50257 * 768).message
    assert "count it once" in check_embedding_params(2 * 50257 * 768 + 1024 * 768).message


class _Bloom:
    """A small Bloom filter; ``any_bit`` reproduces the classic mistake of testing one bit out of k."""

    any_bit = False

    def __init__(self, num_bits, num_hashes):
        self.bits, self.k = [False] * num_bits, num_hashes

    def positions(self, item):
        digest = hashlib.blake2b(item.encode(), digest_size=16).digest()  # not hash(): that changes per process
        h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
        return [(h1 + i * h2) % len(self.bits) for i in range(self.k)]

    def add(self, item):
        for p in self.positions(item):
            self.bits[p] = True

    def __contains__(self, item):
        test = any if self.any_bit else all
        return test(self.bits[p] for p in self.positions(item))


class _AnyBloom(_Bloom):
    any_bit = True


class _ForgetfulBloom(_Bloom):
    def add(self, item):
        self.bits[self.positions(item)[0]] = True


def test_check_bloom_filter():
    assert _ok(check_bloom_filter(_Bloom))
    assert "ALL its k bits" in check_bloom_filter(_AnyBloom).message
    assert "lost" in check_bloom_filter(_ForgetfulBloom).message


def test_package_versions_pass_their_checks():
    config = GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=4, n_embd=32, dropout=0.0)
    assert _ok(check_softmax(package_version("softmax")))
    assert _ok(check_multihead(package_version("MultiHeadAttention")(config), config))
    assert _ok(check_block(package_version("PostLNBlock")(config), config.replace(norm="post")))
    assert _ok(check_block(package_version("PreLNBlock")(config), config.replace(norm="pre")))
    with pytest.raises(KeyError):
        package_version("nothing")


def test_the_converted_notebooks_carry_markers_and_no_details():
    marked = {p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if editions.BEGIN in p.read_text(encoding="utf-8")}
    assert len(CONVERTED) == 13 and set(CONVERTED) == marked  # tests/test_notebooks.py runs both editions of each
    with_details = [name for name in CONVERTED if "<details>" in (NOTEBOOKS / name).read_text(encoding="utf-8")]
    assert not with_details, f"answers belong in marked regions (the solutions folder), not <details>: {with_details}"


def test_not_yet_is_one_falsy_line_and_wins_over_a_combined_verdict(capsys):
    from gptmini.course.checks import combine, not_yet, passed
    from gptmini.course.checks.nb08 import check_residual_init
    from gptmini.course.checks.nb09 import check_top_k

    result = check_residual_init(lambda n_layer: None)  # a stub that returns nothing
    assert not result and result.pending
    result = check_top_k(lambda logits, k: (_ for _ in ()).throw(NotImplementedError()))  # a stub that raises
    assert not result and result.pending and "still a stub" in result.message
    capsys.readouterr()
    merged = combine("two parts", [passed("part one"), not_yet("part two")])
    assert merged.pending and capsys.readouterr().out.count("\n") == 2  # no third, combined line


def test_the_module_runs_as_a_command(tmp_path):
    src = tmp_path / "teacher"
    src.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell(CELL)]), src / "01_demo.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "gptmini.course", "student-edition", str(tmp_path / "out"), "--from", str(src)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "01_demo.ipynb").exists() and (tmp_path / "out" / "solutions" / "01_demo.md").exists()
