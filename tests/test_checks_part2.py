"""The check helpers of notebooks 06–10 pass a correct answer and fail a wrong one, naming the mistake."""

from __future__ import annotations

import importlib
import math
from collections import Counter

import pytest
import regex
import torch
import torch.nn.functional as F

from gptmini.course.checks import nb09
from gptmini.course.checks.nb06 import check_bpe_encode, check_bpe_merges, check_gpt2_split
from gptmini.course.checks.nb07 import check_classification_transform, check_entailment_transform, check_l3_loss
from gptmini.course.checks.nb08 import check_pre_ln_block, check_residual_init
from gptmini.course.checks.nb09 import (
    check_decoding_limit,
    check_greedy_decode,
    check_temperature,
    check_top_k,
    check_top_p,
)
from gptmini.course.checks.nb10 import (
    check_calibrated_choice,
    check_continuation_logprob,
    check_few_shot_prompt,
    check_token_f1,
    check_training_flops,
)
from gptmini.tokenizers import GPT2_PATTERN

NOTEBOOK_MODULES = [importlib.import_module(f"gptmini.course.checks.nb{i:02d}") for i in range(12)]


def run(check, *args, capsys=None):
    result = check(*args)
    out = capsys.readouterr().out if capsys is not None else ""
    return result, out


# ------------------------------------------------------------------------------------------- BPE
def learner_bpe(text, num_merges, tie_break=True, recount=True):
    """The notebook-06 trainer, written independently of gptmini's (plain recount per merge)."""
    ids = list(text.encode("utf-8"))
    merges = []
    for i in range(num_merges):
        counts = Counter(zip(ids, ids[1:], strict=False))
        if tie_break:
            pair = min(counts, key=lambda p: (-counts[p], p))
        else:
            pair = counts.most_common(1)[0][0]  # ties go to the pair seen first: a different rule
        new_id = 256 + i
        out, j = [], 0
        while j < len(ids):
            if j + 1 < len(ids) and (ids[j], ids[j + 1]) == pair:
                out.append(new_id)
                j += 2
            else:
                out.append(ids[j])
                j += 1
        merges.append((pair, new_id, counts[pair]))
        ids = out
    return merges


def test_bpe_merges_pass_and_tie_break_failure(capsys):
    assert check_bpe_merges(learner_bpe)
    out = capsys.readouterr().out
    assert "✅" in out and "❌" not in out

    result = check_bpe_merges(lambda t, n: learner_bpe(t, n, tie_break=False))
    out = capsys.readouterr().out
    assert not result
    assert "tied" in out and "smaller pair" in out


def test_bpe_merges_wrong_shape_and_exception(capsys):
    assert not check_bpe_merges(lambda t, n: "nope")
    assert "list of ((a, b), new_id, count)" in capsys.readouterr().out
    assert not check_bpe_merges(lambda t, n: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not check_bpe_merges(lambda t, n: learner_bpe(t, n - 1))
    assert "merges, expected" in capsys.readouterr().out


def learner_encode(text, merges, order_by_rank=True):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pairs = list(zip(ids, ids[1:], strict=False))
        if order_by_rank:
            pair = min(pairs, key=lambda p: merges.get(p, math.inf))
        else:  # wrong: merge the most frequent pair of *this* text
            known = [p for p in pairs if p in merges]
            pair = Counter(known).most_common(1)[0][0] if known else pairs[0]
        if pair not in merges:
            break
        out, j = [], 0
        while j < len(ids):
            if j + 1 < len(ids) and (ids[j], ids[j + 1]) == pair:
                out.append(merges[pair])
                j += 2
            else:
                out.append(ids[j])
                j += 1
        ids = out
    return ids


def test_bpe_encode(capsys):
    assert check_bpe_encode(learner_encode)
    capsys.readouterr()
    assert not check_bpe_encode(lambda t, m: learner_encode(t, m, order_by_rank=False))
    assert "earliest-learned merge" in capsys.readouterr().out
    assert not check_bpe_encode(lambda t, m: list(t.encode("utf-8")))  # no merges at all
    capsys.readouterr()


def test_gpt2_split(capsys):
    assert check_gpt2_split(lambda t: regex.findall(GPT2_PATTERN, t))
    capsys.readouterr()
    assert not check_gpt2_split(str.split)
    assert "join back" in capsys.readouterr().out
    assert not check_gpt2_split(lambda t: regex.findall(r"\S+\s*|\s+", t))
    out = capsys.readouterr().out
    assert "❌" in out


# ------------------------------------------------------------------------------------ fine-tuning
def test_classification_transform(capsys):
    assert check_classification_transform(lambda ids, sp: [sp.start, *ids, sp.extract])
    capsys.readouterr()
    assert not check_classification_transform(lambda ids, sp: [*ids, sp.extract])
    assert "start token" in capsys.readouterr().out
    assert not check_classification_transform(lambda ids, sp: [sp.start, *ids])
    assert "extract" in capsys.readouterr().out


def test_entailment_transform(capsys):
    assert check_entailment_transform(lambda p, h, sp: [sp.start, *p, sp.delimiter, *h, sp.extract])
    capsys.readouterr()
    assert not check_entailment_transform(lambda p, h, sp: [sp.start, *p, *h, sp.extract])
    assert "delimiter" in capsys.readouterr().out


def test_l3_loss(capsys):
    def lm_losses(lm_logits, lm_targets):
        return F.cross_entropy(lm_logits.reshape(-1, lm_logits.size(-1)), lm_targets.reshape(-1), reduction="none")

    def right(logits, labels, lm_logits, lm_targets, lm_mask, lam):
        l1 = lm_losses(lm_logits, lm_targets)[lm_mask.reshape(-1)].mean()
        return F.cross_entropy(logits, labels) + lam * l1

    def swapped(logits, labels, lm_logits, lm_targets, lm_mask, lam):
        l1 = lm_losses(lm_logits, lm_targets)[lm_mask.reshape(-1)].mean()
        return l1 + lam * F.cross_entropy(logits, labels)

    def unmasked(logits, labels, lm_logits, lm_targets, lm_mask, lam):
        return F.cross_entropy(logits, labels) + lam * lm_losses(lm_logits, lm_targets).mean()

    def over_every_position(logits, labels, lm_logits, lm_targets, lm_mask, lam):
        kept = lm_losses(lm_logits, lm_targets) * lm_mask.reshape(-1)
        return F.cross_entropy(logits, labels) + lam * kept.mean()

    assert check_l3_loss(right)
    capsys.readouterr()
    for wrong, words in [
        (swapped, "auxiliary"),
        (unmasked, "positions the mask keeps"),
        (over_every_position, "not by"),
    ]:
        assert not check_l3_loss(wrong)
        assert words in capsys.readouterr().out, wrong.__name__


# ----------------------------------------------------------------------------------------- GPT-2
def test_pre_ln_block(capsys):
    def pre(block, x):
        x = x + block.attn(block.ln_1(x))
        return x + block.mlp(block.ln_2(x))

    def post(block, x):
        x = block.ln_1(x + block.attn(x))
        return block.ln_2(x + block.mlp(x))

    assert check_pre_ln_block(pre)
    capsys.readouterr()
    assert not check_pre_ln_block(post)
    assert "post-LN" in capsys.readouterr().out


def test_residual_init(capsys):
    assert check_residual_init(lambda n: 0.02 / math.sqrt(2 * n))
    assert "fresh 12-layer" in capsys.readouterr().out
    assert not check_residual_init(lambda n: 0.02 / math.sqrt(n))
    assert "two" in capsys.readouterr().out


# -------------------------------------------------------------------------------------- decoding
def my_top_k(logits, k):
    kth = torch.sort(logits, dim=-1, descending=True).values[..., k - 1 : k]
    return torch.where(logits >= kth, logits, torch.tensor(float("-inf")))


def my_top_p(logits, p, drop_crossing=False):
    probs = logits.softmax(-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p
    remove_sorted = (before + sorted_p > p) if drop_crossing else (before >= p)
    if drop_crossing:
        remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def test_temperature(capsys):
    assert check_temperature(lambda logits, t: logits / t)
    capsys.readouterr()
    assert not check_temperature(lambda logits, t: logits * t)
    assert "divide" in capsys.readouterr().out


def test_top_k(capsys):
    assert check_top_k(my_top_k)
    capsys.readouterr()
    assert not check_top_k(lambda logits, k: my_top_k(logits, k + 1))
    assert "keeps" in capsys.readouterr().out
    # strict ">" drops ties at the k-th value, and k-1 tokens remain
    wrong = (
        lambda logits, k: torch.where(  # noqa: E731
            logits > torch.topk(logits, k).values[..., -1:], logits, torch.tensor(float("-inf"))
        )
    )
    assert not check_top_k(wrong)
    assert "k-th largest" in capsys.readouterr().out


def test_top_p(capsys):
    assert check_top_p(my_top_p)
    capsys.readouterr()
    assert not check_top_p(lambda logits, p: my_top_p(logits, p, drop_crossing=True))
    out = capsys.readouterr().out
    assert "past p" in out


def test_greedy_decode(capsys, tiny_model):
    def greedy(model, ids, steps):
        ids = list(ids)
        for _ in range(steps):
            logits, _ = model(torch.tensor([ids]))
            ids.append(int(logits[0, -1].argmax()))
        return ids

    def stale_cache(model, ids, steps):  # forgets to feed the new token back: x never changes
        ids = list(ids)
        x = model.hidden_states(torch.tensor([ids]))
        for _ in range(steps):
            ids.append(int(model.lm_head(x[:, -1]).argmax()))
        return ids

    assert check_greedy_decode(greedy, tiny_model, [1, 2, 3])
    capsys.readouterr()
    assert not check_greedy_decode(lambda m, ids, n: greedy(m, ids, n)[len(ids) :], tiny_model, [1, 2, 3])
    assert "only the new tokens" in capsys.readouterr().out
    assert not check_greedy_decode(stale_cache)
    assert "feed the new token back" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ prompting
def test_continuation_logprob(capsys, tiny_model):
    @torch.no_grad()
    def right(model, context, continuation):
        ids = torch.tensor([context + continuation])
        logits, _ = model(ids)
        logp = logits[0].log_softmax(-1)
        start = len(context)
        return sum(float(logp[start + j - 1, tok]) for j, tok in enumerate(continuation))

    @torch.no_grad()
    def off_by_one(model, context, continuation):
        ids = torch.tensor([context + continuation])
        logits, _ = model(ids)
        logp = logits[0].log_softmax(-1)
        return sum(float(logp[len(context) + j - 2, tok]) for j, tok in enumerate(continuation))

    assert check_continuation_logprob(right, tiny_model)
    capsys.readouterr()
    assert not check_continuation_logprob(off_by_one, tiny_model)
    assert "one position" in capsys.readouterr().out


def _sharp_model():
    """A small GPT whose next-token distributions are far from even (so every slip gives other numbers)."""
    from gptmini import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(20.0)
    return model


def _logp(model, context, continuation):
    from gptmini.zeroshot import score_continuations

    return score_continuations(model, [context], [continuation])[0].logprob


def _chooser(score):
    def choose(model, context, choices, neutral):
        scores = [score(model, context, c, neutral) for c in choices]
        return max(range(len(scores)), key=scores.__getitem__), scores

    return choose


def test_calibrated_choice_passes_and_waits_for_a_stub(capsys):
    model = _sharp_model()
    assert check_calibrated_choice(_chooser(lambda m, x, c, n: _logp(m, x, c) - _logp(m, n, c)), model)
    from gptmini.course.checks import package_version

    assert check_calibrated_choice(package_version("calibrated_choice"), model)
    assert check_calibrated_choice(lambda *args: (_ for _ in ()).throw(NotImplementedError()), model).pending
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("score", "named"),
    [
        (lambda m, x, c, n: _logp(m, x, c), "subtract how likely the same choice is after the neutral prompt"),
        (lambda m, x, c, n: _logp(m, n, c) - _logp(m, x, c), "the two terms are the wrong way round"),
        (lambda m, x, c, n: _logp(m, x[:1], x[1:] + c) - _logp(m, n[:1], n[1:] + c), "the prompts' own tokens"),
        (lambda m, x, c, n: _logp(m, x, c) / _logp(m, n, c), "the log-probabilities subtract"),
        (lambda m, x, c, n: (_logp(m, x, c) - _logp(m, n, c)) / len(c), "not per-token means"),
        (lambda m, x, c, n: _logp(m, x, c) - _logp(m, n, x), "not the context after it"),
    ],
    ids=["no-calibration", "reversed", "prompt-tokens", "ratio-of-logs", "per-token", "context-after-neutral"],
)
def test_calibrated_choice_slips_are_named(score, named, capsys):
    result = check_calibrated_choice(_chooser(score), _sharp_model())
    assert not result and not result.pending
    assert named in capsys.readouterr().out


def test_calibrated_choice_names_the_lowest_score_picked(capsys):
    def lowest(model, context, choices, neutral):
        scores = [_logp(model, context, c) - _logp(model, neutral, c) for c in choices]
        return min(range(len(scores)), key=scores.__getitem__), scores

    assert not check_calibrated_choice(lowest, _sharp_model())
    assert "the highest calibrated score" in capsys.readouterr().out


def test_token_f1(capsys):
    from gptmini.metrics import normalize_answer

    def f1(pred, ref):
        p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
        common = sum((Counter(p) & Counter(r)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(r)
        return 2 * precision * recall / (precision + recall)

    def no_normalising(pred, ref):
        p, r = pred.split(), ref.split()
        common = sum((Counter(p) & Counter(r)).values())
        return 0.0 if common == 0 else 2 * common / (len(p) + len(r))

    assert check_token_f1(f1)
    capsys.readouterr()
    assert not check_token_f1(no_normalising)
    assert "normalise" in capsys.readouterr().out


def test_training_flops(capsys):
    assert check_training_flops(lambda n, d: 6 * n * d)
    capsys.readouterr()
    assert not check_training_flops(lambda n, d: 2 * n * d)
    assert "backward" in capsys.readouterr().out


def test_misuse_raises():
    import pytest

    with pytest.raises(TypeError, match="function"):
        check_top_k("not a function")


@pytest.mark.parametrize("module", NOTEBOOK_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_check_is_exported(module):
    names = [n for n in dir(module) if n.startswith("check_")]
    assert sorted(names) == sorted(n for n in module.__all__ if n.startswith("check_"))


def test_pre_ln_check_does_not_depend_on_callers_seed(capsys):
    def pre(block, x):
        x = x + block.attn(block.ln_1(x))
        return x + block.mlp(block.ln_2(x))

    for seed in (1, 123):
        torch.manual_seed(seed)
        assert check_pre_ln_block(pre)


# ------------------------------------------------------------------------------------------- decoding limit
def limit_right(bandwidth, model):
    return bandwidth * 1e9 / sum(p.numel() * p.element_size() for p in model.parameters())


def test_decoding_limit_passes_the_right_answer(capsys):
    assert check_decoding_limit(limit_right)
    assert "GPT-2 small, float32, 19 GB/s matches gptmini (38.2 tokens/s)" in capsys.readouterr().out
    no_positions = lambda bw, m: (
        bw
        * 1e9
        / sum(  # noqa: E731  the one-row-per-token wpe left out is fine too
            p.numel() * p.element_size() for n, p in m.named_parameters() if "wpe" not in n
        )
    )
    assert check_decoding_limit(no_positions)
    torch.manual_seed(0)
    small = nb09._lively_model()
    assert check_decoding_limit(limit_right, model=small)


def test_decoding_limit_names_the_usual_mistakes(capsys):
    def state_dict_bytes(bw, m):  # the tied matrix appears twice in a state_dict
        return bw * 1e9 / sum(t.numel() * t.element_size() for t in m.state_dict().values())

    def no_output_layer(bw, m):
        return bw * 1e9 / sum(p.numel() * p.element_size() for n, p in m.named_parameters() if "wte" not in n)

    mistakes = {
        "bits vs bytes": lambda bw, m: bw * 1e9 / (8 * sum(p.numel() * p.element_size() for p in m.parameters())),
        "count it once": state_dict_bytes,
        "read on every step": no_output_layer,
        "GB vs GiB": lambda bw, m: bw * 2**30 / sum(p.numel() * p.element_size() for p in m.parameters()),
        "not a fixed 4": lambda bw, m: bw * 1e9 / (4 * sum(p.numel() for p in m.parameters())),
        "multiply by 1e9": lambda bw, m: bw / sum(p.numel() * p.element_size() for p in m.parameters()),
    }
    for hint, fn in mistakes.items():
        assert not check_decoding_limit(fn), hint
        assert hint in capsys.readouterr().out


def test_decoding_limit_survives_a_broken_answer(capsys):
    assert not check_decoding_limit(lambda bw, m: None)
    assert not check_decoding_limit(lambda bw, m: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_few_shot_prompt_names_the_usual_slips(capsys):
    def right(description, examples, query, k):
        if not 0 <= k <= len(examples):
            raise ValueError(f"k must be between 0 and {len(examples)}")
        return "\n".join(
            [*([description] if description else []), *[f"{x} => {y}" for x, y in examples[:k]], f"{query} =>"]
        )

    def trailing_space(description, examples, query, k):
        return right(description, examples, query, k) + " "

    def every_example(description, examples, query, k):
        return right(description, examples, query, len(examples))

    def french_first(description, examples, query, k):
        right(description, examples, query, k)  # the same refusal
        lines = [f"{y} => {x}" for x, y in examples[:k]]
        return "\n".join([*([description] if description else []), *lines, f"{query} =>"])

    def never_refuses(description, examples, query, k):
        return right(description, examples, query, min(k, len(examples)))

    assert check_few_shot_prompt(right)
    capsys.readouterr()
    for wrong, words in [
        (trailing_space, "nothing after it"),
        (every_example, "the first k, not all"),
        (french_first, "the English word, the separator, then its French"),
        (never_refuses, "raise ValueError"),
    ]:
        assert not check_few_shot_prompt(wrong)
        assert words in capsys.readouterr().out, wrong.__name__


def test_residual_stds_names_a_leftover_hook_and_the_first_sequence(capsys):
    from gptmini.course.checks.nb08 import check_residual_stds

    def measure(model, idx, first_only=False, remove=True):
        stds = []
        record = lambda module, inputs, out: stds.append((out[0] if first_only else out).std().item())  # noqa: E731
        hooks = [block.register_forward_hook(record) for block in model.transformer.h]
        with torch.no_grad():
            model(idx)
        for hook in hooks if remove else ():
            hook.remove()
        return stds

    assert check_residual_stds(measure)
    capsys.readouterr()
    assert not check_residual_stds(lambda model, idx: measure(model, idx, first_only=True))
    assert "first sequence of the batch only" in capsys.readouterr().out
    assert not check_residual_stds(lambda model, idx: measure(model, idx, remove=False))
    assert "left a hook on 6 of the 6 blocks" in capsys.readouterr().out
