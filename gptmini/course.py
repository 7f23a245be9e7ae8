"""What every notebook's first cell needs: the speed switch, the device, a seed, and where checkpoints live.

One environment variable, ``GPTMINI_MODE`` = ``fast`` | ``classroom`` | ``full`` (default ``classroom``),
picks how long things run; the cells are the same in every mode, only the numbers change.

Classroom mode on a CUDA GPU is its own **scale**, ``"gpu"``: a cell that gives ``by_mode(..., gpu=...)`` gets
bigger sizes there (a 0.8M-parameter model leaves a GPU idle), the course's stand-in models use their recipe's
GPU variant, their checkpoints get a ``-gpu`` name, and ``expect`` does not judge a GPU run against ranges
measured on a CPU. The CPU sizes stay what they are.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

from .device import describe, get_device

MODES = ("fast", "classroom", "full")
T = TypeVar("T")

if TYPE_CHECKING:  # only for type hints: importing the model here would slow down `import gptmini.course`
    from .config import GPTConfig
    from .model import GPT
    from .tokenizers import Tokenizer
    from .train import TrainConfig


def mode() -> str:
    """The speed switch, checked so a typo is an error rather than a silent default."""
    value = os.environ.get("GPTMINI_MODE", "classroom").strip().lower()
    if value not in MODES:
        raise ValueError(f"GPTMINI_MODE={value!r} is not one of {', '.join(MODES)}; unset it or pick one of those")
    return value


#: The device :func:`setup` picked: by_mode, checkpoint_name and expect follow it (else cuda > mps > cpu).
_setup_device: torch.device | None = None
#: Each scale in words, for the one-line reports of :func:`describe_sizes` and :func:`gptmini.expect.expect`.
SCALES = {
    "fast": "fast mode",
    "classroom": "classroom mode",
    "gpu": "classroom mode on a CUDA GPU",
    "full": "full mode",
}


def _device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return _setup_device if _setup_device is not None else get_device()


def scale(device: str | torch.device | None = None) -> str:
    """Which sizes this run uses: the mode, except that classroom mode on a CUDA device is ``"gpu"``.

    ``device``: where the model trains (default: what :func:`setup` picked, else cuda > mps > cpu).
    Apple's MPS keeps the CPU sizes: the GPU sizes come from figures for CUDA GPUs (nanoGPT's, on an A100).
    """
    now = mode()
    return "gpu" if now == "classroom" and _device(device).type == "cuda" else now


def by_mode(
    fast: T, classroom: T, full: T | None = None, *, gpu: T | None = None, device: str | torch.device | None = None
) -> T:
    """The value for the current mode, e.g. ``steps = by_mode(fast=30, classroom=2000, full=5000, gpu=5000)``.

    ``gpu``: classroom mode's value on a CUDA GPU (default: ``classroom``, the CPU value); ``full`` defaults
    to what classroom mode picks on this device. ``device`` as in :func:`scale`.
    """
    here = scale(device)
    if here == "fast":
        return fast
    if here == "full" and full is not None:
        return full
    on_gpu = here == "gpu" or (here == "full" and _device(device).type == "cuda")
    return gpu if on_gpu and gpu is not None else classroom


def home() -> Path:
    """Where checkpoints and caches go: ``$GPTMINI_HOME`` or ``~/.cache/gptmini``."""
    return Path(os.environ.get("GPTMINI_HOME", Path.home() / ".cache" / "gptmini")).expanduser()


def checkpoint_dir(name: str) -> Path:
    """The known place of a course checkpoint, e.g. ``checkpoint_dir("gpt1-shakespeare")`` (notebook 05)."""
    return home() / "checkpoints" / name


GPU_SUFFIX = "-gpu"


def checkpoint_name(name: str, device: str | torch.device | None = None) -> str:
    """The name a notebook saves its model under here: ``name``, or ``name-gpu`` for GPU sizes.

    A notebook run with the GPU sizes (classroom mode on CUDA) writes ``gpt1-shakespeare-gpu``, so it never
    overwrites the CPU-size checkpoint (or is taken for it), and a later notebook on the same device finds it.
    """
    return name + GPU_SUFFIX if scale(device) == "gpu" else name


def recipe_for(name: str, device: str | torch.device | None = None) -> str:
    """The recipe to train here: ``name``, or its GPU variant (``Recipe.gpu``) on the GPU scale."""
    from .recipes import _recipe  # raises, listing the presets, for an unknown name

    gpu = _recipe(name).gpu
    return gpu if gpu is not None and scale(device) == "gpu" else name


def describe_shape(config: GPTConfig) -> str:
    """A model's sizes in one phrase: ``6 × 384, 6 heads, context 256, 10.8M parameters``."""
    from .sizes import count_params

    return (
        f"{config.n_layer} × {config.n_embd}, {config.n_head} heads, context {config.block_size}, "
        f"{count_params(config) / 1e6:.1f}M parameters"
    )


_WHY = {
    "fast": "seconds, for tests: the model learns little",
    "classroom": "sizes that train in minutes on a laptop CPU (on a CUDA GPU classroom mode picks bigger ones)",
    "gpu": "GPU sizes, picked because this is a CUDA GPU: the CPU sizes are too small to keep it busy",
    "full": "full mode's sizes, for a long run",
}


def describe_sizes(config: GPTConfig, device: str | torch.device | None = None) -> str:
    """One line for a notebook: the mode, the device, the sizes picked and why.

    ``config``: the :class:`gptmini.GPTConfig` built from :func:`by_mode`'s choice; ``device`` as in :func:`scale`.
    """
    here = scale(device)
    return f"{mode()} mode on {describe(_device(device))}: {describe_shape(config)} ({_WHY[here]})"


def seed_everything(seed: int = 1337) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Setup:
    mode: str
    device: torch.device
    seed: int

    def __str__(self) -> str:
        sizes = " (GPU sizes)" if scale(self.device) == "gpu" else ""  # see by_mode(gpu=...)
        return f"gptmini course | mode: {self.mode}{sizes} | device: {describe(self.device)} | seed: {self.seed}"


def setup(seed: int = 1337, device: str | None = None) -> Setup:
    """Seed everything, pick the device (cuda > mps > cpu), and report the mode; call it in each first cell.

    The device is remembered, so that :func:`by_mode` picks the sizes for the device the cells train on.
    """
    global _setup_device
    seed_everything(seed)
    if mode() == "fast":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    info = Setup(mode=mode(), device=get_device(device), seed=seed)
    _setup_device = info.device
    print(info)
    return info


#: Which notebook writes each course checkpoint, for the one-line description of where a model came from.
_MADE_BY = {"gpt1-shakespeare": "notebook 05", "gpt2-shakespeare": "notebook 08"}
#: The quick stand-in :func:`course_model` trains when no course checkpoint exists (see gptmini.recipes).
FALLBACK_RECIPE = "gpt1-char-2x64"


def _load(folder: Path, device: torch.device) -> tuple[GPT, Tokenizer]:
    from .model import GPT
    from .tokenizers import load_tokenizer

    return GPT.from_pretrained(folder, device=device), load_tokenizer(folder)


def _train_recipe(
    recipe: str, steps: int, folder: Path, device: torch.device, what: str, **overrides
) -> tuple[GPT, Tokenizer, float | None]:
    """Train a recipe for ``steps`` steps, save it to ``folder`` and say so in one line; returns its val loss."""
    from tqdm.auto import tqdm

    from .model import GPT
    from .recipes import prepare
    from .train import Trainer

    print(f"{what}: training {recipe} for {steps} steps ...", end=" ", flush=True)
    started = time.perf_counter()
    data = prepare(recipe, **{"max_iters": steps, "eval_interval": steps, **overrides})
    model = GPT(data.model_config)
    config = data.train_config.replace(device=device, progress=False)
    bar = tqdm(total=steps, desc=f"training {recipe}", unit="step", leave=False)  # on stderr: the line stays one

    def advance(record: dict) -> None:
        bar.update(record["step"] - bar.n)

    try:
        history = Trainer(model, data.train_ids, data.val_ids, config, callbacks=[advance]).fit()
    finally:
        bar.close()
    model.save_pretrained(folder)
    data.tokenizer.save(folder)
    print(f"done in {time.perf_counter() - started:.0f} s, saved to {folder} for next time", flush=True)
    return model, data.tokenizer, history.final_val_loss


def course_model(
    names: str | tuple[str, ...] = ("gpt1-shakespeare",),
    *,
    steps: int | None = None,
    unk: str | None = None,
    device: str | torch.device | None = None,
) -> tuple[GPT, Tokenizer, str]:
    """The course's Shakespeare model: ``(model in eval mode, tokenizer, where it came from in one line)``.

    Later notebooks need *a* trained model without depending on an earlier one having run (a fresh Colab
    session, a skipped notebook). So: the first checkpoint among ``names`` that exists, else a quick
    stand-in, a 2 x 64 character-level GPT-1 (the ``gpt1-char-2x64`` recipe, ``steps`` from the mode unless
    given): trained once, saved under :func:`home` as ``gpt1-char-2x64-<steps>-steps`` and reused after.
    Weaker than notebook 05's model, but enough for every cell to run. It prints one line saying which it
    is, with its sizes. ``unk`` (e.g. ``" "``) makes a character tokenizer map characters it has never seen
    to that character instead of raising, for prompts that are not Shakespeare.

    On the GPU scale (classroom mode on CUDA, see :func:`scale`) each name's ``-gpu`` checkpoint (what the
    notebook saved on a GPU) comes before the name itself, and the stand-in is the recipe's GPU variant
    (``gpt1-char-6x384``), saved under its own name.
    """
    from .tokenizers import CharTokenizer

    names = (names,) if isinstance(names, str) else tuple(names)  # one name given as a string is a common slip
    target = get_device(device)
    recipe = recipe_for(FALLBACK_RECIPE, target)
    if steps is None:
        steps = by_mode(fast=60, classroom=600, full=2000, gpu=_recipe_train(recipe).max_iters, device=target)
    fallback = checkpoint_dir(f"{recipe}-{steps}-steps")
    candidates = []
    for name in names:  # on a GPU: what a notebook saved with the GPU sizes first, then the CPU-size one
        candidates += [checkpoint_dir(checkpoint_name(name, target)), checkpoint_dir(name)]
    found = next((f for f in dict.fromkeys(candidates) if (f / "model.safetensors").exists()), None)
    if found is not None:
        model, tok = _load(found, target)
        made_by = _MADE_BY.get(found.name.removesuffix(GPU_SUFFIX), "an earlier run")
        source = f"the {found.name} checkpoint from {made_by} ({describe_shape(model.config)}; {found})"
        print(f"using {source}")
    elif (fallback / "model.safetensors").exists():
        model, tok = _load(fallback, target)
        source = (
            f"the quick stand-in {recipe} trained earlier for {steps} steps "
            f"({describe_shape(model.config)}; {fallback})"
        )
        print(f"no checkpoint {' or '.join(names)} found: using {source}")
    else:
        missing = (
            f"no checkpoint {' or '.join(names)} found (notebook 05 or "
            f"`python -m gptmini train --preset {recipe_for('gpt1-shakespeare', target)}` makes a better one)"
        )
        model, tok, val = _train_recipe(recipe, steps, fallback, target, missing)
        source = (
            f"the quick stand-in {recipe} trained just now for {steps} steps "
            f"(validation loss {val:.2f} nats per character; {describe_shape(model.config)}), saved to {fallback}"
        )
    if unk is not None and isinstance(tok, CharTokenizer):
        tok = CharTokenizer(tok.itos, unk=unk)  # raises if unk is not one of its characters
    return model.eval(), tok, source


def _recipe_train(name: str) -> TrainConfig:
    """A recipe's own training settings (its ``max_iters`` and ``eval_iters`` are the GPU scale's)."""
    from .recipes import train_config

    return train_config(name)


#: Notebook 07's base model: its recipe, and the checkpoint folder ``python -m gptmini train --preset`` writes.
FINETUNE_RECIPE = "gpt1-bpe-train-plays"


def _norm_of(folder: Path) -> str | None:
    """The ``norm`` a checkpoint folder's config.json records (None if there is none or it cannot be read)."""
    import json

    try:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return saved.get("config", saved).get("norm")
    except (OSError, ValueError, AttributeError):
        return None


def finetune_base_model(
    steps: int | None = None, *, device: str | torch.device | None = None
) -> tuple[GPT, Tokenizer, str]:
    """The model notebook 07 fine-tunes: ``(model in eval mode, BPE tokenizer, where it came from)``.

    It is notebook 05's GPT-1 (post-LN, learned positions), but it reads BPE tokens: 05's character model
    sees 64 characters, less than two lines, too little for tasks about pairs of lines, and GPT-1 itself read
    BPE tokens. So this is the ``gpt1-bpe-train-plays`` recipe (:mod:`gptmini.recipes`): a 4 x 128 post-LN GPT
    on a 1,024-token byte-level BPE, pretrained on the *training plays* of :func:`gptmini.tasks.split_plays`
    only, so that the plays the tasks test on stay unseen.

    Where it comes from, in order: the checkpoint ``gpt1-bpe-train-plays`` that
    ``python -m gptmini train --preset gpt1-bpe-train-plays`` writes (a teacher's, before class), if it is
    post-LN; else ``gpt1-bpe-train-plays-post-<steps>`` of an earlier run; else it trains one now (``steps``
    from the mode unless given) and saves it there. The norm is in the folder's name, so a pre-LN checkpoint
    of an older version of the course is never picked up. On the GPU scale (:func:`scale`) the same, with the
    recipe's GPU variant ``gpt1-bpe-train-plays-gpu`` and its own folder names.
    """
    target = get_device(device)
    recipe = recipe_for(FINETUNE_RECIPE, target)
    if steps is None:
        steps = by_mode(fast=30, classroom=1500, full=3000, gpu=_recipe_train(recipe).max_iters, device=target)
    prepared = checkpoint_dir(recipe)
    folder = checkpoint_dir(f"{recipe}-post-{steps}")
    if (prepared / "model.safetensors").exists() and _norm_of(prepared) == "post":
        model, tok = _load(prepared, target)
        return (
            model.eval(),
            tok,
            f"the checkpoint `python -m gptmini train --preset {recipe}` wrote ({prepared})",
        )
    if (folder / "model.safetensors").exists():
        model, tok = _load(folder, target)
        return model.eval(), tok, f"the checkpoint of an earlier run ({folder})"
    eval_iters = by_mode(fast=2, classroom=8, gpu=_recipe_train(recipe).eval_iters, device=target)
    model, tok, val = _train_recipe(
        recipe, steps, folder, target, "pretraining a post-LN GPT-1 on the 28 training plays",
        max_chars=by_mode(fast=200_000, classroom=None, device=target), eval_iters=eval_iters,
    )  # fmt: skip
    source = (
        f"a {model.config.n_layer} x {model.config.n_embd} post-LN GPT-1 pretrained just now for {steps} steps "
        f"on the training plays (validation loss {val:.2f} nats per token), saved to {folder}"
    )
    return model.eval(), tok, source


#: What :func:`ladder_model` writes beside a rung it trained: its steps, tokens and wall time.
LADDER_RUN_FILE = "ladder_run.json"


def ladder_model(
    rung: str, *, steps: int | None = None, device: str | torch.device | None = None
) -> tuple[GPT, Tokenizer, dict]:
    """One rung of notebook 12's scale ladder (``gptmini.recipes.LADDER``): ``(model in eval mode, tokenizer, run)``.

    ``run`` says where the model came from and what training it had: ``steps``, ``tokens``, ``seconds`` (wall
    time of the training, None when it is not known, e.g. a teacher's checkpoint) and ``folder``. With the
    recipe's own steps (classroom mode, or ``steps`` left out on the GPU scale) the folder is the one
    ``python -m gptmini train --preset RUNG`` writes, so a rung trained before class is used as it is; other
    step counts (fast mode) get a folder of their own, ``RUNG-<steps>-steps``. A missing rung trains now, with
    a progress bar, and is saved for next time. On the GPU scale each rung is its recipe's GPU variant.
    """
    import json

    from .recipes import model_config

    target = get_device(device)
    recipe = recipe_for(rung, target)
    full = _recipe_train(recipe)
    if steps is None:
        steps = by_mode(fast=max(4, full.max_iters // 100), classroom=full.max_iters, device=target)
    folder = checkpoint_dir(recipe if steps == full.max_iters else f"{recipe}-{steps}-steps")
    context = full.block_size or model_config(recipe, vocab_size=2).block_size
    run = {"recipe": recipe, "steps": steps, "tokens": steps * full.batch_size * full.grad_accum_steps * context}
    record = folder / LADDER_RUN_FILE
    if (folder / "model.safetensors").exists():
        model, tok = _load(folder, target)
        saved = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        run.update(seconds=saved.get("seconds"), device=saved.get("device"), folder=str(folder), trained_now=False)
        return model.eval(), tok, run
    seed_everything(full.seed)  # the same initial weights on every machine
    started = time.perf_counter()
    eval_iters = by_mode(fast=2, classroom=full.eval_iters, device=target)  # whole text in every mode: one vocabulary
    model, tok, _ = _train_recipe(recipe, steps, folder, target, f"rung {rung}", eval_iters=eval_iters)
    run.update(seconds=time.perf_counter() - started, device=describe(target), folder=str(folder), trained_now=True)
    record.write_text(json.dumps({k: run[k] for k in ("steps", "tokens", "seconds", "device")}), encoding="utf-8")
    return model.eval(), tok, run


# ------------------------------------------------------------------------------------------ command line
_USAGE = (
    "usage: python -m gptmini.course student-edition OUT_DIR [--from NOTEBOOKS]"
    " | sync-notebooks [--check] [--repo-url URL]"
)


def _student_edition(args: list[str]) -> int:
    from .editions import main as editions_main

    return editions_main(["student", *args])


def _sync_notebooks(args: list[str]) -> int:
    from .notebooks_sync import main as sync_main

    return sync_main(args)


#: The course's maintenance commands, each a thin alias of the module that does the work (no second copy).
COMMANDS = {"student-edition": _student_edition, "sync-notebooks": _sync_notebooks}


def main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course student-edition OUT_DIR`` or ``… sync-notebooks [--check] [--repo-url URL]``.

    One place to find the commands a teacher runs: the first writes the student edition
    (:mod:`gptmini.editions`), the second points the Colab badges and install cells at the repository
    (:mod:`gptmini.notebooks_sync`). A mistake in the input is one line on stderr and exit status 2.
    """
    import contextlib
    import io
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(_USAGE)
        return 0
    if not args or args[0] not in COMMANDS:
        said = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"python -m gptmini.course: {said}; {_USAGE}", file=sys.stderr)
        return 2
    prog, errors = f"python -m gptmini.course {args[0]}", io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            status = COMMANDS[args[0]](args[1:])
    except SystemExit as stop:  # argparse: a usage line, then "prog: error: what was wrong"; keep that one line
        if stop.code in (0, None):
            return 0
        said = errors.getvalue().strip().splitlines()
        reason = said[-1].split("error: ", 1)[-1] if said else f"exit status {stop.code}"
        print(f"{prog}: {reason} ({_USAGE})", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # e.g. OUT_DIR is the teacher's folder, or a file; a malformed marker
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    sys.stderr.write(errors.getvalue())  # what the command said on stderr, e.g. which files --check found stale
    return status


if __name__ == "__main__":
    raise SystemExit(main())
