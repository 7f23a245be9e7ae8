"""The student edition run with wrong answers: does each check name the mistake?

    python bench/wrong_answers.py [NN ...]     # e.g. 03 09; default: every notebook, in course order

For every notebook, the student edition (``gptmini.course.editions``) gets a typical wrong answer in two or
three of its exercises (the others stay stubs), runs top to bottom in fast mode, offline, in a fresh kernel
(one shared ``GPTMINI_HOME``, so notebook 05's checkpoint is there for 09 and 10), and the lines its checks
print are searched for the words that name that mistake. Prints one row per wrong answer and the ❌ line the
learner saw; exit status 1 when a check did not name its mistake or the notebook stopped. Takes a few
minutes (the fast-mode run of every notebook).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from gptmini.course.editions import ClearSolutionsKeepingHints, release_notebook
from gptmini.course.nbgrader_source import HINT, regions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@dataclass(frozen=True)
class Wrong:
    """A wrong answer: the exercise (a piece of its answer), the code a learner wrote, the words that name it."""

    exercise: str  # a piece of the teacher's answer that finds the region
    code: str  # the learner's wrong answer, written at the region's indentation level
    words: str  # what the check must print on a ❌ line
    slip: str  # the mistake, for the report
    fills: tuple[tuple[str, str], ...] = ()  # (exercise, right answer) of the same check, so it gets this far


WRONG: dict[str, list[Wrong]] = {
    "00": [
        Wrong("return logits[0, -1].softmax", "return logits[0, -1]", "those are the logits", "no softmax"),
        Wrong(
            "cfg.n_layer * 12",
            "C = cfg.n_embd\nreturn (cfg.vocab_size + cfg.block_size) * C + 12 * C**2",
            "12 C² is one block",
            "one block, not n_layer",
        ),
        Wrong(
            "ids.append(int(torch.multinomial",
            "ids = list(ids)\nfor _ in range(max_new_tokens):\n"
            "    context = torch.tensor([ids[-model.config.block_size :]], device=model.device)\n"
            "    with torch.no_grad():\n        logits, _ = model(context)\n"
            "    probs = next_token_probs(logits * temperature).cpu()\n"
            "    ids.append(int(torch.multinomial(probs, 1, generator=generator)))\nreturn ids",
            "divides the scores",
            "temperature multiplies the scores",
        ),
    ],
    "01": [
        Wrong(
            "q_next_share",
            'followers = Counter(b for a, b in zip(text, text[1:], strict=False) if a == "q")\n'
            "q_next_char = followers.most_common(1)[0][0]\nq_next_share = followers[q_next_char]",
            "that is a count",
            "a count instead of a share",
        ),
        Wrong(
            "starts = torch.randint",
            "starts = torch.randint(len(data) - block_size, (batch_size,))\n"
            "x = torch.stack([data[i : i + block_size] for i in starts])\nreturn x, x.clone()",
            "y must be x shifted one token",
            "targets not shifted",
        ),
        Wrong(
            "stoi = {ch: i for i, ch in enumerate(chars)}",
            "chars = list(dict.fromkeys(text))\nstoi = {ch: i for i, ch in enumerate(chars)}\n"
            "itos = {i: ch for i, ch in enumerate(chars)}\n\n\ndef encode(s):\n    return [stoi[ch] for ch in s]\n\n\n"
            'def decode(ids):\n    return "".join(itos[i] for i in ids)\n\n\nreturn encode, decode',
            "number the characters in sorted order",
            "vocabulary in order of first appearance",
        ),
    ],
    "02": [
        Wrong(
            "picked = log_probs.gather",
            "log_probs = logits.log_softmax(dim=-1)\n"
            "picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)\nreturn picked.mean()",
            "the sign is flipped",
            "log-likelihood, not its negative",
        ),
        Wrong(
            "counts = torch.ones(V, V)",
            "counts = torch.ones(V, V)\n"
            "counts.index_put_((train_data[:-1], train_data[1:]), torch.ones(len(train_data) - 1), accumulate=True)\n"
            "probs = counts / counts.sum(dim=1, keepdim=True)\n"
            "count_val_loss = float(-probs[train_data[:-1], train_data[1:]].log().mean())",
            "that is the loss on the training pairs",
            "evaluated on the training pairs",
        ),
        Wrong(
            "positions = self.wpe(torch.arange",
            'T = idx.size(1)\nif T > self.block_size:\n    raise ValueError(f"longer than {self.block_size}")\n'
            "return self.drop(self.wte(idx) + self.wpe(idx))",
            "a position row belongs to the place",
            "positions looked up by token id",
        ),
    ],
    "03": [
        Wrong(
            "s = s - s.max",
            "e = s.exp()\nreturn e / e.sum(dim=-1, keepdim=True)",
            "exp(1000) overflows",
            "softmax without the max",
        ),
        Wrong(
            "scores = q @ k.transpose",
            "T, d = q.size(-2), q.size(-1)\nweights = softmax(q @ k.transpose(-2, -1) / math.sqrt(d))\n"
            "allowed = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))\n"
            "weights = weights.masked_fill(~allowed, 0.0)\nreturn weights @ v, weights",
            "the mask was applied after the softmax",
            "mask after the softmax",
        ),
        Wrong(
            "running_mean = v.cumsum",
            "running_mean = v.cumsum(dim=0) / torch.arange(T)[:, None]",
            "row i was divided by i",
            "count from 0",
        ),
    ],
    "04": [
        Wrong(
            "x = self.ln_1(x + self.attn(x))",
            "x = x + self.attn(self.ln_1(x))\nx = x + self.mlp(self.ln_2(x))\nreturn x",
            "your block computes the pre-LN",
            "pre-LN where GPT-1 is post-LN",
        ),
        Wrong("attn = (C * 3 * C", "return 12 * C * C", "counts the weight matrices only", "no biases, no norms"),
        Wrong(
            "return self.dropout(self.c_proj(self.act",
            "return self.dropout(self.c_proj(torch.relu(self.c_fc(x))))",
            "this matches an MLP with ReLU",
            "ReLU, not GELU",
        ),
        Wrong(
            "scores = q @ k.transpose",
            "T, C = x.size(1), x.size(2)\nq, k, v = self.c_attn(x).split(C, dim=2)\n"
            "q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))\n"
            "scores = q @ k.transpose(-2, -1) / math.sqrt(C)\n"
            "allowed = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))\n"
            'weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)\n'
            "return self.resid_dropout(self.c_proj(merge_heads(weights @ v)))",
            "not of the model's width",
            "scaled by √C, not √head_size",
        ),
    ],
    "05": [
        Wrong(
            "L1 = log_probs.gather",
            "log_probs = logits.log_softmax(dim=-1)\nL1 = log_probs.gather(-1, x.unsqueeze(-1)).sum()",
            "log P of the inputs x",
            "gathers the inputs, not the targets",
        ),
        Wrong(
            "if step < warmup_iters",
            "if step >= decay_iters:\n    return min_lr\n"
            "progress = max(0, step - warmup_iters) / (decay_iters - warmup_iters)\n"
            "return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)",
            "there is no warm-up",
            "no warm-up",
        ),
    ],
    "06": [
        Wrong(
            "out, i = [], 0",
            "out, i = [], 0\nwhile i < len(ids):\n    if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n"
            "        out.append(new_id)\n    else:\n        out.append(ids[i])\n    i += 1\nreturn out",
            "skip both ids",
            "steps by one after a merge",
        ),
        Wrong(
            "MY_PATTERN = ",
            "MY_PATTERN = r\"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+|\\s+\"",
            "join back",
            "numbers and punctuation missing from the pattern",
        ),
    ],
    "07": [
        Wrong("return h_ab + h_ba", "return (h_ab + h_ba) / 2", "that is the mean", "the mean, not the sum"),
        Wrong(
            "extract = torch.tensor([len(seq) - 1",
            "seqs = [[special.start, *ids, special.extract] for ids in texts_ids]\nT = max(len(seq) for seq in seqs)\n"
            "idx = torch.tensor([seq + [0] * (T - len(seq)) for seq in seqs], device=clf.gpt.device)\n"
            "h = clf.gpt.hidden_states(idx)\nreturn clf.head(h[:, -1]).softmax(-1)",
            "read each row's state at its own",
            "the last position of padded rows",
        ),
        Wrong(
            "l1 = per_token[kept].mean()",
            "return F.cross_entropy(class_logits, labels)",
            "that is L2 alone",
            "no auxiliary L1",
        ),
        Wrong(
            "special.delimiter, *hypothesis_ids",
            "return [special.start, *premise_ids, *hypothesis_ids, special.extract]",
            "put the delimiter token",
            "no delimiter",
        ),
    ],
    "08": [
        Wrong("embedding_params = 50257", "embedding_params = 50257 * 768", "token table alone", "no positions"),
        Wrong(
            "hooks = [block.register_forward_hook(record)",
            "stds = []\nrecord = lambda module, inputs, output: stds.append(output[0].std().item())\n"
            "hooks = [block.register_forward_hook(record) for block in model.transformer.h]\n"
            "with torch.no_grad():\n    model(idx)\nfor hook in hooks:\n    hook.remove()\nreturn stds",
            "first sequence of the batch only",
            "the first sequence's std",
        ),
        Wrong(
            "0.02 / math.sqrt(2 * n_layer)",
            "return 0.02 / math.sqrt(n_layer)",
            "N counts residual layers",
            "N = n_layer",
        ),
        Wrong(
            "x = x + block.attn(block.ln_1(x))",
            "x = block.ln_1(x + block.attn(x))\nx = block.ln_2(x + block.mlp(x))\nreturn x",
            "that is GPT-1's post-LN order",
            "post-LN in GPT-2",
        ),
    ],
    "09": [
        Wrong(
            "remove_sorted = ",
            "sorted_logits, order = torch.sort(logits, dim=-1, descending=True)\n"
            "sorted_probs = sorted_logits.softmax(dim=-1)\n"
            "remove_sorted = sorted_probs.cumsum(dim=-1) - sorted_probs >= p\n"
            'return logits.masked_fill(remove_sorted, float("-inf"))',
            "undo the sort",
            "mask left in sorted order",
        ),
        Wrong(
            "kth = torch.topk",
            "kth = torch.topk(logits, k, dim=-1).values[..., -1:]\n"
            'return logits.masked_fill(logits <= kth, float("-inf"))',
            "the k-th largest itself is removed",
            "<= instead of <",
        ),
        Wrong(
            "weight_bytes = sum",
            "n = sum(p.numel() for p in model.parameters())\nreturn bandwidth_gb_s * 1e9 / n",
            "count bytes, not parameters",
            "parameters, not bytes",
        ),
    ],
    "10": [
        Wrong(
            "return all(self.bits",
            "return any(self.bits[p] for p in self.positions(item))",
            "ALL its k bits",
            "any bit, not all",
            fills=(("self.bits[p] = True", "for p in self.positions(item):\n    self.bits[p] = True"),),
        ),
        Wrong("return 6 * n_params * n_tokens", "return 2 * n_params * n_tokens", "forward pass only", "2·N·D"),
        Wrong(
            "start = len(context_ids)",
            "ids = torch.tensor([context_ids + continuation_ids], device=model.device)\nwith torch.no_grad():\n"
            "    logp = F.log_softmax(model(ids)[0][0].float(), dim=-1)\nstart = len(context_ids)\n"
            "return sum(logp[start + j, tok].item() for j, tok in enumerate(continuation_ids))",
            "one position *before* it",
            "reads each token at its own position",
        ),
        Wrong(
            'lines.append(f"{query} =>")',
            'lines = [description] if description else []\nlines += [f"{x} => {y}" for x, y in examples[:k]]\n'
            'return "\\n".join([*lines, f"{query} => "])',
            "nothing after it",
            "a space after the query's separator",
        ),
        Wrong(
            "prior = continuation_logprob",
            "scores = [continuation_logprob(model, context_ids, ids) for ids in choices_ids]\n"
            "best = max(range(len(scores)), key=scores.__getitem__)\nreturn best, scores",
            "subtract how likely the same choice is",
            "no calibration: plain likelihood",
        ),
    ],
    "11": [
        Wrong(
            "pattern.diagonal(offset=-1).mean()",
            "return pattern.diagonal(offset=-1).sum()",
            "a sum, not a mean",
            "sum, not mean",
        ),
        Wrong(
            "queries = torch.arange(n, 2 * n)",
            "queries = torch.arange(n, 2 * n)\nreturn pattern[queries, queries - n].mean()",
            "a duplicate-token head",
            "the earlier copy, not the token after it",
        ),
        Wrong("z[:, head] = 0.0", "z = z.clone()\nz[:, :, head] = 0.0\nreturn z", "zeroed position", "wrong axis"),
    ],
    "12": [
        Wrong(
            "n_params = 12 * n_layer",
            "n_params = 12 * n_layer * n_embd**2\nreturn 2 * n_params * n_tokens",
            "2·N·D is the forward pass only",
            "2·N·D",
        ),
        Wrong(
            "intercept = mean_y - slope * mean_x",
            "slope, intercept = np.polyfit(np.log(x), np.log(y), 1)\nreturn slope, intercept",
            "natural log on both axes",
            "ln instead of log10",
        ),
    ],
}


def wrong_edition(path: Path, wrongs: list[Wrong]):
    """The student edition of ``path`` with each wrong answer in place of its stub; and the cells to read.

    The wrong answers go into a copy of the teacher's cells (each in place of its marked answer, hints kept); every
    cell that got one is then stubbed by the release's own preprocessor, so its other exercises stay blank.
    """
    teacher = nbformat.read(path, as_version=4)
    student = release_notebook(teacher, path.name)
    cells, planted = {}, set()
    for wrong in wrongs:
        cells[wrong] = _plant(path.name, teacher, wrong.exercise, wrong.code)
        planted |= {cells[wrong], *(_plant(path.name, teacher, exercise, code) for exercise, code in wrong.fills)}
    for index in planted:
        cell = nbformat.from_dict(dict(teacher.cells[index]))
        ClearSolutionsKeepingHints()._replace_solution_region(cell, "python")  # the exercises not planted
        student.cells[index].source = cell.source
    return student, cells


def _plant(name: str, nb, exercise: str, code: str) -> int:
    """Put ``code`` in place of the one marked answer that contains ``exercise`` (its hints kept); its cell."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.split("\n")
        found += [(index, b, e) for b, e in regions(cell.source) if exercise in "\n".join(lines[b + 1 : e])]
    if len(found) != 1:
        raise ValueError(f"{name}: {len(found)} exercises contain {exercise!r}")
    index, begin, end = found[0]
    lines = nb.cells[index].source.split("\n")
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    hints = [line for line in lines[begin + 1 : end] if line.strip().startswith(HINT)]
    code_lines = [indent + line if line else line for line in code.splitlines()]
    nb.cells[index].source = "\n".join([*lines[:begin], *hints, *code_lines, *lines[end + 1 :]])
    return index


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _error(nb) -> str | None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def run(name: str, home: Path, timeout: int = 600) -> list[tuple[Wrong, str | None]]:
    """Run notebook ``name``'s wrong edition; (wrong answer, the ❌ line that names it or None) for each."""
    from nbclient import NotebookClient

    path = next(NOTEBOOKS.glob(f"{name}_*.ipynb"))
    nb, cells = wrong_edition(path, WRONG[name])
    env = dict(
        os.environ,
        GPTMINI_MODE="fast",
        GPTMINI_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        TQDM_DISABLE="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env=env)
    error = _error(nb)
    if error:
        raise RuntimeError(f"{path.name} stopped: {error}")
    found = []
    for wrong, index in cells.items():
        later = [c for c in nb.cells[index : index + 4] if c.cell_type == "code"][:3]  # the check may follow
        lines = [line for c in later for line in _printed(c).splitlines() if "❌" in line]
        found.append((wrong, next((line for line in lines if wrong.words in line), None)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook numbers (default: all, in course order)")
    args = parser.parse_args(argv)
    names = args.notebooks or sorted(WRONG)
    missing = [n for n in names if n not in WRONG]
    if missing:
        print(f"no wrong answers for notebook(s) {missing}; known: {sorted(WRONG)}", file=sys.stderr)
        return 2
    ok = True
    with tempfile.TemporaryDirectory() as home:
        for name in names:
            started = time.perf_counter()
            try:
                results = run(name, Path(home))
            except RuntimeError as err:
                print(f"{name}  STOPPED  {err}")
                ok = False
                continue
            print(f"{name}  ({time.perf_counter() - started:.0f} s)")
            for wrong, line in results:
                ok &= line is not None
                mark = "named" if line else "NOT NAMED"
                shown = line.strip()[:220] if line else f"no ❌ line with {wrong.words!r}"
                print(f"    {mark:9} {wrong.slip}: {shown}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
