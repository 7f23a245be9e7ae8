"""What every notebook's first cell needs: the speed switch, the device, a seed, and where checkpoints live.

One environment variable, ``GPTMINI_MODE`` = ``fast`` | ``classroom`` | ``full`` (default ``classroom``),
picks how long things run; the cells are the same in every mode, only the numbers change.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

from .device import describe, get_device

MODES = ("fast", "classroom", "full")
REPO_URL = "https://github.com/gptmini/gptmini"
T = TypeVar("T")

if TYPE_CHECKING:  # only for type hints: importing the model here would slow down `import gptmini.course`
    from .model import GPT
    from .tokenizers import Tokenizer


def mode() -> str:
    """The speed switch, checked so a typo is an error rather than a silent default."""
    value = os.environ.get("GPTMINI_MODE", "classroom").strip().lower()
    if value not in MODES:
        raise ValueError(f"GPTMINI_MODE={value!r} is not one of {', '.join(MODES)}; unset it or pick one of those")
    return value


def by_mode(fast: T, classroom: T, full: T | None = None) -> T:
    """The value for the current mode, e.g. ``steps = by_mode(fast=30, classroom=2000, full=5000)``."""
    choice = {"fast": fast, "classroom": classroom, "full": classroom if full is None else full}
    return choice[mode()]


def home() -> Path:
    """Where checkpoints and caches go: ``$GPTMINI_HOME`` or ``~/.cache/gptmini``."""
    return Path(os.environ.get("GPTMINI_HOME", Path.home() / ".cache" / "gptmini")).expanduser()


def checkpoint_dir(name: str) -> Path:
    """The known place of a course checkpoint, e.g. ``checkpoint_dir("gpt1-shakespeare")`` (notebook 05)."""
    return home() / "checkpoints" / name


def in_colab() -> bool:
    return "google.colab" in sys.modules


def seed_everything(seed: int = 1337) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Setup:
    mode: str
    device: torch.device
    seed: int

    def __str__(self) -> str:
        return f"gptmini course | mode: {self.mode} | device: {describe(self.device)} | seed: {self.seed}"


def setup(seed: int = 1337, device: str | None = None) -> Setup:
    """Seed everything, pick the device (cuda > mps > cpu), and report the mode; call it in each first cell."""
    seed_everything(seed)
    if mode() == "fast":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    info = Setup(mode=mode(), device=get_device(device), seed=seed)
    print(info)
    return info


#: Which notebook writes each course checkpoint, for the one-line description of where a model came from.
_MADE_BY = {"gpt1-shakespeare": "notebook 05", "gpt2-shakespeare": "notebook 08"}


def course_model(
    names: str | tuple[str, ...] = ("gpt1-shakespeare",),
    *,
    steps: int | None = None,
    unk: str | None = None,
    device: str | torch.device | None = None,
) -> tuple[GPT, Tokenizer, str]:
    """The course's Shakespeare model: ``(model in eval mode, tokenizer, where it came from in one line)``.

    Later notebooks need *a* trained model without depending on an earlier one having run (a fresh Colab
    session, a skipped notebook). So: the first checkpoint among ``names`` that exists, else a small
    character-level GPT-1 trained on the spot (``steps`` from the mode unless given), weaker but enough for
    every cell to run. ``unk`` (e.g. ``" "``) makes a character tokenizer map characters it has never seen to
    that character instead of raising, for prompts that are not Shakespeare.
    """
    from .config import GPTConfig
    from .model import GPT
    from .tokenizers import CharTokenizer, load_tokenizer

    names = (names,) if isinstance(names, str) else tuple(names)  # one name given as a string is a common slip
    target = get_device(None if device is None else str(device))
    for name in names:
        folder = checkpoint_dir(name)
        if (folder / "model.safetensors").exists():
            model, tok = GPT.from_pretrained(folder, device=target), load_tokenizer(folder)
            source = f"the {name} checkpoint from {_MADE_BY.get(name, 'an earlier run')} ({folder})"
            break
    else:
        from .data import encode_corpus, shakespeare, train_val_split
        from .train import train

        steps = by_mode(fast=60, classroom=600, full=2000) if steps is None else steps
        print(
            f"no checkpoint {' or '.join(names)} found: training a small GPT-1 for {steps} steps "
            f"(`python -m gptmini train --preset gpt1-shakespeare` or notebook 05 makes a better one)"
        )
        text = shakespeare()
        tok = CharTokenizer.from_text(text)
        train_ids, val_ids = train_val_split(encode_corpus(tok, text))
        config = GPTConfig.preset("gpt1-shakespeare", vocab_size=tok.vocab_size, n_layer=2, n_embd=64)
        model = GPT(config)
        history = train(
            model,
            train_ids,
            val_ids,
            preset="gpt1-shakespeare",
            max_iters=steps,
            warmup_iters=min(100, steps // 4),
            eval_interval=steps,
            eval_iters=5,
            device=str(target),
            progress=False,
        )
        source = (
            f"a small character-level GPT-1 trained just now for {steps} steps "
            f"(validation loss {history.final_val_loss:.2f} nats per character)"
        )
    if unk is not None and isinstance(tok, CharTokenizer):
        tok = CharTokenizer(tok.itos, unk=unk)  # raises if unk is not one of its characters
    return model.eval(), tok, source


def finetune_base_model(
    steps: int | None = None, *, device: str | torch.device | None = None
) -> tuple[GPT, Tokenizer, str]:
    """The model notebook 07 fine-tunes: ``(model in eval mode, BPE tokenizer, where it came from)``.

    Notebook 05's character model sees 64 characters, less than two lines: too little for tasks about
    pairs of lines. GPT-1 read BPE tokens, so this is a 4 x 128 GPT on a 1,024-token byte-level BPE
    (64 tokens hold four or five lines), pretrained on the *training plays* of :func:`gptmini.tasks.split_plays`
    only, so that the plays the tasks test on stay unseen. It is pre-LN (GPT-2's arrangement, notebook 08),
    which trains reliably at a high learning rate in few steps. The first run trains it (``steps`` from the
    mode unless given) and saves it as the checkpoint ``gpt1-bpe-train-plays-<steps>``; later runs load it.
    """
    from .config import GPTConfig
    from .data import shakespeare_plays
    from .model import GPT
    from .tasks import split_plays
    from .tokenizers import BPETokenizer, load_tokenizer
    from .train import train

    steps = by_mode(fast=30, classroom=1500, full=3000) if steps is None else steps
    target = get_device(None if device is None else str(device))
    folder = checkpoint_dir(f"gpt1-bpe-train-plays-{steps}")
    if (folder / "model.safetensors").exists():
        model, tok = GPT.from_pretrained(folder, device=target), load_tokenizer(folder)
        return model.eval(), tok, f"the checkpoint of an earlier run ({folder})"
    train_plays, _ = split_plays(shakespeare_plays())
    text = "\n\n".join(play.text for play in train_plays)
    text = text[: by_mode(fast=200_000, classroom=len(text))]  # fast mode: a tenth of it, for the tests
    print(f"pretraining a BPE GPT on the {len(train_plays)} training plays for {steps} steps (saved for next time)")
    tok = BPETokenizer().train(text, 1024, progress=False)
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    cut = int(0.95 * len(ids))
    config = GPTConfig(
        vocab_size=tok.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, norm="pre",
        name="gpt1-bpe-train-plays",
    )  # fmt: skip
    model = GPT(config)
    history = train(
        model,
        ids[:cut],
        ids[cut:],
        batch_size=32,
        max_iters=steps,
        learning_rate=3e-3,
        min_lr=3e-4,
        warmup_iters=min(100, max(1, steps // 10)),
        eval_interval=steps,
        eval_iters=by_mode(fast=2, classroom=8),
        device=str(target),
        progress=False,
    )
    model.save_pretrained(folder)
    tok.save(folder)
    source = (
        f"a 4 x 128 BPE GPT pretrained just now for {steps} steps on the training plays "
        f"(validation loss {history.final_val_loss:.2f} nats per token), saved to {folder}"
    )
    return model.eval(), tok, source
