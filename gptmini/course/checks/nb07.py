"""Notebook 07 (GPT-1 fine-tuning): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ...config import GPTConfig
from ._cases import Case, run_cases
from ._report import CheckResult, call_learner, combine, compare_tensors, compare_values, failed, require_callable

__all__ = [
    "check_classification_transform",
    "check_entailment_transform",
    "check_l3_loss",
    "check_classifier_head",
    "check_classify",
    "check_similarity_sum",
    "check_choice_softmax",
]


def _ids_of(value: Any) -> Any:
    """A transformed sequence as a list of ints, whether given as a list, a tensor, (ids, pos) or an Encoded."""
    if hasattr(value, "ids"):
        value = value.ids
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (list, tuple, torch.Tensor)):
        value = value[0]
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    return value


def check_classification_transform(transform_fn: Callable[..., Any]) -> CheckResult:
    """``transform_fn(text_ids, special)`` -> ``<s> text <e>`` as ids, as ``gptmini.finetune.classification_input``.

    ``special`` is a :class:`gptmini.finetune.SpecialTokens` (``.start``, ``.delimiter``, ``.extract``).
    """
    from ...finetune import SpecialTokens, classification_input

    def cases() -> Iterator[Case]:
        for text_ids, base in (([5, 6, 7], 100), ([42], 7), (list(range(10, 30)), 64)):
            special = SpecialTokens.for_vocab(base)
            what = f"classification input for {text_ids[:4]}{'...' if len(text_ids) > 4 else ''}"
            expected = classification_input(text_ids, special).ids
            yield Case(what, (list(text_ids), special), expected, dict(special=special))

    return run_cases("check_classification_transform", "transform_fn", transform_fn, cases(), _judge_classification)


def _judge_classification(case: Case, value: Any) -> CheckResult:
    got, special, hint = _ids_of(value), case.data["special"], None
    if isinstance(got, list) and got != case.expected:
        if got[:1] != [special.start]:
            hint = "begin with the start token special.start (<s>)"
        elif got[-1:] != [special.extract]:
            hint = "end with special.extract (<e>): the classifier reads the final hidden state there"
        elif special.delimiter in got:
            hint = "a single text needs no delimiter $: <s> text <e>"
    return compare_values(case.what, got, case.expected, hint)


def check_entailment_transform(transform_fn: Callable[..., Any]) -> CheckResult:
    """``transform_fn(premise_ids, hypothesis_ids, special)`` -> ``<s> premise $ hypothesis <e>`` as ids."""
    from ...finetune import SpecialTokens, entailment_input

    special = SpecialTokens.for_vocab(100)
    cases = (
        Case(
            f"entailment input for {premise} / {hypothesis}",
            (list(premise), list(hypothesis), special),
            entailment_input(premise, hypothesis, special).ids,
            dict(special=special, premise=premise),
        )
        for premise, hypothesis in (([5, 6], [7, 8, 9]), ([11], [12]), ([1, 2, 3, 4], [5]))
    )
    return run_cases("check_entailment_transform", "transform_fn", transform_fn, cases, _judge_entailment)


def _judge_entailment(case: Case, value: Any) -> CheckResult:
    got, special, hint = _ids_of(value), case.data["special"], None
    if isinstance(got, list) and got != case.expected:
        if special.delimiter not in got:
            hint = "put the delimiter token special.delimiter ($) between premise and hypothesis"
        elif got.index(special.delimiter) != len(case.data["premise"]) + 1:
            hint = "the premise comes first, then $, then the hypothesis"
    return compare_values(case.what, got, case.expected, hint)


def _l3_case(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Class logits (4, 3), labels, LM logits (4, 6, 11), next tokens (4, 6) and a ragged mask of kept positions."""
    g = torch.Generator().manual_seed(seed)
    class_logits = torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 2, 1, 2])
    lm_logits = 2 * torch.randn(4, 6, 11, generator=g)
    lm_targets = torch.randint(0, 11, (4, 6), generator=g)
    lm_mask = torch.arange(6) < torch.tensor([6, 4, 2, 5]).unsqueeze(1)  # each row: its text, then padding
    return class_logits, labels, lm_logits, lm_targets, lm_mask


def check_l3_loss(l3_fn: Callable[..., Any]) -> CheckResult:
    """``l3_fn(class_logits, labels, lm_logits, lm_targets, lm_mask, lam)`` -> L3 = L2 + λ·L1.

    L2 is the classifier's cross-entropy; L1 the mean next-token cross-entropy over the positions ``lm_mask``
    keeps (the text's own next tokens: not padding, not the step after the extract token).
    """
    require_callable(l3_fn, "l3_fn", "check_l3_loss")
    class_logits, labels, lm_logits, lm_targets, lm_mask = _l3_case()
    l2 = float(F.cross_entropy(class_logits, labels))
    per_token = F.cross_entropy(lm_logits.transpose(1, 2), lm_targets, reduction="none")
    l1 = float(per_token[lm_mask].mean())
    l1_all = float(per_token.mean())
    l1_over_all = float(per_token[lm_mask].sum() / per_token.numel())
    l1_sum = float(per_token[lm_mask].sum())
    results = []
    for lam in (0.5, 0.0, 2.0):
        what = f"L3 with λ={lam}"
        value, error = call_learner(what, l3_fn, class_logits, labels, lm_logits, lm_targets, lm_mask, lam)
        if error is not None:
            return error
        if isinstance(value, tuple):
            value = value[0]
        expected = torch.tensor(l2 + lam * l1)
        slips = [
            (l1 + lam * l2, "λ weighs the auxiliary language-model loss L1, not the task loss L2: L3 = L2 + λ·L1"),
            (l2, "that is L2 alone: add the auxiliary language-model loss, λ·L1"),
            (
                l2 + lam * l1_all,
                "L1 counts only the positions the mask keeps: padding and the step after the extract "
                "token have no next token of the text",
            ),
            (
                l2 + lam * l1_over_all,
                "average over the kept positions only: divide by how many the mask keeps, not by every position",
            ),
            (l2 + lam * l1_sum, "L1 is a mean over the kept positions, not their sum"),
            (l2 - lam * l1, "both terms are losses (cross-entropies), so they add: L3 = L2 + λ·L1"),
            (-(l2 + lam * l1), "use the cross-entropy (a positive loss), not the log-likelihood"),
            (-l2, "use the cross-entropy (a positive loss), not the log-likelihood"),
        ]
        hint = None
        if isinstance(value, (torch.Tensor, float)) and torch.as_tensor(value).numel() == 1:
            v = float(value)
            if not math.isclose(v, float(expected), rel_tol=1e-4):
                hint = next((h for slip, h in slips if lam and math.isclose(v, slip, rel_tol=1e-4)), None)
                hint = hint or next((h for slip, h in slips[-2:] if math.isclose(v, slip, rel_tol=1e-4)), None)
        results.append(compare_tensors(what, value, expected, hint=hint))
    return combine("check_l3_loss", results)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _slip(got: Any, slips: list[tuple[str, torch.Tensor]]) -> str | None:
    """The description of the first slip whose result ``got`` equals (same shape, same values), if any."""
    if not isinstance(got, torch.Tensor):
        return None
    got = got.detach().to("cpu", torch.float64)
    for hint, value in slips:
        value = value.to(torch.float64)
        if got.shape == value.shape and torch.allclose(got, value, rtol=1e-4, atol=1e-6):
            return hint
    return None


def check_classifier_head(probs_fn: Callable[..., Any]) -> CheckResult:
    """``probs_fn(h, extract, W_y, b_y)`` -> P(y | x) = softmax(h_l^m W_y + b) at each row's extract token.

    ``h`` is (N, T, C), the final hidden states; ``extract`` (N,) the position of ⟨e⟩ in each row (inputs are
    padded on the right, so it is not always the last position); ``W_y`` is (classes, C), as ``nn.Linear``
    stores it, and ``b_y`` (classes,). The answer is (N, classes), each row summing to 1.
    """
    return run_cases("check_classifier_head", "probs_fn", probs_fn, _classifier_cases(), _judge_classifier)


def _classifier_cases() -> Iterator[Case]:
    for k, (n, t, c, classes) in enumerate(((3, 7, 8, 2), (4, 5, 6, 3))):
        gen = _generator(k)
        h = torch.randn(n, t, c, generator=gen)
        extract = torch.randint(1, t - 1, (n,), generator=gen)
        extract[0] = t - 1  # one row without padding, the others padded on the right
        w, b = torch.randn(classes, c, generator=gen), torch.randn(classes, generator=gen)
        rows = torch.arange(n)
        logits = h[rows, extract] @ w.T + b
        what = f"P(y | x) for {n} sequences of {t} positions, {classes} classes"
        args = (h.clone(), extract.clone(), w.clone(), b.clone())
        yield Case(what, args, logits.softmax(-1), dict(h=h, extract=extract, w=w, b=b, rows=rows, logits=logits))


def _judge_classifier(case: Case, value: Any) -> CheckResult:
    h, extract, w, b, rows, logits = (case.data[k] for k in ("h", "extract", "w", "b", "rows", "logits"))
    slips = [
        (
            "that reads the last position of every row, but padded rows end before it: take h at each row's "
            "extract position (h[rows, extract])",
            (h[:, -1] @ w.T + b).softmax(-1),
        ),
        (
            "that reads position 0, the start token <s>: the head reads the state at <e>",
            (h[:, 0] @ w.T + b).softmax(-1),
        ),
        ("that averages all positions: the head reads the one state at <e>", (h.mean(1) @ w.T + b).softmax(-1)),
        ("those are the logits: finish with a softmax over the classes", logits),
        ("the softmax runs over the batch (dim 0): it should run over the classes (dim -1)", logits.softmax(0)),
        ("the bias b_y is missing: h W_yᵀ + b_y", (h[rows, extract] @ w.T).softmax(-1)),
        ("those are log-probabilities (log_softmax): the question asks for probabilities", logits.log_softmax(-1)),
    ]
    return compare_tensors(case.what, value, case.expected, hint=_slip(value, slips))


def _classify(clf, texts_ids, special) -> torch.Tensor:
    """P(y | x) for N texts: ⟨s⟩ text ⟨e⟩ each, padded on the right, the head on the final state at each ⟨e⟩."""
    seqs = [[special.start, *ids, special.extract] for ids in texts_ids]
    t = max(len(seq) for seq in seqs)
    idx = torch.tensor([seq + [0] * (t - len(seq)) for seq in seqs], device=clf.gpt.device)
    extract = torch.tensor([len(seq) - 1 for seq in seqs], device=idx.device)
    with torch.no_grad():
        return clf(idx, extract).logits.softmax(-1)


def _classify_slips(clf, texts_ids, special) -> list[tuple[str, torch.Tensor]]:
    """What the usual slips of the transformed input and the head read give (hint, probabilities)."""

    def run(seqs, extract_at, left=False):
        t = max(len(seq) for seq in seqs)
        pad = [[0] * (t - len(seq)) for seq in seqs]
        rows = [p + seq if left else seq + p for seq, p in zip(seqs, pad, strict=True)]
        idx = torch.tensor(rows)
        extract = torch.tensor([extract_at(seq, t) for seq in seqs])
        with torch.no_grad():
            h = clf.gpt.hidden_states(idx)
            return clf.head(h[torch.arange(len(seqs)), extract])

    s, e = special.start, special.extract
    full = [[s, *ids, e] for ids in texts_ids]
    at_e = lambda seq, t: len(seq) - 1  # noqa: E731 - small table of readers
    slips = [
        ("padded rows end before the last position: read each row's state at its own ⟨e⟩", full, lambda q, t: t - 1),
        ("that reads ⟨s⟩, the first position: the head reads the state at ⟨e⟩", full, lambda q, t: 0),
        ("the transformed input starts with the start token ⟨s⟩: ⟨s⟩ text ⟨e⟩", [[*i, e] for i in texts_ids], at_e),
        ("the head reads the final state at the extract token ⟨e⟩, placed after the text", [[s, *i] for i in texts_ids],
         at_e),
    ]  # fmt: skip
    found = [(hint, run(seqs, at).softmax(-1)) for hint, seqs, at in slips]
    left = "pad on the right: padding in front of a text moves its positions, and every later token attends to it"
    found.append((left, run(full, lambda q, t: t - 1, left=True).softmax(-1)))
    found.append(("those are the logits: finish with a softmax over the classes", run(full, at_e)))
    return found


def check_classify(classify_fn: Callable[..., Any]) -> CheckResult:
    """``classify_fn(clf, texts_ids, special)`` -> P(y | x) (N, classes) as gptmini's ``GPT1Classifier`` gives it.

    Each text becomes ⟨s⟩ text ⟨e⟩; the batch is padded on the right; the head reads the final hidden state at
    each row's ⟨e⟩; a softmax over the classes. Tried on a small classifier (eval mode) with texts of three lengths.
    """
    from ...finetune import prepare_classifier
    from ...model import GPT

    require_callable(classify_fn, "classify_fn", "check_classify")
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    clf, special = prepare_classifier(gpt, "classification", n_classes=3)
    with torch.no_grad():
        clf.head.weight.normal_(0.0, 1.0, generator=_generator(30))
        clf.head.bias.normal_(0.0, 1.0, generator=_generator(31))
    clf.eval()
    texts = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7, 9]]
    what = f"P(y | x) for {len(texts)} texts of {', '.join(str(len(t)) for t in texts)} tokens"
    with torch.no_grad():
        value, error = call_learner(what, classify_fn, clf, [list(t) for t in texts], special)
    if error is not None:
        return error
    expected = _classify(clf, texts, special)
    return compare_tensors(what, value, expected, hint=_slip(value, _classify_slips(clf, texts, special)))


def check_similarity_sum(features_fn: Callable[..., Any]) -> CheckResult:
    """``features_fn(h_ab, h_ba)`` -> what the similarity head reads: the two orders' states added element-wise.

    ``h_ab`` and ``h_ba`` are (N, C): the final hidden states at ⟨e⟩ of ⟨s⟩ A $ B ⟨e⟩ and of ⟨s⟩ B $ A ⟨e⟩.
    GPT-1 adds them (the answer is (N, C)), so the head gives the same answer whichever text comes first.
    """
    return run_cases("check_similarity_sum", "features_fn", features_fn, _similarity_cases(), _judge_similarity)


def _similarity_cases() -> Iterator[Case]:
    for k, (n, c) in enumerate(((3, 8), (2, 5))):
        gen = _generator(10 + k)
        h_ab, h_ba = torch.randn(n, c, generator=gen), torch.randn(n, c, generator=gen)
        what = f"similarity features of {n} pairs of {c}-wide states"
        yield Case(what, (h_ab.clone(), h_ba.clone()), h_ab + h_ba, dict(h_ab=h_ab, h_ba=h_ba))


def _judge_similarity(case: Case, value: Any) -> CheckResult:
    h_ab, h_ba = case.data["h_ab"], case.data["h_ba"]
    concat = "that concatenates the two orders (2C numbers per pair): GPT-1 adds them element-wise, h_ab + h_ba"
    one_order = "that uses one order only: add both orders' states, so the order of A and B does not matter"
    slips = [
        (concat, torch.cat([h_ab, h_ba], dim=-1)),
        (concat, torch.cat([h_ba, h_ab], dim=-1)),
        (concat, torch.stack([h_ab, h_ba], dim=-1)),
        ("that stacks the pairs along the batch: add the two (N, C) states element-wise", torch.cat([h_ab, h_ba])),
        (one_order, h_ab),
        (one_order, h_ba),
        ("that is the mean: the paper adds the two states (twice the mean)", (h_ab + h_ba) / 2),
        ("that multiplies the two states: add them element-wise", h_ab * h_ba),
        ("that subtracts one order from the other: add them, so swapping A and B changes nothing", h_ab - h_ba),
        (
            "that sums each state's numbers into one: add the two states, keeping C numbers",
            h_ab.sum(-1) + h_ba.sum(-1),
        ),
    ]
    return compare_tensors(case.what, value, case.expected, hint=_slip(value, slips))


def check_choice_softmax(probs_fn: Callable[..., Any]) -> CheckResult:
    """``probs_fn(h, w, b)`` -> P(choice k) for each example: one score per choice, softmax over the choices.

    ``h`` is (N, K, C): the final hidden state at ⟨e⟩ of ⟨s⟩ context $ answer_k ⟨e⟩ for each of the K
    choices; ``w`` (1, C) and ``b`` (1,) are the head, a linear layer to one number. The answer is (N, K).
    """
    return run_cases("check_choice_softmax", "probs_fn", probs_fn, _choice_cases(), _judge_choice)


def _choice_cases() -> Iterator[Case]:
    for k, (n, choices, c) in enumerate(((3, 4, 8), (5, 2, 6))):
        gen = _generator(20 + k)
        h = torch.randn(n, choices, c, generator=gen)
        w, b = torch.randn(1, c, generator=gen), torch.randn(1, generator=gen)
        scores = (h @ w.T + b).squeeze(-1)  # (N, K): one score per choice
        what = f"P(choice) for {n} examples with {choices} choices each"
        yield Case(what, (h.clone(), w.clone(), b.clone()), scores.softmax(-1), dict(h=h, scores=scores))


def _judge_choice(case: Case, value: Any) -> CheckResult:
    h, scores = case.data["h"], case.data["scores"]
    n, choices = scores.shape
    one = "that is a softmax over a single score (always 1): squeeze to (N, K) first, then softmax over the K"
    slips = [
        ("the softmax runs over the batch (dim 0): one softmax per example, over its K choices", scores.softmax(0)),
        (
            "a sigmoid judges each choice alone: the choices compete, so take a softmax over the K scores",
            scores.sigmoid(),
        ),
        ("those are the raw scores: finish with a softmax over the choices", scores),
        (
            "one score per choice is (N, K): squeeze the last dimension of (N, K, 1)",
            scores.softmax(-1).unsqueeze(-1),
        ),
        (one, torch.ones(n, choices, 1)),
        (one, torch.ones(n, choices)),
        (
            "that softmaxes each hidden state over its C numbers: score each choice with the head first",
            h.softmax(-1),
        ),
    ]
    hint = _slip(value, slips)
    if isinstance(value, torch.Tensor) and value.shape == (n, choices, 1) and hint is None:
        return failed(
            case.what, f"has shape {tuple(value.shape)}", "squeeze to (N, K): one score per choice, then softmax"
        )
    return compare_tensors(case.what, value, case.expected, hint=hint)


def _entailment_input(premise_ids, hypothesis_ids, special) -> list[int]:
    from ...finetune import entailment_input

    return entailment_input(premise_ids, hypothesis_ids, special).ids


def _l3_loss(class_logits, labels, lm_logits, lm_targets, lm_mask, lam):
    from ...finetune import combined_loss

    lm_loss = F.cross_entropy(lm_logits[lm_mask].float(), lm_targets[lm_mask])  # the kept positions only
    return combined_loss(class_logits, labels, lm_loss, lam)[0]


def _classifier_probs(h: torch.Tensor, extract: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(h.size(0), device=h.device)
    return (h[rows, extract] @ w.T + b).softmax(-1)


def _choice_probs(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (h @ w.T + b).squeeze(-1).softmax(-1)


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "entailment_input": lambda: _entailment_input,
    "l3_loss": lambda: _l3_loss,
    "classifier_probs": lambda: _classifier_probs,
    "classify": lambda: _classify,
    "similarity_sum": lambda: lambda h_ab, h_ba: h_ab + h_ba,
    "choice_probs": lambda: _choice_probs,
}
