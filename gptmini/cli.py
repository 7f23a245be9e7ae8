"""``python -m gptmini train|sample``: pretrain a classroom model on the bundled Shakespeare, then sample.

    python -m gptmini train --preset shakespeare-char            # about a minute on a CPU
    python -m gptmini sample --checkpoint ~/.cache/gptmini/checkpoints/shakespeare-char --prompt "ROMEO:"
    python -m gptmini sample --checkpoint gpt2 --prompt "Hello, I'm a language model,"
    torchrun --nproc_per_node 2 -m gptmini train --preset shakespeare-char   # several processes (DDP)

Mistakes (an unknown preset, a missing checkpoint, a prompt with characters the tokenizer never saw) end
with one readable line and exit code 2; a failed download exits with code 1. Neither prints a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from .course.recipes import RECIPES

USAGE_ERROR, RUNTIME_ERROR = 2, 1
MIN_TEMPERATURE = 1e-6  # below this (but above 0) the scaled logits can overflow; 0 is greedy decoding
MIN_TOP_P = 1e-6  # a smaller nucleus is the single most likely token, and 1e-97 is 0 in float32


class CLIError(Exception):
    """A mistake in what was asked for: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import has_train_state, recover
    from .course import checkpoint_dir
    from .course.recipes import prepare, train_config
    from .distributed import barrier, cleanup_distributed, init_distributed
    from .model import GPT
    from .train import TrainConfig, Trainer

    out = Path(args.out).expanduser() if args.out else checkpoint_dir(args.preset)
    overrides = {
        key: value
        for key, value in dict(
            max_iters=args.max_iters,
            batch_size=args.batch_size,
            grad_accum_steps=args.grad_accum,
            learning_rate=args.lr,
            eval_interval=args.eval_interval,
            eval_iters=args.eval_iters,
            seed=args.seed,
            device=args.device,
            amp=args.amp,
        ).items()
        if value is not None
    }
    overrides.update(out_dir=str(out), compile=args.compile, progress=not args.no_progress)
    dist = init_distributed(args.device)
    try:
        if dist.enabled and args.grad_accum is None:  # keep the preset's global batch divisible by the processes
            accum = train_config(args.preset).grad_accum_steps
            overrides["grad_accum_steps"] = -(-accum // dist.world_size) * dist.world_size
        say = print if dist.is_main else (lambda *a, **k: None)
        if torch.cuda.is_available():
            torch.set_float32_matmul_precision("high")  # TF32 for fp32 matmuls: much faster on Ampere and later
        say(f"Preparing the {args.preset} data (bundled Shakespeare, no download)...")
        show = dist.is_main and not args.no_progress
        data = prepare(args.preset, show_progress=show, **overrides)
        tokenizer, model_config, train_ids, val_ids = data.tokenizer, data.model_config, data.train_ids, data.val_ids
        if dist.is_main:  # one process repairs a save that a crash interrupted; the others wait for it
            recover(out)
        barrier(dist)
        if args.resume and has_train_state(out):
            trainer = _resume(Trainer, out, train_ids, val_ids, tokenizer, overrides)
            say(f"Resuming from {out} at step {trainer.step}")
        else:
            if args.resume:
                say(f"No checkpoint to resume at {out}: starting from scratch")
            torch.manual_seed(overrides.get("seed", TrainConfig().seed))
            model = GPT(model_config)
            trainer = Trainer(model, train_ids, val_ids, data.train_config, tokenizer=tokenizer)
        if args.no_progress and dist.is_main:  # no bar, but still one line per evaluation
            trainer.callbacks.append(_print_evaluations)
        say(
            f"Model: {model_config.n_layer} layers x {model_config.n_embd}, {model_config.n_head} heads, context "
            f"{model_config.block_size}, vocabulary {model_config.vocab_size} ({trainer.model.num_params() / 1e6:.2f}M "
            f"parameters) on {trainer.device}"
            + (f" x {dist.world_size} processes" if dist.enabled else "")
            + f"; {len(train_ids):,} training tokens, {trainer.tokens_per_step:,} tokens per step"
        )
        started = time.perf_counter()
        history = trainer.fit()
        elapsed = time.perf_counter() - started
        if dist.is_main:
            val = history.final_val_loss
            val_text = "n/a" if val is None else f"{val:.4f}"
            print(f"Done: {trainer.step} steps in {elapsed:.1f} s, final validation loss {val_text}")
            print(f"Checkpoint (model + tokenizer + resume state): {out}")
            if args.sample_tokens:
                ids = tokenizer.encode("\n")
                new = trainer.model.generate(ids, args.sample_tokens, temperature=0.8, top_k=50, seed=0)
                print("Sample:\n" + tokenizer.decode(new[len(ids) :]))
    finally:
        cleanup_distributed()
    return 0


def _resume(trainer_class: Any, out: Path, train_ids: Any, val_ids: Any, tokenizer: Any, overrides: dict) -> Any:
    """``Trainer.resume``, with a training state that lacks fields or has the wrong shapes said in one line."""
    try:
        return trainer_class.resume(out, train_ids, val_ids, tokenizer=tokenizer, **overrides)
    except torch.OutOfMemoryError:
        raise  # not the file's fault
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as err:  # e.g. a state of other shapes
        raise CLIError(
            f"the training state in {out} is incomplete or does not fit this run ({type(err).__name__}: {err}); "
            "resume from another checkpoint, or start again without --resume"
        ) from err


def _print_evaluations(record: dict[str, Any]) -> None:
    if record["kind"] == "eval":
        val = "n/a" if record["val_loss"] is None else f"{record['val_loss']:.4f}"
        print(f"step {record['step']}: train loss {record['train_loss']:.4f}, val loss {val}", flush=True)


# ---------------------------------------------------------------- sample
def _load_for_sampling(name_or_path: str, device: str | None):
    from .checkpoint import load_checkpoint, recover
    from .model import GPT
    from .pretrained import HUB_NAMES

    path = Path(name_or_path).expanduser()
    recover(path)
    if path.is_dir():
        model, tokenizer = load_checkpoint(path, device=device)
        if tokenizer is None:
            raise CLIError(f"{path} has no tokenizer.json, so its ids cannot be turned into text")
        return model, tokenizer
    if name_or_path in HUB_NAMES:
        from .tokenizers import GPT1Tokenizer, GPT2Tokenizer

        model = GPT.from_pretrained(name_or_path, device=device)
        if HUB_NAMES[name_or_path].endswith("openai-gpt"):
            try:
                return model, GPT1Tokenizer.from_pretrained()
            except OSError as err:
                raise CLIError(str(err), RUNTIME_ERROR) from err
        return model, GPT2Tokenizer()
    raise CLIError(
        f"No checkpoint at {path}. Train one with `python -m gptmini train --preset shakespeare-char --out {path}`, "
        f"or name real weights: {', '.join(HUB_NAMES)}."
    )


def cmd_sample(args: argparse.Namespace) -> int:
    from .device import get_device

    device = get_device(args.device)
    model, tokenizer = _load_for_sampling(args.checkpoint, str(device))
    try:
        prompt_ids = tokenizer.encode(args.prompt)
    except ValueError as err:
        raise CLIError(f"The prompt cannot be encoded by this checkpoint's tokenizer: {err}") from err
    if not prompt_ids:
        raise CLIError("The prompt is empty after tokenisation; give at least one character (e.g. --prompt '\\n')")
    for i in range(args.num_samples):
        seed = None if args.seed is None else args.seed + i
        new: list[int] = []
        shown = 0
        sys.stdout.write(args.prompt)
        stream = model.generate_stream(
            prompt_ids,
            args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=seed,
            eos_token_id=getattr(tokenizer, "eos_token_id", None),
        )
        for token in _checked(stream):
            new.append(int(token))
            text = tokenizer.decode(new)
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                sys.stdout.write(text[shown:])
                sys.stdout.flush()
                shown = len(text)
        sys.stdout.write(tokenizer.decode(new)[shown:] + "\n")
        if i + 1 < args.num_samples:
            sys.stdout.write("-" * 40 + "\n")
    sys.stdout.flush()
    return 0


def _checked(stream: Iterator[int]) -> Iterator[int]:
    """The tokens of ``stream``; logits that overflowed to NaN/inf (weights too large for this dtype) become one
    readable error instead of torch's traceback from inside sampling."""
    try:
        yield from stream
    except RuntimeError as err:
        if "probability tensor contains" not in str(err):
            raise
        raise CLIError(
            "the model's next-token probabilities are NaN or infinite: its weights overflow in this dtype or "
            "the checkpoint is corrupt; try another checkpoint"
        ) from err


# ---------------------------------------------------------------- argument parsing
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit code 2, as argparse does, minus the usage dump
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _count(text: str) -> int:
    return _integer(text, 0)


def _seed(text: str) -> int:
    value = _integer(text, 0)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"must be below 2**63, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _temperature(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 means greedy decoding), got {text!r}")
    if 0 < value < MIN_TEMPERATURE:  # logits / 1e-97 overflow to inf: such a temperature means greedy anyway
        raise argparse.ArgumentTypeError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE:g}, got {text!r}")
    return value


def _top_p(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (the probability mass kept), got {text!r}")
    if value < MIN_TOP_P:  # it would underflow to 0 in float32 and remove every token
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_TOP_P:g}; below that only the most likely token is kept anyway "
            f"(--temperature 0), got {text!r}"
        )
    return value


def _learning_rate(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gptmini", description="Train a small GPT on Shakespeare, or sample from one.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="pretrain a classroom preset on the bundled Shakespeare")
    train.add_argument("--preset", default="shakespeare-char", help=f"one of: {', '.join(RECIPES)}")
    train.add_argument("--max-iters", type=_positive_int, help="optimizer steps (default: the preset's)")
    train.add_argument("--out", help="checkpoint folder (default: ~/.cache/gptmini/checkpoints/PRESET)")
    train.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    train.add_argument("--compile", action="store_true", help="torch.compile the model (GPU; slow to start)")
    train.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), help="mixed precision (default auto)")
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--grad-accum", type=_positive_int, help="micro-batches per step, over all processes")
    train.add_argument("--learning-rate", "--lr", dest="lr", type=_learning_rate, help="peak learning rate")
    train.add_argument("--eval-interval", type=_count, help="evaluate every N steps (0: never)")
    train.add_argument("--eval-iters", type=_positive_int)
    train.add_argument("--seed", type=_seed)
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out, if any")
    train.add_argument("--sample-tokens", type=_count, default=300, help="tokens to sample at the end (0: none)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sample = commands.add_parser("sample", help="generate text from a checkpoint folder or real GPT-2 weights")
    sample.add_argument(
        "--checkpoint", help="a checkpoint folder, or gpt2 / gpt2-medium / ... / openai-gpt (default: shakespeare-char)"
    )
    sample.add_argument("--prompt", default="\n")
    sample.add_argument("--max-new-tokens", type=_count, default=200)
    sample.add_argument("--temperature", type=_temperature, default=0.8, help="0 for greedy decoding")
    sample.add_argument("--top-k", type=_positive_int, default=None)
    sample.add_argument("--top-p", type=_top_p, default=None, help="nucleus sampling: keep this much mass")
    sample.add_argument("--seed", type=_seed, default=None)
    sample.add_argument("--num-samples", type=_positive_int, default=1)
    sample.add_argument("--device")
    sample.set_defaults(func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gptmini`` and the ``gptmini`` script; returns the exit code."""
    from .pretrained import DownloadError
    from .train import TrainingDiverged

    try:
        args = build_parser().parse_args(argv)
        if args.command == "sample" and args.checkpoint is None:
            from .course import checkpoint_dir

            args.checkpoint = str(checkpoint_dir("shakespeare-char"))
        if args.command == "train" and args.preset not in RECIPES:
            raise CLIError(f"unknown preset {args.preset!r}; choose one of: {', '.join(RECIPES)}")
        return args.func(args)
    except CLIError as err:
        return _fail(err, err.code)
    except ValueError as err:  # bad input caught deeper down (CheckpointError is one): still one readable line
        return _fail(err, USAGE_ERROR)
    except (DownloadError, TrainingDiverged) as err:
        return _fail(err, RUNTIME_ERROR)
    except OSError as err:  # the disk, not the input: a full disk, a folder we may not write to
        return _fail(err, RUNTIME_ERROR)
    except KeyboardInterrupt:
        print("gptmini: interrupted", file=sys.stderr)
        return 130


def _fail(err: BaseException, code: int) -> int:
    """Print ``err`` as exactly one line on stderr (a message may hold newlines) and return ``code``."""
    text = " ".join(str(err).split()) or type(err).__name__
    print(f"gptmini: error: {text}", file=sys.stderr)
    return code
