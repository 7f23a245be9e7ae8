"""The classroom recipes: one name gives the tokenizer, the model's shape, the data and the training config.

The one place for the course's sizes, step counts and learning rates, per mode and per device: the command line
(``python -m gptmini train --preset NAME``), the notebooks (``model_config("gpt1-shakespeare", vocab_size)``), the
course's fallbacks (:func:`gptmini.course.course_model`, :func:`gptmini.course.finetune_base_model`) and the
benchmarks all build their models here, so the same name always means the same model trained the same way.

A recipe's own fields are its classroom values. ``fast`` and ``full`` list what changes in those modes (a field
of :class:`~gptmini.config.GPTConfig` changes the model, any other the :class:`~gptmini.train.TrainConfig`); the
functions below take a ``scale`` (``"fast"``, ``"classroom"``, ``"gpu"``, ``"full"``; a notebook passes this
run's, :func:`gptmini.course.scale`); the default, ``"classroom"``, is the recipe as written, what the command line
trains.

Every recipe reads the bundled Shakespeare (no download) and keeps the last 10 % of its tokens for
validation (a split by position, the same on every machine).

A recipe can name a **GPU variant** (``gpu=``): the recipe classroom mode trains instead on a CUDA GPU
(:func:`gptmini.course.recipe_for`), with sizes from nanoGPT's GPU recipe for Shakespeare characters (6 layers
x 384, 6 heads, context 256, dropout 0.2, batch 64, learning rate 1e-3, 5,000 steps; its README reports about
3 minutes on one A100 and a best validation loss of 1.47, for its pre-LN model on a 1.1M-character
Shakespeare). On this course's text and models their times and losses are not measured yet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch

from ..config import GPTConfig
from ..train import TrainConfig
from .modes import scale as current_scale

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
    fast: dict[str, Any] = field(default_factory=dict)  # GPTMINI_MODE=fast: seconds (model, training, max_chars)
    full: dict[str, Any] = field(default_factory=dict)  # GPTMINI_MODE=full: a longer run


#: nanoGPT's GPU sizes for Shakespeare characters (its config/train_shakespeare_char.py) ...
_GPU_SIZES = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)
#: ... and its training settings where they differ from TrainConfig's (lr 1e-3, min_lr 1e-4, betas (0.9, 0.99),
#: weight decay 0.1, clipping 1.0 and 250 steps between evaluations are the same). 50 batches per evaluation,
#: not nanoGPT's 200: at 200, the 21 evaluations would cost about half as much as the training itself.
_GPU_TRAIN = dict(batch_size=64, max_iters=5000, warmup_iters=100, eval_iters=50)

#: Notebook 08's pair: the same model as GPT-1 (post-LN) and as GPT-2 (pre-LN), on notebook 06's BPE (the notebook
#: brings the tokens: the recipe's own BPE is for the command line); on a GPU, nanoGPT's width and context.
_LN_PAIR = Recipe(
    "a 1,024-token BPE, 4 x 128, context 64: notebook 08's post-LN / pre-LN pair",
    "shakespeare-bpe",
    model=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, name="ln-pair"),
    tokenizer="bpe",
    train=dict(max_iters=300, batch_size=16, learning_rate=1e-3, min_lr=1e-4, eval_interval=50, eval_iters=10),
    gpu="ln-pair-gpu",
    fast=dict(n_layer=2, n_embd=64, max_iters=30, eval_interval=10, eval_iters=2),
    full=dict(max_iters=2000, eval_interval=200),
)
_LN_PAIR_GPU = Recipe(
    "notebook 08's pair at nanoGPT's GPU sizes: 6 x 384, 6 heads, context 256 (for a CUDA GPU)",
    "shakespeare-bpe",
    model=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, name="ln-pair-gpu"),
    tokenizer="bpe",
    train=dict(max_iters=1000, batch_size=32, learning_rate=1e-3, min_lr=1e-4, eval_interval=100, eval_iters=20),
)


def _deeper(
    recipe: Recipe, name: str, n_layer: int, description: str, gpu: str | None = None, fast_layers: int | None = None
) -> Recipe:
    """The same recipe with more layers (notebook 08's deep pair), under its own name."""
    fast = recipe.fast if fast_layers is None else {**recipe.fast, "n_layer": fast_layers}
    model = {**recipe.model, "n_layer": n_layer, "name": name}
    return dataclasses.replace(recipe, description=description, model=model, gpu=gpu, fast=fast)


RECIPES: dict[str, Recipe] = {
    # nanoGPT's CPU recipe (TrainConfig's defaults: 2,000 steps of 12 x 64 characters at 1e-3) re-tuned for the
    # same loss in half the steps: a pre-LN model this small takes a 6x higher learning rate, and Adam's second
    # moment that forgets faster (beta2 0.95, GPT-3's) lets the steep part of the curve come earlier
    # (bench/vs_nanogpt.py's windows: 1,000 steps end at 1.916; at beta2 0.99 and 3e-3 to 1e-2 at 1.944-1.952;
    # nanoGPT's 2,000 steps at 1e-3 at 1.924).
    "shakespeare-char": Recipe(
        "characters, GPT-2's pre-LN, 4 x 128",
        "shakespeare-char",
        train=dict(max_iters=1000, learning_rate=6e-3, min_lr=6e-4, betas=(0.9, 0.95), warmup_iters=50),
        gpu="shakespeare-char-gpu",
    ),
    # Notebook 05's GPT-1 (post-LN); `python -m gptmini train --preset gpt1-shakespeare` writes the checkpoint
    # notebooks 00, 03, 04, 09 and 10 look for, so a teacher can prepare it before class. nanoGPT's CPU recipe
    # (2,000 steps at 1e-3, beta2 0.99) re-tuned like shakespeare-char, gentler for post-LN: 1,000 steps at 3e-3
    # with beta2 0.95 end where the 2,000 did (1.945-1.950 on bench/vs_nanogpt.py's windows for seeds 1337, 1
    # and 2; nanoGPT's settings: 1.945), in half the time. 6e-3 is too much for post-LN (2.08).
    "gpt1-shakespeare": Recipe(
        "characters, GPT-1's post-LN, 4 x 128 (notebook 05)",
        "gpt1-shakespeare",
        train=dict(max_iters=1000, learning_rate=3e-3, min_lr=3e-4, betas=(0.9, 0.95)),
        gpu="gpt1-shakespeare-gpu",
        fast=dict(
            n_layer=2,
            n_head=4,
            n_embd=64,
            max_iters=60,
            warmup_iters=10,
            eval_interval=30,
            eval_iters=4,
            batch_size=8,
            log_interval=5,
        ),
        full=dict(
            n_layer=6,
            n_head=6,
            n_embd=384,
            block_size=256,
            dropout=0.1,
            max_iters=5000,
            warmup_iters=200,
            eval_interval=500,
            eval_iters=50,
            batch_size=64,
            learning_rate=1e-3,
            min_lr=1e-4,
            betas=(0.9, 0.99),
        ),
    ),  # fmt: skip
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
        train=dict(max_iters=600, warmup_iters=60, eval_iters=5),
        gpu="gpt1-char-6x384",
        fast=dict(max_iters=60, warmup_iters=6),
        full=dict(max_iters=2000),
    ),
    # Notebook 07's base model: notebook 05's GPT-1 (post-LN, learned positions), but reading BPE tokens: 64 of
    # them hold four or five lines, where 64 characters hold less than two (pairs of lines are what the tasks
    # are about). `python -m gptmini train --preset gpt1-bpe-train-plays` writes the checkpoint notebook 07 uses.
    # Post-LN needs a gentler start than pre-LN: at 3e-3 with 100 warm-up steps (the pre-LN settings, validation
    # loss 3.64) it stayed at the loss of token frequencies (5.78); at 1e-3 with 300 warm-up steps it reached 3.81,
    # with 150 (a tenth of the run, what notebook 07 has always trained) 3.73.
    "gpt1-bpe-train-plays": Recipe(
        "a 1,024-token BPE of the 28 training plays, GPT-1's post-LN, 4 x 128 (notebook 07's base model)",
        "shakespeare-bpe",
        model=dict(block_size=64, n_head=4, n_embd=128, norm="post", name="gpt1-bpe-train-plays"),
        tokenizer="bpe",
        text="train_plays",
        train=dict(batch_size=32, max_iters=1500, learning_rate=1e-3, min_lr=1e-4, warmup_iters=150, eval_iters=8),
        gpu="gpt1-bpe-train-plays-gpu",
        fast=dict(max_iters=30, warmup_iters=3, eval_iters=2, max_chars=200_000),
        full=dict(max_iters=3000, warmup_iters=300),
    ),
    # Notebook 05's ablation ladder: the shape every rung starts from (one block, narrow) and how each rung trains,
    # at a high learning rate so that the bigram's table learns in a short run too. Each rung changes the model
    # (gptmini.course.ablation_ladder); the command line would train this base shape alone.
    "gpt1-ablation-ladder": Recipe(
        "characters, one post-LN block of 64 (notebook 05's ablation ladder; each rung changes the model)",
        "gpt1-shakespeare",
        model=dict(n_layer=1, n_head=4, n_embd=64, block_size=64, dropout=0.1, name="gpt1-ablation-ladder"),
        train=dict(
            max_iters=600,
            batch_size=16,
            learning_rate=1e-2,
            min_lr=1e-3,
            warmup_iters=60,
            eval_interval=600,
            eval_iters=20,
            log_interval=600,
        ),
        fast=dict(
            n_embd=32, block_size=32, max_iters=30, warmup_iters=3, eval_interval=30, eval_iters=4, log_interval=30
        ),
        full=dict(n_embd=128, max_iters=2000, warmup_iters=200, eval_interval=2000, eval_iters=50, log_interval=2000),
    ),  # fmt: skip
    "ln-pair": _LN_PAIR,
    "ln-pair-deep": _deeper(
        _LN_PAIR,
        "ln-pair-deep",
        6,
        "notebook 08's pair, 6 layers deep (trained without warm-up)",
        gpu="ln-pair-deep-gpu",
        fast_layers=4,
    ),  # fmt: skip
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
    "ln-pair-gpu": _LN_PAIR_GPU,
    "ln-pair-deep-gpu": _deeper(
        _LN_PAIR_GPU, "ln-pair-deep-gpu", 12, "notebook 08's deep pair on a GPU: 12 x 384 (GPT-1's depth), context 256"
    ),
}


#: The fields of a mode's changes that belong to the model (the rest are TrainConfig's).
MODEL_FIELDS = frozenset(f.name for f in fields(GPTConfig))


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown training preset {name!r}. Valid presets: {', '.join(RECIPES)}")
    return RECIPES[name]


def _resolve(name: str, scale: str) -> tuple[Recipe, dict[str, Any]]:
    """The recipe that runs at ``scale`` (its GPU variant on the GPU scale) and that mode's changes."""
    recipe = _recipe(recipe_for(name, scale))
    return recipe, {"fast": recipe.fast, "full": recipe.full}.get(scale, {})


def recipe_for(name: str, scale: str | None = None) -> str:
    """The recipe to train at ``scale`` (default: this run's): ``name``, or its GPU variant on the GPU scale."""
    gpu = _recipe(name).gpu  # raises, listing the presets, for an unknown name
    here = current_scale() if scale is None else scale
    return gpu if gpu is not None and here == "gpu" else name


def train_config(name: str, scale: str = "classroom", **overrides: Any) -> TrainConfig:
    """The recipe's :class:`TrainConfig` at ``scale``; ``overrides`` change fields.

    A shorter run than the recipe's (``max_iters`` given, ``warmup_iters`` not) warms up over at most a
    tenth of its steps, so that it does not spend most of its time warming up.
    """
    recipe, changes = _resolve(name, scale)
    changes = {k: v for k, v in changes.items() if k not in MODEL_FIELDS and k != "max_chars"}
    config = {**recipe.train, **changes, **overrides}
    if "max_iters" in overrides and "warmup_iters" not in overrides:
        default = config.get("warmup_iters", TrainConfig.warmup_iters)
        config["warmup_iters"] = min(default, max(1, overrides["max_iters"] // 10))
    return TrainConfig(**config)


def model_config(name: str, vocab_size: int, scale: str = "classroom", **overrides: Any) -> GPTConfig:
    """The recipe's :class:`GPTConfig` at ``scale`` for a tokenizer of ``vocab_size`` ids."""
    recipe, changes = _resolve(name, scale)
    changes = {k: v for k, v in changes.items() if k in MODEL_FIELDS}
    fields = {**recipe.model, **changes, "vocab_size": vocab_size, **overrides}
    return GPTConfig.preset(recipe.model_preset).replace(**fields)


def recipe_text(name: str, max_chars: int | None = None) -> str:
    """The text a recipe trains on (cut to ``max_chars`` if given, e.g. for tests)."""
    from ..data import shakespeare, shakespeare_plays

    recipe = _recipe(name)
    if recipe.text == "train_plays":
        from ..tasks import split_plays

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


def prepare(
    name: str, scale: str = "classroom", *, max_chars: int | None = None, show_progress: bool = False, **overrides: Any
) -> Prepared:
    """Build a recipe's tokenizer and data at ``scale``; ``overrides`` are :class:`TrainConfig` fields.

    ``shakespeare-bpe`` and ``gpt1-bpe-train-plays`` train their 1,024-token BPE on the text first
    (seconds to a minute); the others use one id per character.
    """
    from ..data import encode_corpus, train_val_split
    from ..tokenizers import BPETokenizer, CharTokenizer

    recipe, changes = _resolve(name, scale)
    name = recipe_for(name, scale)
    text = recipe_text(name, max_chars if max_chars is not None else changes.get("max_chars"))
    if recipe.tokenizer == "bpe":
        vocab = GPTConfig.preset(recipe.model_preset).vocab_size
        tokenizer = BPETokenizer().train(text, vocab_size=vocab, progress=show_progress)
    else:
        tokenizer = CharTokenizer.from_text(text)
    train_ids, val_ids = train_val_split(encode_corpus(tokenizer, text), VAL_FRACTION)
    config = model_config(name, tokenizer.vocab_size, scale)
    return Prepared(tokenizer, config, train_ids, val_ids, train_config(name, scale, **overrides))


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
    from ..sizes import non_embedding_params

    shape = dict(block_size=_LADDER_CONTEXT, n_layer=n_layer, n_embd=n_embd, n_head=n_head)
    n = non_embedding_params(GPTConfig.preset("shakespeare-char", **shape))  # the vocabulary does not count
    steps = -(-LADDER_TOKENS_PER_PARAM * n // (batch_size * _LADDER_CONTEXT))  # ceil: at least the rule's tokens
    where = "for a CUDA GPU" if gpu is None else "notebook 12's scale ladder"
    fast_steps = max(4, steps // 100)  # fast mode: a hundredth of the run, seconds for the whole ladder
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
        fast=dict(
            max_iters=fast_steps,
            warmup_iters=min(max(1, steps // 20), max(1, fast_steps // 10)),
            eval_interval=fast_steps,
            eval_iters=2,
        ),
    )


#: The rungs' recipe names, smallest first (CPU sizes; each names its GPU variant).
LADDER = tuple(f"ladder-{n_layer}x{n_embd}" for n_layer, n_embd, _ in _LADDER_SHAPES)
for (_l, _c, _h), (_gl, _gc, _gh) in _LADDER_SHAPES.items():
    _gpu = f"ladder-gpu-{_gl}x{_gc}"
    RECIPES[_gpu] = _ladder_recipe(_gpu, _gl, _gc, _gh, 64, None)
    RECIPES[f"ladder-{_l}x{_c}"] = _ladder_recipe(f"ladder-{_l}x{_c}", _l, _c, _h, _LADDER_BATCH, _gpu)
