"""Notebook 05 (GPT-1 pre-training): the checks of its exercises and the package's versions of them."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ...config import GPTConfig
from ...model import GPT
from ...utils import eval_mode
from ._common import load_state, seeded
from ._report import (
    NONE_MESSAGE,
    CheckResult,
    call_learner,
    combine,
    compare_tensors,
    failed,
    not_yet,
    passed,
    require_callable,
)

__all__ = ["check_gpt", "check_gpt_loss", "check_gpt1_forward", "check_lr_schedule", "check_train_step"]


def check_gpt(mine: nn.Module, config: GPTConfig) -> CheckResult:
    """Your assembled GPT against ``gptmini.GPT(config)`` with the same weights: logits, loss and weight tying.

    ``mine(idx, targets)`` must return ``(logits, loss)`` like gptmini's; its parameter names must match
    gptmini's (``transformer.wte``, ``transformer.wpe``, ``transformer.h.0…``, ``lm_head``).
    """
    if not isinstance(mine, nn.Module):
        raise TypeError(f"check_gpt expects your model (an nn.Module), got {type(mine).__name__}")
    if not isinstance(config, GPTConfig):
        raise TypeError(f"check_gpt(mine, config): config must be a GPTConfig, got {type(config).__name__}")
    cfg = config.replace(dropout=0.0)
    results = []
    head, table = getattr(mine, "lm_head", None), getattr(getattr(mine, "transformer", None), "wte", None)
    if head is None or table is None:
        return failed("your model", "needs .transformer.wte (token table) and .lm_head (output layer) like gptmini.GPT")
    if head.weight is table.weight or head.weight.data_ptr() == table.weight.data_ptr():
        results.append(passed("weight tying: lm_head.weight is transformer.wte.weight, as in gptmini"))
    else:
        results.append(
            failed(
                "weight tying",
                "is missing: lm_head.weight is a separate matrix",
                hint="self.lm_head.weight = self.transformer.wte.weight, so P(u) = softmax(h · Weᵀ)",
            )
        )
    torch.manual_seed(13)
    ref = GPT(cfg).eval()
    yours = copy.deepcopy(mine).cpu()  # the check runs on the CPU, wherever the learner put the module
    problem = load_state("your model", yours, ref.state_dict())
    if problem is not None:
        results.append(problem)
        return combine("GPT-1 assembled", results)
    t = min(cfg.block_size, 10)
    g = seeded(14)
    idx = torch.randint(cfg.vocab_size, (2, t), generator=g)
    targets = torch.randint(cfg.vocab_size, (2, t), generator=g)
    with torch.no_grad():
        logits_ref, loss_ref = ref(idx, targets)
    with eval_mode(yours), torch.no_grad():
        out, error = call_learner("your model(idx, targets)", yours, idx, targets, may_return_none=True)
    if error is not None:
        results.append(error)
        return combine("GPT-1 assembled", results)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        results.append(failed("your model(idx, targets)", "should return (logits, loss)"))
        return combine("GPT-1 assembled", results)
    logits, loss = out
    results.append(compare_tensors("the logit tensor", logits, logits_ref, atol=1e-4))
    if loss is None:
        results.append(failed("loss", "is None although targets were given"))
    else:
        results.append(compare_tensors("the loss", loss, loss_ref, atol=1e-5))
    return combine("GPT-1 assembled", results)


def _l1_slip(L1: float, model: GPT, x: torch.Tensor, y: torch.Tensor, loss: float, expected: float) -> str | None:
    """The hint naming what a wrong L1 computed instead (None when it matches or no slip fits)."""
    if math.isclose(L1, expected, rel_tol=1e-4, abs_tol=1e-2):
        return None
    if math.isclose(L1, loss, rel_tol=1e-4):
        return "that is the mean cross-entropy (the loss); L1 is the SUM of log-probabilities, = -N × loss"
    if math.isclose(L1, -expected, rel_tol=1e-4):
        return "the sign is flipped: log-probabilities are negative, so L1 is negative"
    if math.isclose(L1, -loss, rel_tol=1e-4):
        return "that is the mean log-probability; L1 sums over all B·T predicted tokens"
    x, y = x.to(model.device), y.to(model.device)
    with eval_mode(model), torch.no_grad():
        logits = model(x)[0].double()
    slips = {
        "that sums log P of the inputs x: the model at position i predicts the NEXT token, "
        "so pick the log-probabilities of the targets y": logits.log_softmax(-1).gather(-1, x.unsqueeze(-1)).sum(),
        "that sums raw logits: turn them into log-probabilities first (a log-softmax over the vocabulary)": (
            logits.gather(-1, y.unsqueeze(-1)).sum()
        ),
        "the log-softmax ran over the positions: normalise over the vocabulary, the last dimension": (
            logits.log_softmax(-2).gather(-1, y.unsqueeze(-1)).sum()
        ),
    }
    return next((h for h, v in slips.items() if math.isclose(L1, float(v), rel_tol=1e-4)), None)


def check_gpt_loss(L1: Any, model: GPT, x: torch.Tensor, y: torch.Tensor) -> CheckResult:
    """Your pretraining objective L1 = Σ log P(u_i | u_{i-k}, …, u_{i-1}) for the batch (x, y) under ``model``.

    L1 is a *sum of log-probabilities* (a negative number, to be maximised); gptmini's training loss is
    the mean negative log-likelihood, so L1 = -(number of predicted tokens) × loss.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"check_gpt_loss(L1, model, x, y): model must be a gptmini GPT, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("check_gpt_loss(L1, model, x, y): x and y must be the tensors of the batch")
    with eval_mode(model), torch.no_grad():
        _, loss = model(x.to(model.device), y.to(model.device))
    n = y.numel()
    expected = -float(loss) * n
    if L1 is None:
        return not_yet("L1", NONE_MESSAGE)
    if isinstance(L1, torch.Tensor):
        if L1.numel() != 1:
            return failed(
                "L1", f"should be one number (a sum), got a tensor of shape {tuple(L1.shape)}", hint="add .sum()"
            )
        L1 = float(L1.detach())
    if not isinstance(L1, (int, float)):
        return failed("L1", f"should be a number, got a {type(L1).__name__}")
    hint = _l1_slip(L1, model, x, y, float(loss), expected)
    return compare_tensors(
        f"L1 over {n} predicted tokens",
        torch.tensor(float(L1)),
        torch.tensor(expected),
        atol=1e-2,
        rtol=1e-4,
        hint=hint,
    )


def _quiet_forward(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> Any:
    try:
        with torch.no_grad():
            return model(idx, targets)
    except Exception:  # noqa: BLE001 - check_gpt reports it (a stub as "not yet", an error with its line)
        return None


def check_gpt1_forward(mine: nn.Module, config: Any) -> CheckResult:
    """Your GPT-1 (``MyGPT1(config)``) against ``gptmini.GPT``: :func:`check_gpt`, naming typical forward mistakes.

    Before the full comparison, the learner's forward runs on gptmini's weights; logits that match a known
    slip (no position embedding, probabilities instead of logits, a loss summed instead of averaged) get a
    line that names it.
    """
    from ...model import GPT
    from ._report import compare_tensors

    if isinstance(mine, nn.Module) and hasattr(config, "replace"):
        cfg = config.replace(dropout=0.0)
        torch.manual_seed(21)
        ref = GPT(cfg).eval()
        yours = copy.deepcopy(mine).cpu().eval()
        g = torch.Generator().manual_seed(22)
        idx = torch.randint(cfg.vocab_size, (2, min(cfg.block_size, 10)), generator=g)
        targets = torch.randint(cfg.vocab_size, idx.shape, generator=g)
        try:
            yours.load_state_dict(ref.state_dict())
        except (RuntimeError, KeyError):
            yours = None
        out = _quiet_forward(yours, idx, targets) if yours is not None else None
        if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor):
            with torch.no_grad():
                logits, loss = ref(idx, targets)
                no_pos = copy.deepcopy(ref)
                no_pos.transformer.wpe.weight.zero_()
                logits_no_pos, _ = no_pos(idx, targets)
            got = out[0].detach().float()
            close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-4)  # noqa: E731
            what = "your model's logits"
            if not close(got, logits):
                if close(got, logits_no_pos):
                    return failed(
                        what,
                        "ignore the position",
                        "h0 is the token embeddings plus the position embeddings W_p (the paper's equation 2)",
                    )
                if close(got, logits.softmax(-1)) or close(got, logits.log_softmax(-1)):
                    return failed(
                        what,
                        "are probabilities (a softmax was applied)",
                        "return the raw scores lm_head(h); cross_entropy applies the softmax itself",
                    )
            elif isinstance(out[1], torch.Tensor) and math.isclose(float(out[1]), float(loss) * targets.numel()):
                return compare_tensors(
                    "the loss", out[1], loss, hint="that is the sum over all B*T positions: take the mean"
                )
    return check_gpt(mine, config)


_SCHEDULE = dict(learning_rate=1e-3, warmup_iters=10, decay_iters=100, min_lr=1e-4)


_STEPS = list(range(0, 130))  # warm-up, decay and beyond the end of the decay


def _schedule(step: int, *, warm: str = "right", floor: str = "min_lr", kind: str = "cosine", clamp: bool = True):
    """gptmini's schedule (the defaults) or one of the typical mistakes, with the settings of the check."""
    lr, warmup, decay, low = (_SCHEDULE[k] for k in ("learning_rate", "warmup_iters", "decay_iters", "min_lr"))
    if step < warmup and warm != "none":
        return lr * (step + (1 if warm == "right" else 0)) / warmup
    if step < warmup:  # no warm-up: the full rate from step 0
        return lr
    if clamp and step >= decay:
        return low
    end = low if floor == "min_lr" else 0.0
    progress = (step - warmup) / (decay - warmup)
    remaining = 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1 - progress
    return end + remaining * (lr - end)


_SCHEDULE_MISTAKES = {
    "there is no warm-up: the rate starts at its maximum; during the warm-up it should rise linearly, "
    "from a small rate at the first step to the full one": dict(warm="none"),
    "the warm-up is off by one: step 0 gets a learning rate of 0 (an update that changes nothing); "
    "use (step + 1) / warmup_iters": dict(warm="off by one"),
    "the cosine does not end at min_lr: it goes to 0; decay from learning_rate down to the floor min_lr, "
    "not to 0": dict(floor="zero"),
    "the decay is linear, not a cosine: the share that remains follows half a cosine period, from 1 down to 0": dict(
        kind="linear"
    ),
    "after decay_iters the rate should stay at min_lr (past its end the cosine turns back up)": dict(clamp=False),
}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def check_lr_schedule(schedule: Callable[..., Any]) -> CheckResult:
    """``schedule(step, learning_rate=, warmup_iters=, decay_iters=, min_lr=)`` against :func:`gptmini.optim.get_lr`.

    Compared at every step from 0 to past the end of the decay (warm-up 10, decay until 100); a schedule
    that matches a typical mistake (no warm-up, warm-up off by one, cosine to 0 instead of min_lr, linear
    decay, not staying at min_lr) is told which.
    """
    from ...optim import get_lr

    require_callable(schedule, "schedule", "check_lr_schedule")
    what = "your learning-rate schedule"
    got = []
    for step in _STEPS:
        value, error = call_learner(what, schedule, step, **_SCHEDULE)
        if error is not None:
            return error
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return failed(what, f"should return a number (the learning rate), got a {type(value).__name__}")
        got.append(float(value))
    expected = [get_lr(s, **_SCHEDULE) for s in _STEPS]
    bad = next((i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if not _close(g, e)), None)
    if bad is None:
        return passed(f"{what} matches gptmini's get_lr at all {len(_STEPS)} steps (warm-up, cosine, the floor)")
    hint = next(
        (
            name
            for name, mistake in _SCHEDULE_MISTAKES.items()
            if all(_close(g, _schedule(s, **mistake)) for g, s in zip(got, _STEPS, strict=True))
        ),
        None,
    )
    step = _STEPS[bad]
    detail = f"differs at step {step}: got {got[bad]:.6g}, expected {expected[bad]:.6g}"
    settings = ", ".join(f"{k}={v}" for k, v in _SCHEDULE.items())
    return failed(what, f"{detail} (with {settings})", hint)


_LR, _OPTIMIZER_LR, _CLIP = 0.05, 1.0, 0.5


def _tiny_model() -> nn.Module:
    from ...config import GPTConfig
    from ...model import GPT

    torch.manual_seed(5)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0))


def _batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(6)
    out = []
    for _ in range(n):
        ids = torch.randint(11, (4, 9), generator=g)
        out.append((ids[:, :-1], ids[:, 1:]))
    return out


def _run_reference(model: nn.Module, batches, variant: str) -> list[float]:
    """gptmini's train_step (``variant`` "right") or one of the typical mistakes, on SGD; returns the losses."""
    from ...train import train_step

    opt = torch.optim.SGD(model.parameters(), lr=_OPTIMIZER_LR)
    losses = []
    for x, y in batches:
        if variant == "right":
            losses.append(train_step(model, opt, [(x, y)], lr=_LR, grad_clip=_CLIP).loss)
            continue
        if variant != "lr not applied":
            for group in opt.param_groups:
                group["lr"] = _LR
        if variant != "no zero_grad":
            opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        if variant not in ("no clipping", "clipped after step"):
            nn.utils.clip_grad_norm_(model.parameters(), _CLIP)
        opt.step()
        if variant == "clipped after step":
            nn.utils.clip_grad_norm_(model.parameters(), _CLIP)
        losses.append(float(loss.detach()))
    return losses


_STEP_MISTAKES = {
    "no zero_grad": "the gradients accumulate from one step to the next: call optimizer.zero_grad() before backward()",
    "clipped after step": "the gradients are clipped after optimizer.step(), so the update used unclipped ones: "
    "clip between backward() and step()",
    "no clipping": "the gradient norm is not clipped: torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) "
    "after backward()",
    "lr not applied": "the learning rate is not applied: set group['lr'] = lr for every group of "
    "optimizer.param_groups before step()",
}


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(p, q, rtol=1e-5, atol=1e-7) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def check_train_step(step_fn: Callable[..., Any], n_steps: int = 3) -> CheckResult:
    """``step_fn(model, optimizer, x, y, lr, grad_clip)`` -> the loss, against :func:`gptmini.train.train_step`.

    Runs the learner's step and gptmini's ``n_steps`` times from identical states (a tiny GPT, the same
    batches) and compares the weights after each run. The optimizer is plain SGD, created with a learning
    rate different from ``lr``: Adam divides by the gradient's size, which would hide a missing clip, while
    SGD shows every mistake. A step that matches a typical mistake (no ``zero_grad``, clipping after
    ``step``, no clipping, ``lr`` not applied) is told which.
    """
    require_callable(step_fn, "step_fn", "check_train_step")
    what = "your training step"
    batches = _batches(n_steps)
    base = _tiny_model()
    reference = copy.deepcopy(base)
    expected_losses = _run_reference(reference, batches, "right")
    yours = copy.deepcopy(base)
    opt = torch.optim.SGD(yours.parameters(), lr=_OPTIMIZER_LR)
    got_losses = []
    for x, y in batches:
        value, error = call_learner(what, step_fn, yours, opt, x, y, _LR, _CLIP)
        if error is not None:
            return error
        value = getattr(value, "loss", value)  # a StepResult is welcome too
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            kind = type(value).__name__
            return failed(what, f"should return the loss (a number), got a {kind}", "return loss.item()")
        got_losses.append(float(value))
    if not _same_weights(yours, reference):
        hint = None
        for variant, message in _STEP_MISTAKES.items():
            twin = copy.deepcopy(base)
            _run_reference(twin, batches, variant)
            if _same_weights(yours, twin):
                hint = message
                if variant in ("no clipping", "clipped after step"):  # the same weights; the gradients left differ
                    grads = [p.grad for p in yours.parameters() if p.grad is not None]
                    norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else 0.0
                    hint = _STEP_MISTAKES["clipped after step" if 0 < norm <= _CLIP * 1.0001 else "no clipping"]
                break
        detail = f"leaves different weights than gptmini's train_step after {n_steps} steps from the same start"
        return failed(what, detail, hint or "the order is: set lr, zero_grad, forward + loss, backward, clip, step")
    if not all(math.isclose(g, e, rel_tol=1e-5) for g, e in zip(got_losses, expected_losses, strict=True)):
        return failed(
            what,
            f"updates the weights right but returns {got_losses[0]:.6g} at the first step, expected the loss "
            f"{expected_losses[0]:.6g}",
            "return the loss of the forward pass (loss.item())",
        )
    return passed(f"{what} leaves the same weights as gptmini's train_step after {n_steps} steps")


def _gpt1_module():
    from ...model import GPT

    return GPT  # MyGPT1(config) -> gptmini's GPT: the same parameter names, (logits, loss) from (idx, targets)


def _lr_schedule():
    from ...optim import get_lr

    return get_lr  # lr_schedule(step, learning_rate=, warmup_iters=, decay_iters=, min_lr=)


def _train_step(model, optimizer, x, y, lr, grad_clip):
    from ...train import train_step

    return train_step(model, optimizer, [(x, y)], lr=lr, grad_clip=grad_clip).loss


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "MyGPT1": _gpt1_module,
    "lr_schedule": _lr_schedule,
    "train_step": lambda: _train_step,  # my_train_step(model, optimizer, x, y, lr, grad_clip) -> the loss
}
