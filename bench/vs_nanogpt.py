"""Time to nanoGPT's loss: nanoGPT's CPU recipe and gptmini's default training path, side by side.

    python bench/vs_nanogpt.py --nanogpt ~/src/nanoGPT          # a checkout of github.com/karpathy/nanoGPT
    python bench/vs_nanogpt.py --gptmini-only --target 1.95     # gptmini alone, stopping at a loss (tuning)
    python bench/vs_nanogpt.py --gptmini-only --set learning_rate=2e-3 --set batch_size=24

nanoGPT is not part of gptmini: point ``--nanogpt`` at a checkout of it. Its ``train.py`` runs unchanged, as its
README's CPU recipe (4 x 128, context 64, batch 12, 2,000 steps, learning rate 1e-3, dropout 0), in a scratch
folder holding this course's Shakespeare as its ``shakespeare_char`` data (same characters, same 90/10 split as
gptmini). Only when it evaluates changes (``--eval_interval=2000 --always_save_checkpoint=True``: once at the
start and once at the end, where it saves the final model); evaluation does not change training.

At the same time, in this process, gptmini trains its default path: ``Trainer`` with the ``shakespeare-char``
recipe (``python -m gptmini train --preset shakespeare-char``: the same model shape and data), evaluated every
``--every`` steps with the clock paused. Each side gets one thread (``--threads``), so the two run on the two
cores at once and see the same machine.

Both final models are scored on the same 100 fixed validation windows of 64 characters. nanoGPT's time is its
training time (the sum of its per-step times, the two evaluating steps replaced by the median step); its loss
on the windows is the target. gptmini's time to the target is its training time (start-up and compilation
included, evaluations excluded) at the first evaluation whose loss is at or below the target. Prints both,
their ratio, CPU seconds (steady when the machine is busy) and the load average before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gptmini import GPT
from gptmini.course.recipes import prepare
from gptmini.data import get_batch
from gptmini.train import Trainer

RECIPE = "shakespeare-char"
WINDOWS, CONTEXT = 100, 64
NANOGPT_ARGS = (  # nanoGPT's README, "I only have a macbook" (CPU): its command line, as it is ...
    "config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 --log_interval=1 "
    "--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 "
    "--dropout=0.0"
).split() + [  # ... evaluating only at the start and the end, saving the final model; float32 (its CPU default)
    "--eval_interval=2000",
    "--always_save_checkpoint=True",
    "--dtype=float32",
    "--out_dir=out",
]
STEP_LINE = re.compile(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms")


def fixed_windows(val_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same 100 validation windows for both models (seeded, spread over the whole split)."""
    x, y = get_batch(val_ids, WINDOWS, CONTEXT, generator=torch.Generator().manual_seed(0))
    return x.contiguous(), y.contiguous()  # nanoGPT views its targets flat


@torch.no_grad()
def window_loss(logits_of, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean next-token cross-entropy over every position of the fixed windows."""
    logits = logits_of(x)
    return float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1)))


# ------------------------------------------------------------------------------------------------ nanoGPT
def start_nanogpt(checkout: Path, prepared, threads: int, folder: Path) -> subprocess.Popen:
    """nanoGPT's train.py in ``folder``, on this course's characters, in the background."""
    for name in ("train.py", "model.py", "configurator.py"):
        shutil.copy(checkout / name, folder / name)
    shutil.copytree(checkout / "config", folder / "config")
    data = folder / "data" / "shakespeare_char"
    data.mkdir(parents=True)
    prepared.train_ids.numpy().astype(np.uint16).tofile(data / "train.bin")
    prepared.val_ids.numpy().astype(np.uint16).tofile(data / "val.bin")
    import pickle  # nanoGPT reads its vocabulary size from a pickle: written here, by us, for it

    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": prepared.tokenizer.vocab_size}, f)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log = open(folder / "log.txt", "w")
    return subprocess.Popen(
        [sys.executable, "train.py", *NANOGPT_ARGS], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def nanogpt_result(folder: Path, x: torch.Tensor, y: torch.Tensor) -> dict:
    """nanoGPT's training time (from its per-step log) and its final model's loss on the fixed windows."""
    lines = (folder / "log.txt").read_text().splitlines()
    times = {int(m[1]): float(m[2]) / 1e3 for m in map(STEP_LINE.match, lines) if m}
    if len(times) < 2001:
        tail = "\n".join(lines[-15:])
        raise SystemExit(f"nanoGPT did not finish its 2,000 steps; the end of its log:\n{tail}")
    # "iter k" times step k; steps 0 and 2000 also evaluated (and 2000 is the 2,001st update, not trained here)
    steps = [times[k] for k in range(1, 2000)]
    seconds = sum(steps) + statistics.median(steps)
    spec = importlib.util.spec_from_file_location("nanogpt_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = torch.load(folder / "out" / "ckpt.pt", map_location="cpu", weights_only=True)  # our own run's file
    assert saved["iter_num"] == 2000, f"nanoGPT saved step {saved['iter_num']}, not its last"
    model = module.GPT(module.GPTConfig(**saved["model_args"]))
    model.load_state_dict(saved["model"])
    model.eval()
    loss = window_loss(lambda t: model(t, t)[0], x, y)  # targets given: logits at every position
    return {"seconds": seconds, "steps": 2000, "loss": loss, "ms_per_step": 1e3 * statistics.median(steps)}


# ------------------------------------------------------------------------------------------------ gptmini
class StopAtTarget(Exception):
    pass


def run_gptmini(prepared, x, y, every: int, target: float | None, overrides: dict) -> dict:
    """The default training path, scored on the fixed windows every ``every`` steps (clock paused)."""
    torch.manual_seed(1337)
    model = GPT(prepared.model_config)
    config = prepared.train_config.replace(eval_interval=0, progress=False, log_interval=every, **overrides)
    curve: list[tuple[int, float, float]] = []  # (step, training seconds, loss on the windows)
    cpu_curve: list[float] = []  # CPU seconds of training at each score (steady when the machine is busy)
    paused = cpu_paused = 0.0

    def score(record: dict) -> None:
        nonlocal paused, cpu_paused
        now, cpu_now = time.perf_counter(), time.process_time()
        with torch.no_grad():
            was_training = model.training
            model.eval()
            loss = window_loss(lambda t: model(t)[0], x, y)
            model.train(was_training)
        curve.append((record["step"], now - started - paused, loss))
        cpu_curve.append(cpu_now - cpu_started - cpu_paused)
        paused += time.perf_counter() - now
        cpu_paused += time.process_time() - cpu_now
        if target is not None and loss <= target:
            raise StopAtTarget

    trainer = Trainer(model, prepared.train_ids, prepared.val_ids, config, callbacks=[score])
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        trainer.fit()
    except StopAtTarget:
        pass
    return {"curve": curve, "cpu_curve": cpu_curve, "config": config}


def time_to(curve: list[tuple[int, float, float]], target: float) -> tuple[int, float] | None:
    """(step, training seconds) of the first score at or below ``target``."""
    return next(((step, seconds) for step, seconds, loss in curve if loss <= target), None)


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
            continue
        if "," in value:  # betas=0.9,0.95
            out[key] = tuple(float(v) for v in value.split(","))
            continue
        try:
            out[key] = int(value)
        except ValueError:
            out[key] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", type=Path, help="a checkout of github.com/karpathy/nanoGPT")
    parser.add_argument("--gptmini-only", action="store_true", help="train gptmini alone (needs --target or none)")
    parser.add_argument("--target", type=float, default=None, help="gptmini alone: stop at this loss")
    parser.add_argument("--every", type=int, default=50, help="score gptmini every N steps")
    parser.add_argument("--threads", type=int, default=1, help="threads for each side")
    parser.add_argument("--set", action="append", default=[], help="a TrainConfig change, e.g. batch_size=24")
    parser.add_argument("--preset", default=RECIPE, help="gptmini's recipe (with --gptmini-only: another one)")
    parser.add_argument("--curve", action="store_true", help="print gptmini's whole curve (step, s, CPU s, loss)")
    args = parser.parse_args()
    if not args.gptmini_only and (args.nanogpt is None or not (args.nanogpt / "train.py").is_file()):
        raise SystemExit("--nanogpt must name a checkout of github.com/karpathy/nanoGPT (a folder with train.py)")

    torch.set_num_threads(args.threads)
    if args.preset != RECIPE and not args.gptmini_only:
        raise SystemExit(f"nanoGPT's recipe is the {RECIPE} model; compare another preset with --gptmini-only")
    prepared = prepare(args.preset)
    x, y = fixed_windows(prepared.val_ids)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nanogpt-") as scratch:
        nano = None if args.gptmini_only else start_nanogpt(args.nanogpt, prepared, args.threads, Path(scratch))
        mini = run_gptmini(prepared, x, y, args.every, args.target, parse_sets(args.set))
        if nano is not None:
            nano.wait()
            nano_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            nano_result = nanogpt_result(Path(scratch), x, y)
    load_after = os.getloadavg()

    curve, config = mini["curve"], mini["config"]
    print(f"torch {torch.__version__}, {args.threads} thread(s) each, {os.cpu_count()} CPUs; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")  # fmt: skip
    print(f"gptmini: batch {config.batch_size}, lr {config.learning_rate:g}, {config.max_iters} steps, "
          f"warm-up {config.warmup_iters}, compile {config.compile}")  # fmt: skip
    step, seconds, loss = curve[-1]
    print(f"gptmini: {step} steps in {seconds:.1f} s training ({mini['cpu_curve'][-1]:.1f} CPU s) "
          f"-> {loss:.4f} on the {WINDOWS} windows")  # fmt: skip
    if args.curve:
        for (step, seconds, loss), cpu in zip(curve, mini["cpu_curve"], strict=True):
            print(f"  step {step:5d}  {seconds:7.1f} s  {cpu:7.1f} CPU s  {loss:.4f}")
    target = args.target
    if nano is not None:
        target = nano_result["loss"]
        cpu = nano_cpu.ru_utime + nano_cpu.ru_stime
        print(f"nanoGPT: 2000 steps in {nano_result['seconds']:.1f} s training ({cpu:.1f} CPU s in all, "
              f"{nano_result['ms_per_step']:.0f} ms a step) -> {target:.4f} on the {WINDOWS} windows")  # fmt: skip
    if target is not None:
        reached = time_to(curve, target)
        if reached is None:
            print(f"gptmini did not reach {target:.4f} (best {min(c[2] for c in curve):.4f})")
        else:
            ratio = f" = {reached[1] / nano_result['seconds']:.2f} x nanoGPT's time" if nano is not None else ""
            cpu = mini["cpu_curve"][[c[0] for c in curve].index(reached[0])]
            print(f"time to {target:.4f}: gptmini {reached[1]:.1f} s, {cpu:.1f} CPU s (step {reached[0]}){ratio}")


if __name__ == "__main__":
    main()
