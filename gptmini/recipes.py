"""The classroom recipes: one name gives the tokenizer, the model's shape, the data and the training config.

The command line (``python -m gptmini train --preset NAME``), the notebooks' fallbacks
(:func:`gptmini.course.course_model`, :func:`gptmini.course.finetune_base_model`) and the benchmarks all
build their models here, so the same name always means the same model trained the same way.

Every recipe reads the bundled Shakespeare (no download) and keeps the last 10 % of its tokens for
validation (a split by position, the same on every machine).

A recipe can name a **GPU variant** (``gpu=``): the recipe classroom mode trains instead on a CUDA GPU
(:func:`gptmini.course.recipe_for`), with sizes from nanoGPT's GPU recipe for Shakespeare characters (6 layers
x 384, 6 heads, context 256, dropout 0.2, batch 64, learning rate 1e-3, 5,000 steps; its README reports about
3 minutes on one A100 and a best validation loss of 1.47, for its pre-LN model on a 1.1M-character
Shakespeare). On this course's text and models their times and losses are not measured yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .config import GPTConfig
from .train import TrainConfig

VAL_FRACTION = 0.1


@dataclass(frozen=True)
class Recipe:
    """A named way to make a classroom model; ``train`` lists only what differs from :class:`TrainConfig`."""

    description: str
    model_preset: str  # a GPTConfig preset ...
    model: dict[str, Any] = field(default_factory=dict)  # ... with these changes
    tokenizer: Literal["char", "bpe"] = "char"
    text: Literal["all", "train_plays"] = "all"  # train_plays: the plays fine-tuning tasks do not test on
    max_chars: int | None = None  # None: the whole text
    train: dict[str, Any] = field(default_factory=dict)
    gpu: str | None = None  # the recipe classroom mode uses instead on a CUDA GPU (None: this one everywhere)


#: nanoGPT's GPU sizes for Shakespeare characters (its config/train_shakespeare_char.py) ...
_GPU_SIZES = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)
#: ... and its training settings where they differ from TrainConfig's (lr 1e-3, min_lr 1e-4, betas (0.9, 0.99),
#: weight decay 0.1, clipping 1.0 and 250 steps between evaluations are the same). 50 batches per evaluation,
#: not nanoGPT's 200: at 200, the 21 evaluations would cost about half as much as the training itself.
_GPU_TRAIN = dict(batch_size=64, max_iters=5000, warmup_iters=100, eval_iters=50)

RECIPES: dict[str, Recipe] = {
    # The defaults of TrainConfig are this recipe: 2000 steps of 12 x 64 characters (minutes on a CPU).
    "shakespeare-char": Recipe("characters, GPT-2's pre-LN, 4 x 128", "shakespeare-char", gpu="shakespeare-char-gpu"),
    # Notebook 05's GPT-1 (post-LN), trained the same way; `python -m gptmini train --preset gpt1-shakespeare`
    # writes the checkpoint notebooks 00, 03, 04, 09 and 10 look for, so a teacher can prepare it before class.
    "gpt1-shakespeare": Recipe(
        "characters, GPT-1's post-LN, 4 x 128 (notebook 05)", "gpt1-shakespeare", gpu="gpt1-shakespeare-gpu"
    ),
    # BPE tokens carry ~3-4 characters each, so fewer steps of 128-token windows see as much text.
    "shakespeare-bpe": Recipe(
        "a 1,024-token BPE, pre-LN, 4 x 192", "shakespeare-bpe", tokenizer="bpe", train=dict(max_iters=1500)
    ),
    # Tests and GPTMINI_MODE=fast: seconds.
    "tiny": Recipe(
        "characters of the first 200,000 characters, 2 x 32 (seconds)",
        "tiny",
        max_chars=200_000,
        train=dict(
            batch_size=8,
            max_iters=100,
            learning_rate=3e-3,
            min_lr=3e-4,
            warmup_iters=10,
            eval_interval=50,
            eval_iters=5,
        ),
    ),  # fmt: skip
    # The quick stand-in for notebook 05's model that notebooks 00, 03, 04, 09 and 10 train when it is missing.
    "gpt1-char-2x64": Recipe(
        "characters, GPT-1's post-LN, 2 x 64 (a quick stand-in for gpt1-shakespeare)",
        "gpt1-shakespeare",
        model=dict(n_layer=2, n_embd=64, name="gpt1-char-2x64"),
        train=dict(eval_iters=5),
        gpu="gpt1-char-6x384",
    ),
    # Notebook 07's base model: notebook 05's GPT-1 (post-LN, learned positions), but reading BPE tokens: 64 of
    # them hold four or five lines, where 64 characters hold less than two (pairs of lines are what the tasks
    # are about). `python -m gptmini train --preset gpt1-bpe-train-plays` writes the checkpoint notebook 07 uses.
    # Post-LN needs a gentler start than pre-LN: at 3e-3 with 100 warm-up steps (the pre-LN settings, validation
    # loss 3.64) it stayed at the loss of token frequencies (5.78); at 1e-3 with 300 warm-up steps it reaches 3.81.
    "gpt1-bpe-train-plays": Recipe(
        "a 1,024-token BPE of the 28 training plays, GPT-1's post-LN, 4 x 128 (notebook 07's base model)",
        "shakespeare-bpe",
        model=dict(block_size=64, n_head=4, n_embd=128, norm="post", name="gpt1-bpe-train-plays"),
        tokenizer="bpe",
        text="train_plays",
        train=dict(batch_size=32, max_iters=1500, learning_rate=1e-3, min_lr=1e-4, warmup_iters=300, eval_iters=8),
        gpu="gpt1-bpe-train-plays-gpu",
    ),
    # ---- GPU variants: what classroom mode trains instead on a CUDA GPU (times and losses not measured yet).
    # nanoGPT's GPU recipe for Shakespeare characters, as it is (pre-LN): `--preset shakespeare-char-gpu`.
    "shakespeare-char-gpu": Recipe(
        "characters, GPT-2's pre-LN, 6 x 384, context 256 (nanoGPT's GPU recipe; for a CUDA GPU)",
        "shakespeare-char",
        model=dict(_GPU_SIZES, name="shakespeare-char-gpu"),
        train=_GPU_TRAIN,
    ),
    # Notebook 05's GPT-1 at those sizes. Post-LN, so it warms up over 300 steps, not nanoGPT's 100 (post-LN
    # needs a gentler start: notebook 08, and gpt1-bpe-train-plays above). Notebook 05 saves it on a GPU as
    # gpt1-shakespeare-gpu, the folder `python -m gptmini train --preset gpt1-shakespeare-gpu` writes.
    "gpt1-shakespeare-gpu": Recipe(
        "characters, GPT-1's post-LN, 6 x 384, context 256 (notebook 05 on a CUDA GPU)",
        "gpt1-shakespeare",
        model=dict(_GPU_SIZES, name="gpt1-shakespeare-gpu"),
        train=dict(_GPU_TRAIN, warmup_iters=300),
    ),
    # The quick stand-in on a GPU: the same sizes and post-LN warm-up, a fifth of the steps.
    "gpt1-char-6x384": Recipe(
        "characters, GPT-1's post-LN, 6 x 384, context 256 (the quick stand-in on a CUDA GPU)",
        "gpt1-shakespeare",
        model=dict(_GPU_SIZES, name="gpt1-char-6x384"),
        train=dict(_GPU_TRAIN, max_iters=1000, warmup_iters=300, eval_interval=500, eval_iters=20),
    ),
    # Notebook 07's base model on a GPU: nanoGPT's width and depth, 128 BPE tokens of context (8-10 lines), the
    # post-LN schedule of gpt1-bpe-train-plays. 2,000 steps of 32 x 128 tokens are ~6 passes over the 1.3M
    # training tokens of the training plays, hence nanoGPT's dropout.
    "gpt1-bpe-train-plays-gpu": Recipe(
        "a 1,024-token BPE of the 28 training plays, GPT-1's post-LN, 6 x 384 (notebook 07's base model on a GPU)",
        "shakespeare-bpe",
        model=dict(_GPU_SIZES, block_size=128, norm="post", name="gpt1-bpe-train-plays-gpu"),
        tokenizer="bpe",
        text="train_plays",
        train=dict(batch_size=32, max_iters=2000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=300, eval_iters=20),
    ),
}


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown training preset {name!r}. Valid presets: {', '.join(RECIPES)}")
    return RECIPES[name]


def train_config(name: str, **overrides: Any) -> TrainConfig:
    """The recipe's :class:`TrainConfig`; ``overrides`` change fields.

    A shorter run than the recipe's (``max_iters`` given, ``warmup_iters`` not) warms up over at most a
    tenth of its steps, so that it does not spend most of its time warming up.
    """
    fields = {**_recipe(name).train, **overrides}
    if "max_iters" in overrides and "warmup_iters" not in overrides:
        default = fields.get("warmup_iters", TrainConfig.warmup_iters)
        fields["warmup_iters"] = min(default, max(1, overrides["max_iters"] // 10))
    return TrainConfig(**fields)


def model_config(name: str, vocab_size: int, **overrides: Any) -> GPTConfig:
    """The recipe's :class:`GPTConfig` for a tokenizer of ``vocab_size`` ids."""
    recipe = _recipe(name)
    fields = {**recipe.model, "vocab_size": vocab_size, **overrides}
    return GPTConfig.preset(recipe.model_preset).replace(**fields)


def recipe_text(name: str, max_chars: int | None = None) -> str:
    """The text a recipe trains on (cut to ``max_chars`` if given, e.g. for tests)."""
    from .data import shakespeare, shakespeare_plays

    recipe = _recipe(name)
    if recipe.text == "train_plays":
        from .tasks import split_plays

        train_plays, _ = split_plays(shakespeare_plays())
        text = "\n\n".join(play.text for play in train_plays)
    else:
        text = shakespeare()
    limit = min(x for x in (max_chars, recipe.max_chars, len(text)) if x is not None)
    return text[:limit]


@dataclass
class Prepared:
    """Everything a recipe needs before training: tokenizer, model shape, token ids and training config."""

    tokenizer: Any
    model_config: GPTConfig
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    train_config: TrainConfig


def prepare(name: str, *, max_chars: int | None = None, show_progress: bool = False, **overrides: Any) -> Prepared:
    """Build a recipe's tokenizer and data; ``overrides`` are :class:`TrainConfig` fields.

    ``shakespeare-bpe`` and ``gpt1-bpe-train-plays`` train their 1,024-token BPE on the text first
    (seconds to a minute); the others use one id per character.
    """
    from .data import encode_corpus, train_val_split
    from .tokenizers import BPETokenizer, CharTokenizer

    recipe = _recipe(name)
    text = recipe_text(name, max_chars)
    if recipe.tokenizer == "bpe":
        vocab = GPTConfig.preset(recipe.model_preset).vocab_size
        tokenizer = BPETokenizer().train(text, vocab_size=vocab, progress=show_progress)
    else:
        tokenizer = CharTokenizer.from_text(text)
    train_ids, val_ids = train_val_split(encode_corpus(tokenizer, text), VAL_FRACTION)
    config = model_config(name, tokenizer.vocab_size)
    return Prepared(tokenizer, config, train_ids, val_ids, train_config(name, **overrides))


# ------------------------------------------------------------------------- the scale ladder (notebook 12)
# Five GPT-2-style (pre-LN) character models on the whole Shakespeare, each about twice the one below in
# non-embedding parameters N. One rule for every rung: context 128, batches of 16 x 128 characters, learning
# rate 2e-3 with a 5 % warm-up and a cosine to a tenth, and LADDER_TOKENS_PER_PARAM x N training tokens
# (about 20, the ratio Hoffmann et al. 2022 found compute-optimal): the steps follow from the size.
# `python -m gptmini train --preset ladder-4x64` trains one rung before class; notebook 12 trains the missing ones.
LADDER_TOKENS_PER_PARAM = 20
_LADDER_BATCH, _LADDER_CONTEXT = 16, 128
#: (layers, width, heads) of each CPU rung, then of its GPU variant: more tokens per step (64 x 128), sizes from
#: 98K to 1.8M non-embedding parameters (on a CUDA GPU; times and losses not measured yet; the top rungs there
#: read the training text several times over).
_LADDER_SHAPES = {
    (1, 32, 2): (2, 64, 4),
    (2, 32, 2): (2, 96, 6),
    (2, 48, 3): (3, 112, 7),
    (3, 56, 4): (4, 128, 8),
    (4, 64, 4): (4, 192, 12),
}


def _ladder_recipe(name: str, n_layer: int, n_embd: int, n_head: int, batch_size: int, gpu: str | None) -> Recipe:
    from .sizes import non_embedding_params

    shape = dict(block_size=_LADDER_CONTEXT, n_layer=n_layer, n_embd=n_embd, n_head=n_head)
    n = non_embedding_params(GPTConfig.preset("shakespeare-char", **shape))  # the vocabulary does not count
    steps = -(-LADDER_TOKENS_PER_PARAM * n // (batch_size * _LADDER_CONTEXT))  # ceil: at least the rule's tokens
    where = "for a CUDA GPU" if gpu is None else "notebook 12's scale ladder"
    return Recipe(
        f"characters, GPT-2's pre-LN, {n_layer} x {n_embd}, {n / 1e3:.0f}K non-embedding parameters ({where})",
        "shakespeare-char",
        model=dict(shape, name=name),
        train=dict(
            batch_size=batch_size,
            max_iters=steps,
            learning_rate=2e-3,
            min_lr=2e-4,
            warmup_iters=max(1, steps // 20),
            eval_interval=steps,
            eval_iters=10,
        ),
        gpu=gpu,
    )


#: The rungs' recipe names, smallest first (CPU sizes; each names its GPU variant).
LADDER = tuple(f"ladder-{n_layer}x{n_embd}" for n_layer, n_embd, _ in _LADDER_SHAPES)
for (_l, _c, _h), (_gl, _gc, _gh) in _LADDER_SHAPES.items():
    _gpu = f"ladder-gpu-{_gl}x{_gc}"
    RECIPES[_gpu] = _ladder_recipe(_gpu, _gl, _gc, _gh, 64, None)
    RECIPES[f"ladder-{_l}x{_c}"] = _ladder_recipe(f"ladder-{_l}x{_c}", _l, _c, _h, _LADDER_BATCH, _gpu)
