"""Pretraining with the language-modelling objective L1: predict every next token of the corpus.

Read this module top to bottom: the configuration, then :func:`train_step` (one optimizer update, the
whole algorithm on one screen), then :class:`Trainer`, which draws batches, calls :func:`train_step`,
evaluates, logs and saves. What a first reading can skip lives elsewhere: the optimiser and schedule in
:mod:`gptmini.optim`, several processes in :mod:`gptmini.distributed`, mixed precision in
:mod:`gptmini.device`, random states for exact resume in :mod:`gptmini.rng`, crash-safe folders in
:mod:`gptmini.checkpoint`. The course's recipes (:mod:`gptmini.course.recipes`) build on :class:`TrainConfig`
and the loss plot (:func:`gptmini.viz.plot_losses`) reads a :class:`History`; this module knows neither.

Quick use in a notebook::

    history = train(model, train_ids, val_ids, max_iters=500)
    plot_losses(history)  # from gptmini.viz
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn

from .data import get_batch
from .device import get_device, precision
from .distributed import barrier, gather_to_all, init_distributed, mean_over_processes
from .errors import CheckpointError
from .optim import configure_optimizer, get_lr, param_groups
from .rng import get_rng_state, set_rng_state
from .utils import eval_mode, unwrap

Amp = Literal["auto", "bf16", "fp16", "off"]
Callback = Callable[[dict[str, Any]], Any]


# ================================================================ configuration
@dataclass
class TrainConfig:
    """How to train (the model's shape lives in :class:`gptmini.GPTConfig`).

    ``grad_accum_steps`` counts micro-batches per optimizer step *in total*: under ``torchrun`` each of
    the W processes runs ``grad_accum_steps / W`` of them, so the same config gives the same global batch
    (``batch_size * block_size * grad_accum_steps`` tokens) and the same training on 1 or 8 processes.
    """

    batch_size: int = 12
    block_size: int | None = None  # None: the model's context (config.block_size)
    max_iters: int = 2000  # optimizer steps
    learning_rate: float = 1e-3
    min_lr: float = 1e-4  # the cosine ends here (GPT-1 went to 0)
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: decay until max_iters
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0  # clip the global gradient norm; 0 switches clipping off
    grad_accum_steps: int = 1
    eval_interval: int = 250  # evaluate every N steps (and at the start and the end); 0: never
    eval_iters: int = 20  # batches per split in each evaluation
    log_interval: int = 10  # a "train" record (and callback) every N steps
    device: str | torch.device | None = None  # None: cuda > mps > cpu (kept as a string, for JSON)
    amp: Amp = "auto"  # auto: bf16/fp16 autocast on CUDA, full precision elsewhere
    compile: bool = False
    out_dir: str | None = None  # None: no checkpoints
    checkpoint_interval: int | None = None  # None: at every evaluation; always at the end when out_dir is set
    seed: int = 1337
    progress: bool = True  # tqdm bar and evaluation lines
    max_skipped_steps: int = 100  # fp16: stop when the gradient scaler skips this many updates in a row

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON gives lists back
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        problems = []
        for key in ("batch_size", "grad_accum_steps", "eval_iters", "log_interval", "max_skipped_steps"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                problems.append(f"{key} must be an integer >= 1, got {getattr(self, key)!r}")
        for key in ("max_iters", "warmup_iters", "eval_interval"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                problems.append(f"{key} must be an integer >= 0, got {getattr(self, key)!r}")
        if self.block_size is not None and self.block_size < 1:
            problems.append(f"block_size must be >= 1 (or None for the model's), got {self.block_size}")
        if not self.learning_rate > 0 or not 0 <= self.min_lr <= self.learning_rate:
            problems.append(
                f"need learning_rate > 0 and 0 <= min_lr <= learning_rate, got {self.learning_rate}, {self.min_lr}"
            )
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            problems.append(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {self.amp!r}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            problems.append("grad_clip and weight_decay must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems))

    @property
    def decay_iters(self) -> int:
        return self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer update ``step`` (0-based): :func:`gptmini.optim.get_lr` with these fields."""
        return get_lr(
            step,
            learning_rate=self.learning_rate,
            warmup_iters=self.warmup_iters,
            decay_iters=self.decay_iters,
            min_lr=self.min_lr,
        )

    @property
    def save_every(self) -> int:
        return self.eval_interval if self.checkpoint_interval is None else self.checkpoint_interval

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown TrainConfig fields {unknown}; valid fields are {sorted(known)}")
        return cls(**data)


# ================================================================ history
@dataclass
class History:
    """What happened during training, as a list of records (dicts).

    Every record has ``kind`` ("train" every ``log_interval`` steps, "eval" at each evaluation), ``step``
    (optimizer steps done), ``train_loss``, ``val_loss`` (None on train records), ``lr`` and
    ``tokens_per_sec`` (None on eval records). A train record's loss is the mean over the steps since the
    previous one; an eval record's losses are averages over ``eval_iters`` fixed batches.
    """

    records: list[dict[str, Any]] = field(default_factory=list)

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records]

    @classmethod
    def from_list(cls, records: Iterable[dict[str, Any]]) -> History:
        return cls([dict(r) for r in records])

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    @property
    def final_val_loss(self) -> float | None:
        vals = [r["val_loss"] for r in self.of_kind("eval") if r["val_loss"] is not None]
        return vals[-1] if vals else None

    @property
    def best_val_loss(self) -> float | None:
        vals = [r["val_loss"] for r in self.of_kind("eval") if r["val_loss"] is not None]
        return min(vals) if vals else None

    def __len__(self) -> int:
        return len(self.records)


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite; training stopped before saving anything bad.

    ``step`` is the step where it was seen, ``checkpoint`` the last good checkpoint (or None), ``history``
    everything logged until then.
    """

    def __init__(self, message: str, step: int, checkpoint: Path | None, history: History) -> None:
        super().__init__(message)
        self.step, self.checkpoint, self.history = step, checkpoint, history


# ================================================================ one optimizer update
@dataclass
class StepResult:
    """What :func:`train_step` did: the mean loss of its batches and whether the weights changed."""

    loss: float
    updated: bool  # False: the loss was not finite, or the fp16 gradient scaler skipped the update


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    lr: float,
    grad_clip: float = 1.0,
    scaler: torch.amp.GradScaler | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    average: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> StepResult:
    """One optimizer update: forward, loss, zero_grad, backward, clip, step.

    ``batches`` holds one ``(x, y)`` pair, or several whose gradients add up before the update (gradient
    accumulation: a big batch that does not fit in memory at once). ``scaler`` (fp16 only) scales the loss
    so that small gradients survive in half precision. ``average`` makes the loss the mean over processes
    (DDP), so that every process takes the same decision. A loss that is not finite changes nothing.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=batches[0][0].device)
    for i, (x, y) in enumerate(batches):
        last = i == len(batches) - 1
        # Under DDP, share the gradients between processes once, after the last micro-batch.
        sync = model.no_sync() if hasattr(model, "no_sync") and not last else contextlib.nullcontext()
        with sync:
            with autocast():
                _, loss = model(x, y)
            total += loss.detach().float()
            loss = loss / len(batches)
            (loss if scaler is None else scaler.scale(loss)).backward()
    mean = total / len(batches)
    loss_value = float(average(mean) if average else mean)
    if not math.isfinite(loss_value):  # stop before the bad gradients touch the weights
        return StepResult(loss_value, updated=False)
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is None:
        optimizer.step()
        return StepResult(loss_value, updated=True)
    scale = scaler.get_scale()
    scaler.step(optimizer)  # skipped when a gradient overflowed in fp16 ...
    scaler.update()  # ... and then the scale goes down
    return StepResult(loss_value, updated=scaler.get_scale() >= scale)


# ================================================================ the trainer
def _as_tokens(data: Any, name: str, vocab_size: int, block_size: int) -> torch.Tensor | None:
    if data is None:
        if name == "train_data":
            raise ValueError("train_data is required: a 1-D tensor of token ids")
        return None
    if not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data)
    if data.dim() != 1 or data.is_floating_point():
        raise ValueError(
            f"{name} must be a 1-D tensor of token ids (e.g. encode_corpus(tokenizer, text)), "
            f"got shape {tuple(data.shape)} and dtype {data.dtype}"
        )
    if len(data) < block_size + 1:
        raise ValueError(
            f"{name} has {len(data)} tokens; one training window needs block_size + 1 = {block_size + 1}. "
            "Use more text or a smaller block_size."
        )
    lo, hi = int(data.min()), int(data.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(
            f"{name} holds token id {hi if hi >= vocab_size else lo} but the model's vocabulary has {vocab_size} "
            "ids; build the model with vocab_size=tokenizer.vocab_size for the tokenizer that made the data."
        )
    return data


class Trainer:
    """Trains a :class:`gptmini.GPT` on a 1-D tensor of token ids (L1: next-token cross-entropy).

    >>> trainer = Trainer(model, train_ids, val_ids, TrainConfig(max_iters=500))
    >>> history = trainer.fit()

    ``callbacks`` are called as ``callback(record)`` after each train log and each evaluation (see
    :class:`History`). ``tokenizer``, if given, is saved with each checkpoint. ``step`` counts the
    optimizer updates done so far (an fp16 update the gradient scaler skips does not count); ``fit()`` runs
    until ``config.max_iters``. A model already wrapped by ``torch.compile`` or DDP is welcome: the trainer
    saves, evaluates and counts the plain model inside (``trainer.model``).
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: torch.Tensor,
        val_data: torch.Tensor | None = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        tokenizer: Any = None,
    ) -> None:
        self.config = config = config or TrainConfig()
        self.dist = init_distributed(config.device)
        if self.dist.enabled and config.grad_accum_steps % self.dist.world_size:
            raise ValueError(
                f"grad_accum_steps ({config.grad_accum_steps}) must be a multiple of the number of processes "
                f"({self.dist.world_size}): it counts micro-batches per step over all processes, so that the "
                f"global batch is the same on any number of them. Use grad_accum_steps={self.dist.world_size}."
            )
        if self.dist.enabled and torch.cuda.is_available() and (config.device in (None, "cuda")):
            self.device = torch.device("cuda", self.dist.local_rank)
        else:
            self.device = get_device(config.device)
        self.model = unwrap(model)  # what is saved, evaluated and counted
        self.block_size = config.block_size or self.model.config.block_size
        if self.block_size > self.model.config.block_size:
            raise ValueError(
                f"block_size {self.block_size} is longer than the model's context ({self.model.config.block_size})"
            )
        vocab = self.model.config.vocab_size
        self.train_data = _as_tokens(train_data, "train_data", vocab, self.block_size)
        self.val_data = _as_tokens(val_data, "val_data", vocab, self.block_size)
        self.model.to(self.device)
        self.tokenizer = tokenizer
        self.callbacks = list(callbacks)
        self.history = History()
        self.step = 0
        self.skipped_in_a_row = 0
        self.last_checkpoint: Path | None = None  # the last good checkpoint written (or resumed from)
        self.last_checkpoint_step: int | None = None
        self.amp_dtype = precision(config.amp, self.device)

        self.optimizer = configure_optimizer(
            self.model, weight_decay=config.weight_decay, learning_rate=config.learning_rate, betas=config.betas,
            device=self.device,
        )  # fmt: skip
        _, self._param_names = param_groups(self.model, config.weight_decay)  # what checkpoints file moments under
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

        # The batch sampler has its own generator, the same on every process (each keeps its share of the
        # micro-batches), so the data order depends only on the seed. Dropout uses torch's global RNG.
        self.generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed + self.dist.rank)

        compiled = model if hasattr(model, "_orig_mod") else None  # handed over already compiled
        if compiled is None and config.compile:
            compiled = torch.compile(self.model)
        self.forward_model = self.model if compiled is None else compiled
        self.train_model = self.forward_model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DDP(self.forward_model, device_ids=ids)

    # ------------------------------------------------------------ small helpers
    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step, over all processes."""
        return self.config.batch_size * self.block_size * self.config.grad_accum_steps

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _average(self, value: torch.Tensor) -> torch.Tensor:
        return mean_over_processes(value, self.dist)

    def _my_batches(self, data: torch.Tensor, count: int, generator: torch.Generator):
        """Draw ``count`` batches in a fixed order (the same on every process) and yield this process's share."""
        for i in range(count):
            x, y = get_batch(data, self.config.batch_size, self.block_size, "cpu", generator)
            if i % self.dist.world_size == self.dist.rank:
                yield self._to_device(x), self._to_device(y)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # pinned memory lets the copy overlap with the GPU's work
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _emit(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.dist.is_main:
            for callback in self.callbacks:
                callback(dict(record))

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def estimate_loss(self, eval_iters: int | None = None) -> dict[str, float | None]:
        """Mean loss over ``eval_iters`` batches of each split, in eval mode (no dropout).

        The batches come from a generator seeded afresh each time, so every evaluation sees the same
        windows: successive values differ because the model changed, not because the sample did.
        """
        eval_iters = eval_iters or self.config.eval_iters
        out: dict[str, float | None] = {}
        with eval_mode(self.model):
            for split, data in (("train", self.train_data), ("val", self.val_data)):
                if data is None:
                    out[split] = None
                    continue
                generator = torch.Generator().manual_seed(self.config.seed + 1)
                total = torch.zeros((), device=self.device)
                for x, y in self._my_batches(data, eval_iters, generator):
                    with self._autocast():
                        _, loss = self.forward_model(x, y)
                    total += loss.float()
                out[split] = float(self._average(total) * self.dist.world_size / eval_iters)
        return out

    # ------------------------------------------------------------ one optimizer step
    def train_step(self) -> tuple[float, float]:
        """Draw this step's batches and run :func:`train_step` on them; returns (loss over all processes, lr).

        The step counter (and with it the learning-rate schedule) only moves when the weights were updated.
        """
        lr = self.config.lr_at(self.step)
        batches = list(self._my_batches(self.train_data, self.config.grad_accum_steps, self.generator))
        result = train_step(
            self.train_model, self.optimizer, batches, lr=lr, grad_clip=self.config.grad_clip, scaler=self.scaler,
            autocast=self._autocast, average=self._average if self.dist.enabled else None,
        )  # fmt: skip
        if result.updated:
            self.step += 1
            self.skipped_in_a_row = 0
        elif math.isfinite(result.loss):  # the fp16 gradient scaler skipped an overflowing update
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row >= self.config.max_skipped_steps:
                self._diverged(
                    f"the fp16 gradient scaler skipped {self.skipped_in_a_row} updates in a row (gradients overflow "
                    "even at a tiny loss scale)",
                    lr,
                    1,
                )
        return result.loss, lr

    # ------------------------------------------------------------ the loop
    def fit(self) -> History:
        """Train until ``config.max_iters`` steps; evaluate, log, call back and checkpoint along the way."""
        from tqdm.auto import tqdm

        config = self.config
        show = config.progress and self.dist.is_main
        bar = tqdm(total=config.max_iters, initial=self.step, desc="training", disable=not show, dynamic_ncols=True)
        self.model.train()
        if self.step == 0 and config.eval_interval:
            self._evaluate(bar)
        losses: list[float] = []
        step_time = 0.0
        try:
            while self.step < config.max_iters:
                started = time.perf_counter()
                before = self.step
                loss, lr = self.train_step()
                step_time += time.perf_counter() - started
                if not math.isfinite(loss):
                    self._diverged(f"the training loss is {loss} (the weights were left as they were)", lr, 1)
                if self.step == before:  # a skipped fp16 update: nothing to log or save
                    continue
                losses.append(loss)
                bar.update(1)
                last = self.step == config.max_iters
                if self.step % config.log_interval == 0 or last or self.step == 1:
                    record = dict(
                        kind="train", step=self.step, train_loss=sum(losses) / len(losses), val_loss=None, lr=lr,
                        tokens_per_sec=len(losses) * self.tokens_per_step / max(step_time, 1e-9),
                    )  # fmt: skip
                    self._emit(record)
                    bar.set_postfix(loss=f"{record['train_loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
                    losses, step_time = [], 0.0
                if config.eval_interval and (self.step % config.eval_interval == 0 or last):
                    self._evaluate(bar)
                if config.out_dir and (last or config.save_every and self.step % config.save_every == 0):
                    self.save_checkpoint()
        finally:
            bar.close()
        return self.history

    def _evaluate(self, bar) -> dict[str, float | None]:
        losses = self.estimate_loss()
        record = dict(
            kind="eval", step=self.step, train_loss=losses["train"], val_loss=losses["val"],
            lr=self.config.lr_at(max(self.step - 1, 0)), tokens_per_sec=None,
        )  # fmt: skip
        self._emit(record)
        if self.config.progress and self.dist.is_main:
            val = "n/a" if losses["val"] is None else f"{losses['val']:.4f}"
            bar.write(f"step {self.step}: train loss {losses['train']:.4f}, val loss {val}")
        if not math.isfinite(losses["train"]):
            self._diverged(f"the evaluated training loss is {losses['train']}", record["lr"])
        return losses

    def _diverged(self, what: str, lr: float, ahead: int = 0) -> None:
        kept = (
            f"The last good checkpoint (step {self.last_checkpoint_step}) is at {self.last_checkpoint}."
            if self.last_checkpoint
            else "No checkpoint was written before this."
        )
        raise TrainingDiverged(
            f"Training diverged at step {self.step + ahead}: {what} (learning rate {lr:.3g}). Training stopped. {kept} "
            "Try a lower learning_rate, a longer warm-up, grad_clip=1.0, or amp='off' / 'bf16' instead of fp16.",
            self.step + ahead,
            self.last_checkpoint,
            self.history,
        )

    # ================================================================ checkpoints and exact resume (skippable)
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as nested dicts of numbers, strings and tensors (no pickle).

        Under torchrun every process must call it: each one's random state is gathered, one per rank.
        """
        optimizer = self.optimizer.state_dict()
        moments = {self._param_names[i]: dict(s) for i, s in optimizer["state"].items()}
        ranks = gather_to_all(get_rng_state(self.device), self.dist)
        return {
            "version": 2,
            "step": self.step,
            "config": self.config.to_dict(),
            "tokens_per_step": self.tokens_per_step,
            "world_size": self.dist.world_size,
            "optimizer": moments,
            "scaler": {} if self.scaler is None else dict(self.scaler.state_dict()),  # plain numbers
            "rng": {"batches": self.generator.get_state(), "ranks": ranks},
            "history": self.history.to_list(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the model weights are loaded separately).

        A state that lacks a part, or holds one of the wrong kind, is refused with :class:`CheckpointError`
        naming it, before anything changes: a half-restored trainer would not resume where it stopped.
        """
        _check_resume_state(state)
        names = {name: i for i, name in enumerate(self._param_names)}
        missing = sorted(set(state["optimizer"]) - set(names))
        if missing:
            raise ValueError(f"optimizer state for parameters the model does not have: {missing[:5]}")
        current = self.optimizer.state_dict()
        current["state"] = {names[n]: s for n, s in state["optimizer"].items()}
        self.optimizer.load_state_dict(current)
        if state.get("scaler") and self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = History.from_list(state["history"])
        rng = state["rng"]
        self.generator.set_state(rng["batches"])
        ranks = rng.get("ranks") or ([{"cpu": rng["cpu"]}] if "cpu" in rng else [])  # version 1: rank 0's CPU only
        if len(ranks) == self.dist.world_size:
            set_rng_state(ranks[self.dist.rank], self.device)
        else:  # another number of processes: no stream to take back, so re-seed each one deterministically
            torch.manual_seed(self.config.seed + 7919 * self.step + self.dist.rank)

    def save_checkpoint(self, directory: str | os.PathLike | None = None) -> Path | None:
        """Write model + tokenizer + resume state to ``directory`` (default ``config.out_dir``), atomically.

        Refuses (raising :class:`TrainingDiverged`) if any weight is NaN/inf, so a bad step can never
        overwrite the last good checkpoint. Under torchrun only rank 0 writes, and the others wait for it.
        """
        from .checkpoint import save_checkpoint

        directory = Path(directory or self.config.out_dir)
        for p in self.model.parameters():  # every process checks, so all of them stop together
            if not bool(torch.isfinite(p).all()):
                self._diverged("some weights are NaN or infinite", self.config.lr_at(max(self.step - 1, 0)))
        state = self.state_dict()  # every process takes part (random states are gathered)
        if self.dist.is_main:
            metadata = {"training": {"step": self.step, "val_loss": self.history.final_val_loss}}
            save_checkpoint(directory, self.model, tokenizer=self.tokenizer, state=state, metadata=metadata)
        barrier(self.dist)
        self.last_checkpoint, self.last_checkpoint_step = directory, self.step
        return directory

    @classmethod
    def resume(
        cls,
        checkpoint_dir: str | os.PathLike,
        train_data: torch.Tensor,
        val_data: torch.Tensor | None = None,
        callbacks: Sequence[Callback] = (),
        tokenizer: Any = None,
        **overrides: Any,
    ) -> Trainer:
        """A trainer that continues from a checkpoint exactly where it stopped.

        ``overrides`` change config fields (e.g. ``max_iters=4000`` to train longer); checkpoints keep going
        to ``checkpoint_dir`` unless ``out_dir`` is overridden. The tokenizer saved there is reused.
        """
        from .checkpoint import load_checkpoint, load_train_state, recover

        dist = init_distributed(overrides.get("device"))
        if dist.is_main:  # one process repairs a save that a crash interrupted; the others wait, then read
            recover(checkpoint_dir)
        barrier(dist)
        state = load_train_state(checkpoint_dir)
        _check_resume_state(state, where=f"{checkpoint_dir}: ")
        try:
            saved = TrainConfig.from_dict(state["config"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"{checkpoint_dir}: the saved training settings are not valid ({err}); resume from a checkpoint "
                "that Trainer.save_checkpoint wrote, or start a new run"
            ) from err
        config = saved.replace(**{"out_dir": str(checkpoint_dir), **overrides})
        model, saved_tokenizer = load_checkpoint(checkpoint_dir)
        trainer = cls(model, train_data, val_data, config, callbacks, tokenizer or saved_tokenizer)
        trainer.load_state_dict(state)
        trainer.last_checkpoint, trainer.last_checkpoint_step = Path(checkpoint_dir), trainer.step
        return trainer


_RESUME_PARTS = {"step": int, "config": dict, "optimizer": dict, "rng": dict, "history": list}


def _check_resume_state(state: Any, where: str = "") -> None:
    """Name what a resume state lacks, instead of a KeyError deep inside the restore."""
    hint = "resume from a checkpoint that Trainer.save_checkpoint wrote, or start a new run"
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}the resume state must be a dict, got {type(state).__name__}; {hint}")
    missing = [part for part in _RESUME_PARTS if part not in state]
    if missing:
        raise CheckpointError(f"{where}the resume state has no {', '.join(map(repr, missing))}; {hint}")
    for part, kind in _RESUME_PARTS.items():
        value = state[part]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            wanted = "a step number >= 0" if kind is int else f"a {kind.__name__}"
            raise CheckpointError(f"{where}the resume state's {part!r} should be {wanted}, got {value!r:.60}; {hint}")
    if "batches" not in state["rng"]:
        raise CheckpointError(f"{where}the resume state's 'rng' has no 'batches' (the batch sampler's state); {hint}")


def train(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    tokenizer: Any = None,
    **config_fields: Any,
) -> History:
    """Train ``model`` in one call: ``train(model, train_ids, val_ids, max_iters=500, learning_rate=1e-3)``.

    Keyword arguments are :class:`TrainConfig` fields.
    """
    config = TrainConfig(**config_fields)
    return Trainer(model, train_data, val_data, config, callbacks, tokenizer).fit()
