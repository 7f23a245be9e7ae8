"""GPT-1 fine-tuning: special tokens, the four input transformations, the classifier head and L3 = L2 + λ·L1.

GPT-1 changes almost nothing when it moves from pretraining to a task. Every input becomes one token
sequence (or a few) framed by three new tokens: start ⟨s⟩, delimiter $ and extract ⟨e⟩. The pretrained
transformer reads it, and a single new linear layer reads the final hidden state at the extract position:
P(y | x) = softmax(h_l^m · W_y). The language-modelling loss on the same inputs is kept as an auxiliary
objective: L3 = L2 + λ·L1 (λ = 0.5 in the paper; λ = 0 switches it off).

The special tokens do not depend on the tokenizer: their ids are simply the next free ids after the
model's vocabulary, and the embedding table grows by three rows (the old rows are untouched).

Truncation rule (when an input does not fit the context window): the *end* of the context (or passage,
or premise) is kept and its beginning dropped, while the answer / hypothesis is always kept whole; a
similarity pair caps both texts at one length, so the longer text loses its beginning first. An answer
that cannot fit even on its own is an error, never a silent drop.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import GPT
from .optim import configure_optimizer, get_lr, set_lr
from .rng import preserved_rng
from .utils import eval_mode, unwrap

Kind = Literal["classification", "entailment", "similarity", "multiple_choice"]
KINDS: tuple[str, ...] = ("classification", "entailment", "similarity", "multiple_choice")
IGNORE = -100  # target value that cross_entropy skips (padding, and the step after the extract token)


# ------------------------------------------------------------------------------------ special tokens
@dataclass(frozen=True)
class SpecialTokens:
    """The ids of ⟨s⟩, $ and ⟨e⟩: the three ids right after a vocabulary of ``base_vocab_size`` tokens."""

    start: int
    delimiter: int
    extract: int

    NAMES = ("<s>", "$", "<e>")

    @classmethod
    def for_vocab(cls, base_vocab_size: int) -> SpecialTokens:
        if base_vocab_size < 1:
            raise ValueError(f"base_vocab_size must be positive, got {base_vocab_size}")
        return cls(base_vocab_size, base_vocab_size + 1, base_vocab_size + 2)

    @property
    def base_vocab_size(self) -> int:
        return self.start

    @property
    def vocab_size(self) -> int:
        """Vocabulary size the model needs once the three tokens are added."""
        return self.extract + 1

    def name(self, token_id: int) -> str | None:
        """The name ("<s>", "$" or "<e>") of a special id; None for an ordinary one."""
        ids = (self.start, self.delimiter, self.extract)
        return self.NAMES[ids.index(token_id)] if token_id in ids else None

    def token_strings(self, ids: Sequence[int], tokenizer) -> list[str]:
        """Readable labels for a transformed sequence: special tokens by name, the rest by the tokenizer."""
        return [self.name(i) or tokenizer.token_strings([i])[0] for i in ids]


class FineTuneTokenizer:
    """Any tokenizer plus ⟨s⟩ $ ⟨e⟩: text encodes exactly as before, the three new ids decode to their names.

    It shows the transformed inputs as text (``decode``/``token_strings``) and builds them from strings
    (``transform``); the model never needs anything but the ids.
    """

    def __init__(self, tokenizer, special: SpecialTokens) -> None:
        if tokenizer.vocab_size > special.base_vocab_size:
            raise ValueError(
                f"the special ids start at {special.start}, inside this tokenizer's vocabulary "
                f"({tokenizer.vocab_size}); build them with SpecialTokens.for_vocab(model.config.vocab_size)"
            )
        self.base = tokenizer
        self.special = special

    @property
    def vocab_size(self) -> int:
        return self.special.vocab_size

    @property
    def eos_token_id(self) -> int | None:
        return self.base.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.base.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        out, run = [], []
        for i in ids:
            name = self.special.name(int(i))
            if name is None:
                run.append(int(i))
                continue
            if run:
                out.append(self.base.decode(run))
                run = []
            out.append(name)
        if run:
            out.append(self.base.decode(run))
        return "".join(out)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return self.special.token_strings(ids, self.base)

    def transform(self, kind: Kind, texts: Sequence[str], max_len: int | None = None) -> list[Encoded]:
        """Encode ``texts`` and apply the transformation for ``kind`` (see :func:`transform`)."""
        return transform(kind, [self.encode(t) for t in texts], self.special, max_len)


def add_special_tokens(model: GPT, init_from: int | Sequence[int] | None = None) -> SpecialTokens:
    """Grow ``model``'s vocabulary by ⟨s⟩, $, ⟨e⟩ and return their ids.

    The ids follow the model's vocabulary (not the tokenizer's), so they never clash with an existing
    token even when the model's table is larger than the tokenizer's.

    New rows are N(0, 0.02) unless ``init_from`` names existing token ids to copy (one id for all three,
    or one each). Copying the newline's row is the sensible start for a small model: it then reads
    ⟨s⟩ A $ B ⟨e⟩ much like the lines it was pretrained on, instead of meeting three random vectors that
    a few hundred fine-tuning steps barely move (see :func:`newline_id`).
    """
    special = SpecialTokens.for_vocab(model.config.vocab_size)
    sources = None
    if init_from is not None:
        sources = [int(init_from)] * 3 if isinstance(init_from, int) else [int(i) for i in init_from]
        if len(sources) != 3:
            raise ValueError(f"init_from takes one token id or three (for <s>, $, <e>), got {len(sources)}")
        bad = [i for i in sources if not 0 <= i < special.base_vocab_size]
        if bad:
            raise ValueError(
                f"init_from ids {bad} are outside the model's vocabulary (0..{special.base_vocab_size - 1})"
            )
    model.resize_token_embeddings(special.vocab_size)
    if sources is not None:
        weight = model.transformer.wte.weight
        with torch.no_grad():
            for new, old in zip((special.start, special.delimiter, special.extract), sources, strict=True):
                weight[new] = weight[old]
    return special


def newline_id(tokenizer) -> int | None:
    """The tokenizer's id for "\\n" if it is one token (the usual start for the special tokens' rows), else None."""
    try:
        ids = tokenizer.encode("\n")
    except (KeyError, ValueError):  # a vocabulary without a newline
        return None
    return int(ids[0]) if len(ids) == 1 else None


# ------------------------------------------------------------------------------ input transformations
@dataclass(frozen=True)
class Encoded:
    """One transformed sequence: token ids, where the extract token sits, and how many tokens were cut."""

    ids: list[int]
    extract: int
    truncated: int = 0


def _check_max_len(max_len: int | None, needed: int, what: str) -> None:
    if max_len is not None and needed > max_len:
        raise ValueError(
            f"{what} needs {needed} tokens but max_len is {max_len}; shorten it or use a model with a "
            "longer context (block_size)"
        )


def _keep_end(ids: Sequence[int], n: int) -> list[int]:
    return list(ids[len(ids) - n :]) if n > 0 else []


def _frame(parts: Sequence[Sequence[int]], special: SpecialTokens, truncated: int) -> Encoded:
    ids = [special.start]
    for i, part in enumerate(parts):
        if i:
            ids.append(special.delimiter)
        ids.extend(int(t) for t in part)
    ids.append(special.extract)
    return Encoded(ids, len(ids) - 1, truncated)


def classification_input(text: Sequence[int], special: SpecialTokens, max_len: int | None = None) -> Encoded:
    """⟨s⟩ text ⟨e⟩; a long text keeps its last ``max_len - 2`` tokens."""
    _check_max_len(max_len, 2, "the start and extract tokens")
    keep = len(text) if max_len is None else min(len(text), max_len - 2)
    return _frame([_keep_end(text, keep)], special, len(text) - keep)


def entailment_input(
    premise: Sequence[int], hypothesis: Sequence[int], special: SpecialTokens, max_len: int | None = None
) -> Encoded:
    """⟨s⟩ premise $ hypothesis ⟨e⟩; the hypothesis is kept whole, the premise keeps its end."""
    _check_max_len(max_len, len(hypothesis) + 3, f"the hypothesis ({len(hypothesis)} tokens) with 3 special tokens")
    keep = len(premise) if max_len is None else min(len(premise), max_len - 3 - len(hypothesis))
    return _frame([_keep_end(premise, keep), hypothesis], special, len(premise) - keep)


def similarity_inputs(
    a: Sequence[int], b: Sequence[int], special: SpecialTokens, max_len: int | None = None
) -> tuple[Encoded, Encoded]:
    """Both orders, ⟨s⟩ a $ b ⟨e⟩ and ⟨s⟩ b $ a ⟨e⟩: similarity has no natural order, so the model sees both.

    Too long: both texts are capped at the same length c (the largest that fits), each keeping its end;
    so a short text stays whole and the rule does not depend on which text came first.
    """
    _check_max_len(max_len, 5, "a similarity pair (one token each and 3 special tokens)")
    la, lb = len(a), len(b)
    if max_len is None or la + lb <= max_len - 3:
        cap = max(la, lb)
    else:
        budget = max_len - 3
        shorter = min(la, lb)
        cap = budget - shorter if 2 * shorter <= budget else budget // 2
    ka, kb = min(la, cap), min(lb, cap)
    a_kept, b_kept, cut = _keep_end(a, ka), _keep_end(b, kb), la - ka + lb - kb
    return _frame([a_kept, b_kept], special, cut), _frame([b_kept, a_kept], special, cut)


def multiple_choice_inputs(
    context: Sequence[int], answers: Sequence[Sequence[int]], special: SpecialTokens, max_len: int | None = None
) -> list[Encoded]:
    """⟨s⟩ context $ answer_k ⟨e⟩ for every k; answers are kept whole, every choice sees the same context end."""
    if not answers:
        raise ValueError("multiple choice needs at least one answer")
    longest = max(len(ans) for ans in answers)
    _check_max_len(max_len, longest + 3, f"the longest answer ({longest} tokens) with 3 special tokens")
    keep = len(context) if max_len is None else min(len(context), max_len - 3 - longest)
    kept = _keep_end(context, keep)
    return [_frame([kept, ans], special, len(context) - keep) for ans in answers]


def transform(
    kind: Kind, parts: Sequence[Sequence[int]], special: SpecialTokens, max_len: int | None = None
) -> list[Encoded]:
    """The sequences one example becomes: 1 (classification, entailment), 2 (similarity), K (multiple choice).

    ``parts`` are token-id lists: (text,), (premise, hypothesis), (a, b) or (context, answer_1, ..., answer_K).
    """
    expected = {"classification": 1, "entailment": 2, "similarity": 2}
    if kind not in KINDS:
        raise ValueError(f"unknown transformation {kind!r}; choose one of {', '.join(KINDS)}")
    if kind in expected and len(parts) != expected[kind]:
        raise ValueError(f"{kind} takes {expected[kind]} text(s), got {len(parts)}")
    if kind == "classification":
        return [classification_input(parts[0], special, max_len)]
    if kind == "entailment":
        return [entailment_input(parts[0], parts[1], special, max_len)]
    if kind == "similarity":
        return list(similarity_inputs(parts[0], parts[1], special, max_len))
    if len(parts) < 3:
        raise ValueError("multiple_choice takes a context and at least two answers")
    return multiple_choice_inputs(parts[0], parts[1:], special, max_len)


# ------------------------------------------------------------------------------------------ batches
@dataclass
class TaskTensors:
    """A whole encoded split: ids (N, K, T), extract positions (N, K), LM targets (N, K, T), labels (N,).

    K is the number of sequences per example (1, 2 for similarity, the number of choices). Padding is on
    the right, so with causal attention it never changes the states at or before the extract token.
    """

    idx: torch.Tensor
    extract: torch.Tensor
    lm_targets: torch.Tensor
    labels: torch.Tensor
    truncated: int = 0  # examples that lost tokens to truncation

    def __len__(self) -> int:
        return self.labels.size(0)

    def subset(self, index: torch.Tensor) -> TaskTensors:
        return TaskTensors(self.idx[index], self.extract[index], self.lm_targets[index], self.labels[index])

    def to(self, device: str | torch.device) -> TaskTensors:
        tensors = (self.idx, self.extract, self.lm_targets, self.labels)
        return TaskTensors(*(t.to(device) for t in tensors), self.truncated)


def collate(examples: Sequence[Sequence[Encoded]], labels: Sequence[int], pad_id: int = 0) -> TaskTensors:
    """Stack transformed examples (each a list of K sequences) into right-padded tensors.

    LM targets are the inputs shifted by one: every token after ⟨s⟩ is predicted, including $ and ⟨e⟩;
    nothing is predicted after ⟨e⟩ or at padding (``IGNORE``).
    """
    if not examples:
        raise ValueError("no examples to collate")
    if len(examples) != len(labels):
        raise ValueError(f"{len(examples)} examples but {len(labels)} labels")
    k = len(examples[0])
    if any(len(ex) != k for ex in examples):
        raise ValueError("every example must have the same number of sequences (e.g. the same number of choices)")
    t = max(len(seq.ids) for ex in examples for seq in ex)
    n = len(examples)
    idx = torch.full((n, k, t), pad_id, dtype=torch.long)
    targets = torch.full((n, k, t), IGNORE, dtype=torch.long)
    extract = torch.zeros((n, k), dtype=torch.long)
    for i, ex in enumerate(examples):
        for j, seq in enumerate(ex):
            ids = torch.tensor(seq.ids, dtype=torch.long)
            idx[i, j, : len(ids)] = ids
            targets[i, j, : len(ids) - 1] = ids[1:]
            extract[i, j] = seq.extract
    truncated = sum(any(seq.truncated for seq in ex) for ex in examples)
    return TaskTensors(idx, extract, targets, torch.tensor(list(labels), dtype=torch.long), truncated)


def encode_examples(
    examples: Sequence, kind: Kind, tokenizer, special: SpecialTokens, max_len: int | None = None
) -> TaskTensors:
    """Tokenise and transform task examples (objects with ``.texts`` and ``.label``, see :mod:`gptmini.tasks`)."""
    encoded = [transform(kind, [tokenizer.encode(text) for text in ex.texts], special, max_len) for ex in examples]
    return collate(encoded, [ex.label for ex in examples])


# ------------------------------------------------------------------------------------------- model
@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (N, n_classes), or (N, K) scores for multiple choice
    lm_loss: torch.Tensor | None  # L1 on the same inputs (mean next-token cross-entropy), if asked for


class GPT1Classifier(nn.Module):
    """The pretrained transformer plus one linear layer on the extract token's final hidden state.

    ``kind`` decides how the K sequences of an example meet the head:
    classification / entailment: one sequence -> ``n_classes`` logits;
    similarity: the two orders' final states are added element-wise, then -> ``n_classes`` logits;
    multiple_choice: a scalar score per choice (a linear layer to 1), the K scores are the logits.
    """

    def __init__(self, gpt: GPT, kind: Kind, n_classes: int = 2, clf_dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind != "multiple_choice" and n_classes < 2:
            raise ValueError(f"a classifier needs n_classes >= 2, got {n_classes}")
        gpt = unwrap(gpt)  # a compiled model's plain module: its weights are saved without "_orig_mod."
        self.gpt = gpt
        self.kind = kind
        self.n_classes = n_classes
        self.dropout = nn.Dropout(clf_dropout)
        out = 1 if kind == "multiple_choice" else n_classes
        dtype = next(gpt.parameters()).dtype  # the head follows the model: a bf16 model gets a bf16 head
        self.head = nn.Linear(gpt.config.n_embd, out, device=gpt.device, dtype=dtype)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def extract_states(self, idx: torch.Tensor, extract: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(final hidden state at each extract token (N, K, C), all final states (N*K, T, C))."""
        if idx.dim() == 2:  # (N, T): one sequence per example
            idx, extract = idx.unsqueeze(1), extract.view(-1, 1)
        n, k, t = idx.shape
        x = self.gpt.hidden_states(idx.reshape(n * k, t))
        rows = torch.arange(n * k, device=x.device)
        h = x[rows, extract.reshape(-1)].view(n, k, -1)
        return h, x

    def forward(
        self, idx: torch.Tensor, extract: torch.Tensor, lm_targets: torch.Tensor | None = None
    ) -> ClassifierOutput:
        h, x = self.extract_states(idx, extract)
        if self.kind == "multiple_choice":
            logits = self.head(self.dropout(h)).squeeze(-1)
        else:
            pooled = h.sum(dim=1) if self.kind == "similarity" else h[:, 0]
            logits = self.head(self.dropout(pooled))
        lm_loss = None
        if lm_targets is not None:
            lm_logits = self.gpt.lm_head(x)
            lm_loss = F.cross_entropy(
                lm_logits.reshape(-1, lm_logits.size(-1)).float(), lm_targets.reshape(-1), ignore_index=IGNORE
            )
        return ClassifierOutput(logits, lm_loss)


def combined_loss(
    logits: torch.Tensor, labels: torch.Tensor, lm_loss: torch.Tensor | None, lm_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L3, L2) with L3 = L2 + λ·L1; λ = 0 (or no L1) gives L3 = L2 exactly."""
    l2 = F.cross_entropy(logits.float(), labels)
    if lm_coef == 0 or lm_loss is None:
        return l2, l2
    return l2 + lm_coef * lm_loss, l2


# ---------------------------------------------------------------------------------- layer transfer
def transfer_layers(pretrained: GPT, n_layers: int, seed: int | None = None) -> GPT:
    """A copy of ``pretrained`` that keeps the embeddings and the first ``n_layers`` blocks, the rest fresh.

    This is GPT-1's "number of layers transferred" ablation: 0 keeps only the token and position
    embeddings; ``n_layer`` keeps everything. Re-initialised parts (including the final LayerNorm of a
    pre-LN model when not all layers are kept) get the model's own initialisation.
    """
    pretrained = unwrap(pretrained)
    total = pretrained.config.n_layer
    if not 0 <= n_layers <= total:
        raise ValueError(f"n_layers must be between 0 and {total} (the model's depth), got {n_layers}")
    with preserved_rng():
        if seed is not None:
            torch.manual_seed(seed)
        fresh = GPT(pretrained.config)
    fresh.to(device=pretrained.device, dtype=pretrained.transformer.wte.weight.dtype)
    source = pretrained.state_dict()
    keep = ["transformer.wte.", "transformer.wpe."] + [f"transformer.h.{i}." for i in range(n_layers)]
    if n_layers == total:
        keep.append("transformer.ln_f.")
    state = {k: v for k, v in source.items() if k.startswith(tuple(keep))}
    fresh.load_state_dict(state, strict=False)
    fresh.train(pretrained.training)
    return fresh


# ---------------------------------------------------------------------------------- training loop
@dataclass
class FineTuneConfig:
    """Fine-tuning hyper-parameters, named as in pretraining (:class:`gptmini.train.TrainConfig`).

    GPT-1 used lr 6.25e-5, batch 32, 3 epochs, linear warm-up over 0.2 % of training then linear decay,
    λ = 0.5, classifier dropout 0.1 (:meth:`gpt1`). Those suit a 117M model on large datasets; the
    defaults here are scaled for the course's few-million-parameter models and a few thousand examples
    (a higher rate and a longer warm-up), which is what fine-tunes them in seconds to minutes.

    ``max_iters`` (optimizer updates) defaults to ``epochs`` passes over the training set, and
    ``warmup_iters`` to ``warmup_frac`` of the updates: a fine-tuning set's size decides the run's length.
    """

    learning_rate: float = 3e-4
    batch_size: int = 32
    epochs: int = 3
    max_iters: int | None = None  # None: epochs x batches per epoch
    warmup_iters: int | None = None  # None: warmup_frac of max_iters
    warmup_frac: float = 0.1
    min_lr: float = 0.0  # the linear decay ends here (GPT-1: 0)
    lm_coef: float = 0.5
    clf_dropout: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0  # clip the global gradient norm; 0 switches clipping off
    seed: int = 1337
    eval_batch_size: int = 128
    special_init: str = "newline"  # ⟨s⟩ $ ⟨e⟩ start as copies of the newline's row ("random": N(0, 0.02))
    eval_train: bool = True  # also report training-set accuracy at the end (one more pass over the data)
    device: str | torch.device | None = None

    @classmethod
    def gpt1(cls, **overrides) -> FineTuneConfig:
        """The paper's settings."""
        paper = dict(learning_rate=6.25e-5, batch_size=32, epochs=3, warmup_frac=0.002, lm_coef=0.5)
        return cls(**{**paper, **overrides})

    def __post_init__(self) -> None:
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        if self.learning_rate <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("learning_rate must be > 0, batch_size and epochs >= 1")
        if self.max_iters is not None and self.max_iters < 1:
            raise ValueError(f"max_iters must be >= 1 (or None for epochs x batches), got {self.max_iters}")
        if not 0 <= self.warmup_frac <= 1:
            raise ValueError(f"warmup_frac must be in [0, 1], got {self.warmup_frac}")
        if not 0 <= self.min_lr <= self.learning_rate or self.grad_clip < 0:
            raise ValueError("need 0 <= min_lr <= learning_rate and grad_clip >= 0 (0: no clipping)")
        if self.special_init not in ("newline", "random"):
            raise ValueError(f"special_init must be 'newline' or 'random', got {self.special_init!r}")
        if self.lm_coef < 0:
            raise ValueError(f"lm_coef (λ) must be >= 0 (0 turns the auxiliary LM loss off), got {self.lm_coef}")

    def schedule(self, n_examples: int) -> tuple[int, int]:
        """(max_iters, warmup_iters) for a training set of ``n_examples``."""
        total = self.max_iters or math.ceil(n_examples / self.batch_size) * self.epochs
        if self.warmup_iters is not None:
            return total, self.warmup_iters
        return total, max(1, round(self.warmup_frac * total)) if self.warmup_frac > 0 else 0


@dataclass
class FineTuneResult:
    losses: list[float] = field(default_factory=list)  # L3 per step
    clf_losses: list[float] = field(default_factory=list)  # L2 per step
    test_accuracy: list[float] = field(default_factory=list)  # after each epoch (if a test set was given)
    train_accuracy: float | None = None  # after the last epoch
    steps: int = 0

    @property
    def final_test_accuracy(self) -> float | None:
        return self.test_accuracy[-1] if self.test_accuracy else None


@torch.no_grad()
def predict(clf: GPT1Classifier, data: TaskTensors, batch_size: int = 128) -> torch.Tensor:
    """Predicted label for every example (eval mode, no dropout)."""
    preds = []
    with eval_mode(clf):
        for start in range(0, len(data), batch_size):
            part = data.subset(torch.arange(start, min(start + batch_size, len(data)))).to(clf.gpt.device)
            preds.append(clf(part.idx, part.extract).logits.argmax(dim=-1).cpu())
    return torch.cat(preds)


def evaluate(clf: GPT1Classifier, data: TaskTensors, batch_size: int = 128) -> float:
    """Accuracy on ``data``."""
    return (predict(clf, data, batch_size) == data.labels).float().mean().item()


def finetune(
    clf: GPT1Classifier,
    train: TaskTensors,
    test: TaskTensors | None = None,
    config: FineTuneConfig | None = None,
    callbacks: Sequence[Callable[[dict], None]] = (),
) -> FineTuneResult:
    """Train ``clf`` on ``train`` with L3 = L2 + λ·L1 (AdamW, warm-up then linear decay); report accuracies.

    ``callbacks`` are called after every update with a record like the pretraining trainer's:
    ``{"kind": "train", "step", "train_loss", "val_loss": None, "lr", "clf_loss"}`` (e.g. a LivePlot).
    The caller's random states (CPU and GPU) are left as they were.
    """
    config = config or FineTuneConfig()
    if config.device is not None:
        clf.to(config.device)
    device = clf.gpt.device
    total, warmup = config.schedule(len(train))
    optimizer = configure_optimizer(
        clf, weight_decay=config.weight_decay, learning_rate=config.learning_rate, betas=config.betas, device=device
    )
    order_rng = torch.Generator().manual_seed(config.seed)
    result = FineTuneResult()
    with preserved_rng():
        torch.manual_seed(config.seed)  # dropout masks
        clf.train()
        while result.steps < total:
            order = torch.randperm(len(train), generator=order_rng)
            for start in range(0, len(train), config.batch_size):
                if result.steps == total:
                    break
                batch = train.subset(order[start : start + config.batch_size]).to(device)
                lr = get_lr(
                    result.steps, learning_rate=config.learning_rate, warmup_iters=warmup, decay_iters=total,
                    min_lr=config.min_lr, decay="linear",
                )  # fmt: skip
                set_lr(optimizer, lr)
                out = clf(batch.idx, batch.extract, batch.lm_targets if config.lm_coef > 0 else None)
                loss, l2 = combined_loss(out.logits, batch.labels, out.lm_loss, config.lm_coef)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(clf.parameters(), config.grad_clip)
                optimizer.step()
                result.losses.append(loss.item())
                result.clf_losses.append(l2.item())
                result.steps += 1
                record = dict(
                    kind="train", step=result.steps, train_loss=result.losses[-1], val_loss=None, lr=lr,
                    clf_loss=result.clf_losses[-1],
                )  # fmt: skip
                for callback in callbacks:
                    callback(record)
            if test is not None:
                result.test_accuracy.append(evaluate(clf, test, config.eval_batch_size))
        if config.eval_train:
            result.train_accuracy = evaluate(clf, train, config.eval_batch_size)
    clf.train()
    return result


# ------------------------------------------------------------------------------ one call per task
def prepare_classifier(
    gpt: GPT,
    kind: Kind,
    n_classes: int = 2,
    clf_dropout: float = 0.1,
    copy_model: bool = True,
    init_from: int | Sequence[int] | None = None,
) -> tuple[GPT1Classifier, SpecialTokens]:
    """A classifier around (a copy of) ``gpt`` with ⟨s⟩ $ ⟨e⟩ added; the original model is left untouched.

    ``init_from``: existing token id(s) whose embedding rows the three new tokens start from (see
    :func:`add_special_tokens`); None keeps them random.
    """
    model = copy.deepcopy(unwrap(gpt)) if copy_model else unwrap(gpt)
    special = add_special_tokens(model, init_from)
    return GPT1Classifier(model, kind, n_classes, clf_dropout), special


def finetune_task(
    gpt: GPT, tokenizer, task, config: FineTuneConfig | None = None, max_len: int | None = None
) -> tuple[GPT1Classifier, FineTuneResult]:
    """Fine-tune a copy of ``gpt`` on a :class:`gptmini.tasks.Task`; returns the classifier and the result.

    ``max_len`` defaults to the model's context; inputs longer than it are truncated (see module docs).
    """
    config = config or FineTuneConfig()
    with preserved_rng():
        torch.manual_seed(config.seed)  # the new embedding rows and the head
        init = newline_id(tokenizer) if config.special_init == "newline" else None
        clf, special = prepare_classifier(gpt, task.kind, task.n_classes, config.clf_dropout, init_from=init)
    max_len = max_len or gpt.config.block_size
    train = encode_examples(task.train, task.kind, tokenizer, special, max_len)
    test = encode_examples(task.test, task.kind, tokenizer, special, max_len)
    return clf, finetune(clf, train, test, config)
