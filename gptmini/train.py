"""Pretraining with the language-modelling objective L1: predict every next token of the corpus.

One :class:`Trainer` serves a notebook on a laptop CPU, a Colab T4 and several GPUs under ``torchrun``:

* AdamW, linear warm-up then cosine decay, gradient clipping and accumulation (:func:`lr_at`,
  :func:`param_groups`);
* mixed precision on CUDA (bf16 where the GPU has it, fp16 + a gradient scaler otherwise), optional
  ``torch.compile``; the model's SDPA attention is used as is;
* periodic evaluation, a history that plots in one call, callbacks for live plots, a tqdm bar;
* crash-safe checkpoints (:mod:`gptmini.checkpoint`) and exact resume: the batch sampler, the dropout RNG
  and the optimizer moments are all saved, so N steps + resume + N steps equals 2N steps;
* a NaN/inf loss stops training with :class:`TrainingDiverged`, the last good checkpoint untouched;
* DistributedDataParallel when started by ``torchrun`` (gloo on CPU, nccl on GPU).

Quick use in a notebook::

    history = train(model, train_ids, val_ids, preset="shakespeare-char", max_iters=500)
    history.plot()
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
from .device import autocast_dtype, get_device

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
    device: str | None = None  # None: cuda > mps > cpu
    amp: Amp = "auto"  # auto: bf16/fp16 autocast on CUDA, full precision elsewhere
    compile: bool = False
    out_dir: str | None = None  # None: no checkpoints
    checkpoint_interval: int | None = None  # None: at every evaluation; always at the end when out_dir is set
    seed: int = 1337
    progress: bool = True  # tqdm bar and evaluation lines

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON gives lists back
        problems = []
        for key in ("batch_size", "grad_accum_steps", "eval_iters", "log_interval"):
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

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The recipe that goes with a classroom model preset, e.g. ``TrainConfig.preset("shakespeare-char")``."""
        if name not in TRAIN_PRESETS:
            raise ValueError(f"Unknown training preset {name!r}. Valid presets: {', '.join(TRAIN_PRESETS)}")
        return cls(**{**TRAIN_PRESETS[name], **overrides})


#: Recipes for the classroom presets of :class:`gptmini.GPTConfig` (same names).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # A CPU in minutes: 2000 steps of 12 x 64 characters, as in the well-known CPU recipe for a 4 x 128 model.
    "shakespeare-char": dict(
        batch_size=12, max_iters=2000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, weight_decay=0.1,
        betas=(0.9, 0.99), eval_interval=250, eval_iters=20, log_interval=10,
    ),
    # Notebook 05's GPT-1 (post-LN); `python -m gptmini train --preset gpt1-shakespeare` writes the checkpoint
    # notebooks 00, 03, 04, 07, 09 and 10 look for, so a teacher can prepare it before class.
    "gpt1-shakespeare": dict(
        batch_size=12, max_iters=2000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, weight_decay=0.1,
        betas=(0.9, 0.99), eval_interval=250, eval_iters=20, log_interval=10,
    ),
    # BPE tokens carry ~3-4 characters each, so fewer steps of 128-token windows see as much text.
    "shakespeare-bpe": dict(
        batch_size=12, max_iters=1500, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, weight_decay=0.1,
        betas=(0.9, 0.99), eval_interval=250, eval_iters=20, log_interval=10,
    ),
    # Tests and GPTMINI_MODE=fast: seconds.
    "tiny": dict(
        batch_size=8, max_iters=100, learning_rate=3e-3, min_lr=3e-4, warmup_iters=10, weight_decay=0.1,
        betas=(0.9, 0.99), eval_interval=50, eval_iters=5, log_interval=10,
    ),
}


# ================================================================ optimisation pieces
def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, cosine decay, then flat at min_lr.

    Warm-up matters most for post-LN models (GPT-1), whose early gradients are large; GPT-1 warmed up
    linearly over 2,000 updates and then annealed with a cosine.
    """
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / config.warmup_iters
    if step >= config.decay_iters:
        return config.min_lr
    progress = (step - config.warmup_iters) / max(1, config.decay_iters - config.warmup_iters)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + cosine * (config.learning_rate - config.min_lr)


def param_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict[str, Any]], list[str]]:
    """AdamW groups: decay every matrix (>= 2-D), leave biases and LayerNorm gains alone.

    This is GPT-1's rule ("L2 on all non bias or gain weights"): the decayed weights are the Linear
    matrices and the token/position tables (the token table is also the tied output matrix). Biases and
    LayerNorm gains only shift or scale a feature; pulling them toward 0 would shrink signals rather than
    simplify what the model has learned, and they are too few to overfit. Returns (groups, parameter names
    in the optimizer's order), the names being what the checkpoint stores optimizer state under.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # a tied weight is listed once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append((name, p))
    groups = [
        {"params": [p for _, p in decay], "weight_decay": weight_decay},
        {"params": [p for _, p in no_decay], "weight_decay": 0.0},
    ]
    return groups, [n for n, _ in decay] + [n for n, _ in no_decay]


def precision(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full fp32), with a clear error if impossible."""
    if amp == "off":
        return None
    if amp == "auto":
        return autocast_dtype(device)
    if amp == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("This GPU has no bf16 (e.g. Colab's T4): use amp='fp16' or amp='auto'")
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp='bf16' is supported on cuda and cpu, not {device.type}; use amp='off'")
        return torch.bfloat16
    if device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA GPU (it relies on a gradient scaler); on {device.type} use 'off'")
    return torch.float16


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite; training stopped before saving anything bad.

    ``step`` is the step where it was seen, ``checkpoint`` the last good checkpoint (or None), ``history``
    everything logged until then.
    """

    def __init__(self, message: str, step: int, checkpoint: Path | None, history: History) -> None:
        super().__init__(message)
        self.step, self.checkpoint, self.history = step, checkpoint, history


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

    def plot(self, ax=None, title: str | None = None):
        """Loss against step: per-batch training loss (thin), evaluated train and validation loss (markers)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        train = self.of_kind("train")
        evals = self.of_kind("eval")
        if train:
            steps, losses = [r["step"] for r in train], [r["train_loss"] for r in train]
            ax.plot(steps, losses, lw=1, alpha=0.5, label="train (batches)")
        if evals:
            ax.plot([r["step"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (eval)")
            val = [r for r in evals if r["val_loss"] is not None]
            if val:
                ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "s-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss (nats/token)")
        if title:
            ax.set_title(title)
        if train or evals:
            ax.legend()
        ax.grid(alpha=0.3)
        return ax


# ================================================================ processes (torchrun)
@dataclass
class Distributed:
    """Where this process stands: rank, number of processes, and its local GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> Distributed:
    """Join the process group when started by ``torchrun`` (it sets WORLD_SIZE, RANK, LOCAL_RANK); else 1 process.

    The backend follows the device: nccl for CUDA GPUs, gloo for CPU processes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    info = Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    return info


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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
    if len(data) < block_size + 2:
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

    >>> trainer = Trainer(model, train_ids, val_ids, TrainConfig.preset("shakespeare-char"))
    >>> history = trainer.fit()

    ``callbacks`` are called as ``callback(record)`` after each train log and each evaluation (see
    :class:`History`). ``tokenizer``, if given, is saved with each checkpoint. ``step`` counts the
    optimizer steps done so far; ``fit()`` runs until ``config.max_iters``.
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
        self.block_size = config.block_size or model.config.block_size
        if self.block_size > model.config.block_size:
            raise ValueError(
                f"block_size {self.block_size} is longer than the model's context ({model.config.block_size})"
            )
        vocab = model.config.vocab_size
        self.train_data = _as_tokens(train_data, "train_data", vocab, self.block_size)
        self.val_data = _as_tokens(val_data, "val_data", vocab, self.block_size)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.callbacks = list(callbacks)
        self.history = History()
        self.step = 0
        self.last_checkpoint: Path | None = None  # the last good checkpoint written (or resumed from)
        self.last_checkpoint_step: int | None = None
        self.amp_dtype = precision(config.amp, self.device)

        groups, self._param_names = param_groups(self.model, config.weight_decay)
        extra = {"fused": True} if self.device.type == "cuda" else {}
        self.optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas, **extra)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        # The batch sampler has its own generator, the same on every process (each keeps its share of the
        # micro-batches), so the data order depends only on the seed. Dropout uses torch's global RNG.
        self.generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed + self.dist.rank)

        self.forward_model = torch.compile(self.model) if config.compile else self.model
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

    def _mean_over_processes(self, value: torch.Tensor) -> torch.Tensor:
        if self.dist.enabled:
            import torch.distributed as dist

            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)  # gloo has no AVG
            value /= self.dist.world_size
        return value

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
        was_training = self.model.training
        self.model.eval()
        out: dict[str, float | None] = {}
        try:
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
                out[split] = float(self._mean_over_processes(total) * self.dist.world_size / eval_iters)
        finally:
            self.model.train(was_training)
        return out

    # ------------------------------------------------------------ one optimizer step
    def train_step(self) -> tuple[float, float]:
        """One optimizer step (all its micro-batches); returns (loss averaged over every process, lr)."""
        lr = lr_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        micro = self.config.grad_accum_steps // self.dist.world_size
        total = torch.zeros((), device=self.device)
        batches = list(self._my_batches(self.train_data, self.config.grad_accum_steps, self.generator))
        for i, (x, y) in enumerate(batches):
            last = i == micro - 1
            sync = contextlib.nullcontext() if last or not self.dist.enabled else self.train_model.no_sync()
            with sync:
                with self._autocast():
                    _, loss = self.train_model(x, y)
                total += loss.detach().float()
                self.scaler.scale(loss / micro).backward()
        mean_loss = float(self._mean_over_processes(total / micro))  # the same number on every process
        if not math.isfinite(mean_loss):  # stop before the bad gradients touch the weights
            self.optimizer.zero_grad(set_to_none=True)
            return mean_loss, lr
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return mean_loss, lr

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
                loss, lr = self.train_step()
                step_time += time.perf_counter() - started
                if not math.isfinite(loss):
                    self._diverged(f"the training loss is {loss} (the weights were left as they were)", lr, 1)
                losses.append(loss)
                bar.update(1)
                last = self.step == config.max_iters
                if self.step % config.log_interval == 0 or last or self.step == 1:
                    record = dict(
                        kind="train", step=self.step, train_loss=sum(losses) / len(losses), val_loss=None, lr=lr,
                        tokens_per_sec=len(losses) * self.tokens_per_step / max(step_time, 1e-9),
                    )
                    self._emit(record)
                    bar.set_postfix(loss=f"{record['train_loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
                    losses, step_time = [], 0.0
                if config.eval_interval and (self.step % config.eval_interval == 0 or last):
                    self._evaluate(bar)
                if config.out_dir and config.save_every and (self.step % config.save_every == 0 or last):
                    self.save_checkpoint()
                elif config.out_dir and last:
                    self.save_checkpoint()
        finally:
            bar.close()
        return self.history

    def _evaluate(self, bar) -> dict[str, float | None]:
        losses = self.estimate_loss()
        record = dict(
            kind="eval", step=self.step, train_loss=losses["train"], val_loss=losses["val"],
            lr=lr_at(max(self.step - 1, 0), self.config), tokens_per_sec=None,
        )
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

    # ------------------------------------------------------------ checkpoints and resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as nested dicts of numbers, strings and tensors (no pickle)."""
        optimizer = self.optimizer.state_dict()
        moments = {self._param_names[i]: dict(s) for i, s in optimizer["state"].items()}
        rng = {"cpu": torch.get_rng_state(), "batches": self.generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = list(torch.cuda.get_rng_state_all())
        return {
            "version": 1,
            "step": self.step,
            "config": self.config.to_dict(),
            "tokens_per_step": self.tokens_per_step,
            "world_size": self.dist.world_size,
            "optimizer": moments,
            "scaler": dict(self.scaler.state_dict()),  # plain numbers; empty when fp16 is not in use
            "rng": rng,
            "history": self.history.to_list(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the model weights are loaded separately)."""
        names = {name: i for i, name in enumerate(self._param_names)}
        missing = sorted(set(state["optimizer"]) - set(names))
        if missing:
            raise ValueError(f"optimizer state for parameters the model does not have: {missing[:5]}")
        current = self.optimizer.state_dict()
        current["state"] = {names[n]: s for n, s in state["optimizer"].items()}
        self.optimizer.load_state_dict(current)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = History.from_list(state["history"])
        self.generator.set_state(state["rng"]["batches"])
        if state.get("world_size", 1) == self.dist.world_size == 1:
            torch.set_rng_state(state["rng"]["cpu"])
        else:  # dropout streams are per process; only rank 0's was saved, so re-seed deterministically
            torch.manual_seed(self.config.seed + 7919 * self.step + self.dist.rank)
        cuda = state["rng"].get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def save_checkpoint(self, directory: str | os.PathLike | None = None) -> Path | None:
        """Write model + tokenizer + resume state to ``directory`` (default ``config.out_dir``), atomically.

        Refuses (raising :class:`TrainingDiverged`) if any weight is NaN/inf, so a bad step can never
        overwrite the last good checkpoint. Under torchrun only rank 0 writes; returns the folder.
        """
        from .checkpoint import save_checkpoint

        directory = Path(directory or self.config.out_dir)
        for p in self.model.parameters():  # every process checks, so all of them stop together
            if not bool(torch.isfinite(p).all()):
                self._diverged("some weights are NaN or infinite", lr_at(max(self.step - 1, 0), self.config))
        if self.dist.is_main:
            metadata = {"training": {"step": self.step, "val_loss": self.history.final_val_loss}}
            save_checkpoint(directory, self.model, tokenizer=self.tokenizer, state=self.state_dict(), metadata=metadata)
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
        from .checkpoint import load_checkpoint, load_train_state

        state = load_train_state(checkpoint_dir)
        config = TrainConfig.from_dict(state["config"]).replace(**{"out_dir": str(checkpoint_dir), **overrides})
        model, saved_tokenizer = load_checkpoint(checkpoint_dir)
        trainer = cls(model, train_data, val_data, config, callbacks, tokenizer or saved_tokenizer)
        trainer.load_state_dict(state)
        trainer.last_checkpoint, trainer.last_checkpoint_step = Path(checkpoint_dir), trainer.step
        return trainer


def train(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor | None = None,
    preset: str | None = None,
    callbacks: Sequence[Callback] = (),
    tokenizer: Any = None,
    **config_fields: Any,
) -> History:
    """Train ``model`` in one call: ``train(model, train_ids, val_ids, max_iters=500, learning_rate=1e-3)``.

    ``preset`` starts from a named recipe (:data:`TRAIN_PRESETS`); keyword arguments are
    :class:`TrainConfig` fields.
    """
    config = TrainConfig.preset(preset, **config_fields) if preset else TrainConfig(**config_fields)
    return Trainer(model, train_data, val_data, config, callbacks, tokenizer).fit()
