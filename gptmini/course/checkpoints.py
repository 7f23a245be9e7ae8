"""Where the course's checkpoints live, and the models later notebooks use when an earlier one was not run.

Later notebooks need *a* trained model without depending on an earlier one having run (a fresh Colab session, a
skipped notebook): :func:`course_model` and :func:`finetune_base_model` find the checkpoint a notebook or a
teacher saved, or train a quick stand-in from its recipe (:mod:`gptmini.course.recipes`) once and reuse it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..device import describe, get_device
from .modes import describe_shape, scale, seed_everything
from .recipes import model_config, prepare, recipe_for, train_config

if TYPE_CHECKING:
    from ..model import GPT
    from ..tokenizers import Tokenizer


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


#: Which notebook writes each course checkpoint, for the one-line description of where a model came from.
_MADE_BY = {"gpt1-shakespeare": "notebook 05", "gpt2-shakespeare": "notebook 08"}
#: The quick stand-in :func:`course_model` trains when no course checkpoint exists (see its recipe).
FALLBACK_RECIPE = "gpt1-char-2x64"
#: Notebook 07's base model: its recipe, and the checkpoint folder ``python -m gptmini train --preset`` writes.
FINETUNE_RECIPE = "gpt1-bpe-train-plays"


def _load(folder: Path, device: torch.device) -> tuple[GPT, Tokenizer]:
    from ..model import GPT
    from ..tokenizers import load_tokenizer

    return GPT.from_pretrained(folder, device=device), load_tokenizer(folder)


def _train_recipe(
    recipe: str, here: str, folder: Path, device: torch.device, what: str, steps: int
) -> tuple[GPT, Tokenizer, float | None]:
    """Train a recipe at scale ``here`` for ``steps`` steps, save it to ``folder`` and say so in one line."""
    from tqdm.auto import tqdm

    from ..model import GPT
    from ..train import Trainer

    print(f"{what}: training {recipe} for {steps} steps ...", end=" ", flush=True)
    started = time.perf_counter()
    own_steps = train_config(recipe, here).max_iters
    data = prepare(recipe, here, **({} if steps == own_steps else {"max_iters": steps}))
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

    The first checkpoint among ``names`` that exists, else a quick stand-in, a 2 x 64 character-level GPT-1
    (the ``gpt1-char-2x64`` recipe, its steps for this mode unless ``steps`` is given): trained once, saved under
    :func:`home` as ``gpt1-char-2x64-<steps>-steps`` and reused after. Weaker than notebook 05's model, but
    enough for every cell to run. It prints one line saying which it is, with its sizes. ``unk`` (e.g. ``" "``)
    makes a character tokenizer map characters it has never seen to that character instead of raising, for
    prompts that are not Shakespeare.

    On the GPU scale (classroom mode on CUDA, see :func:`gptmini.course.scale`) each name's ``-gpu`` checkpoint
    (what the notebook saved on a GPU) comes before the name itself, and the stand-in is the recipe's GPU variant
    (``gpt1-char-6x384``), saved under its own name.
    """
    from ..tokenizers import CharTokenizer

    names = (names,) if isinstance(names, str) else tuple(names)  # one name given as a string is a common slip
    target = get_device(device)
    here = scale(target)
    recipe = recipe_for(FALLBACK_RECIPE, here)
    if steps is None:
        steps = train_config(recipe, here).max_iters
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
            f"`python -m gptmini train --preset {recipe_for('gpt1-shakespeare', here)}` makes a better one)"
        )
        model, tok, val = _train_recipe(recipe, here, fallback, target, missing, steps)
        source = (
            f"the quick stand-in {recipe} trained just now for {steps} steps "
            f"(validation loss {val:.2f} nats per character; {describe_shape(model.config)}), saved to {fallback}"
        )
    if unk is not None and isinstance(tok, CharTokenizer):
        tok = CharTokenizer(tok.itos, unk=unk)  # raises if unk is not one of its characters
    return model.eval(), tok, source


def _norm_of(folder: Path) -> str | None:
    """The ``norm`` a checkpoint folder's config.json records (None if there is none or it cannot be read)."""
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
    BPE tokens. So this is the ``gpt1-bpe-train-plays`` recipe: a 4 x 128 post-LN GPT on a 1,024-token
    byte-level BPE, pretrained on the *training plays* of :func:`gptmini.tasks.split_plays` only, so that the
    plays the tasks test on stay unseen.

    Where it comes from, in order: the checkpoint ``gpt1-bpe-train-plays`` that
    ``python -m gptmini train --preset gpt1-bpe-train-plays`` writes (a teacher's, before class), if it is
    post-LN; else ``gpt1-bpe-train-plays-post-<steps>`` of an earlier run; else it trains one now (the recipe's
    steps for this mode unless ``steps`` is given) and saves it there. The norm is in the folder's name, so a
    pre-LN checkpoint of an older version of the course is never picked up. On the GPU scale the same, with the
    recipe's GPU variant ``gpt1-bpe-train-plays-gpu`` and its own folder names.
    """
    target = get_device(device)
    here = scale(target)
    recipe = recipe_for(FINETUNE_RECIPE, here)
    if steps is None:
        steps = train_config(recipe, here).max_iters
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
    what = "pretraining a post-LN GPT-1 on the 28 training plays"
    model, tok, val = _train_recipe(recipe, here, folder, target, what, steps)
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
    """One rung of notebook 12's scale ladder (``recipes.LADDER``): ``(model in eval mode, tokenizer, run)``.

    ``run`` says where the model came from and what training it had: ``steps``, ``tokens``, ``seconds`` (wall
    time of the training, None when it is not known, e.g. a teacher's checkpoint) and ``folder``. With the
    recipe's own steps (classroom mode) the folder is the one ``python -m gptmini train --preset RUNG`` writes,
    so a rung trained before class is used as it is; other step counts (fast mode) get a folder of their own,
    ``RUNG-<steps>-steps``. A missing rung trains now, with a progress bar, and is saved for next time. On the
    GPU scale each rung is its recipe's GPU variant.
    """
    target = get_device(device)
    here = scale(target)
    recipe = recipe_for(rung, here)
    config = train_config(recipe, here)
    if steps is None:
        steps = config.max_iters
    folder = checkpoint_dir(recipe if steps == train_config(recipe).max_iters else f"{recipe}-{steps}-steps")
    context = config.block_size or model_config(recipe, vocab_size=2).block_size
    run = {"recipe": recipe, "steps": steps, "tokens": steps * config.batch_size * config.grad_accum_steps * context}
    record = folder / LADDER_RUN_FILE
    if (folder / "model.safetensors").exists():
        model, tok = _load(folder, target)
        saved = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        run.update(seconds=saved.get("seconds"), device=saved.get("device"), folder=str(folder), trained_now=False)
        return model.eval(), tok, run
    seed_everything(config.seed)  # the same initial weights on every machine
    started = time.perf_counter()
    model, tok, _ = _train_recipe(recipe, here, folder, target, f"rung {rung}", steps)
    run.update(seconds=time.perf_counter() - started, device=describe(target), folder=str(folder), trained_now=True)
    record.write_text(json.dumps({k: run[k] for k in ("steps", "tokens", "seconds", "device")}), encoding="utf-8")
    return model.eval(), tok, run
