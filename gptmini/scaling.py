"""Scaling laws in miniature: validation loss on fixed windows, and a power law fitted in log-log space.

Kaplan et al. (2020) and GPT-3's Figure 3.1 found that loss falls as a power law of model size and of
compute, L ≈ a · x^(-α): a straight line on log-log axes, log10 L = log10 a - α · log10 x. Fitting that line
by least squares in log space gives the exponent α and, from the scatter of the points about the line, an
interval for it (Student's t, as for any least-squares slope).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Student's t at 97.5 % (two-sided 95 %) for 1..30 degrees of freedom; above 30 the normal's 1.96 is close.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_95(dof: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom (1.96 beyond 30)."""
    if dof < 1:
        raise ValueError(f"an interval needs at least 1 degree of freedom (3 points for a line), got {dof}")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def loglog_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (log10 x, log10 y)."""
    lx, ly = _logs(x, y)
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("all x are equal: a slope needs at least two different sizes")
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx
    return slope, my - slope * mx


def _logs(x: Sequence[float], y: Sequence[float]) -> tuple[list[float], list[float]]:
    x, y = [float(v) for v in x], [float(v) for v in y]
    if len(x) != len(y):
        raise ValueError(f"{len(x)} x values but {len(y)} y values; give them in pairs")
    if len(x) < 2:
        raise ValueError(f"a line needs at least 2 points, got {len(x)}")
    if min(x) <= 0 or min(y) <= 0:
        raise ValueError("a power law is fitted to logarithms: every x and y must be positive")
    return [math.log10(v) for v in x], [math.log10(v) for v in y]


@dataclass(frozen=True)
class PowerLaw:
    """y ≈ coefficient · x^(-exponent); ``low`` … ``high``: a 95 % interval for the exponent."""

    exponent: float
    coefficient: float
    low: float
    high: float
    n_points: int

    def __call__(self, x: float) -> float:
        """The fitted y at ``x`` (an extrapolation outside the fitted range)."""
        return self.coefficient * float(x) ** (-self.exponent)

    def __str__(self) -> str:
        return (
            f"y ≈ {self.coefficient:.3g} · x^(-{self.exponent:.3f}), exponent 95 % interval "
            f"{self.low:.3f} … {self.high:.3f} ({self.n_points} points)"
        )


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Fit y ≈ a · x^(-α) as a line in log10 space; the interval is slope ± t · its standard error.

    With n points the line has n - 2 degrees of freedom, so 5 points give a wide interval (t = 3.18): the
    honest width of an exponent read off five models.
    """
    slope, intercept = loglog_line(x, y)
    lx, ly = _logs(x, y)
    n = len(lx)
    if n < 3:
        raise ValueError(f"an interval for the exponent needs at least 3 points, got {n}")
    mx = sum(lx) / n
    residual = sum((b - (intercept + slope * a)) ** 2 for a, b in zip(lx, ly, strict=True))
    se = math.sqrt(residual / (n - 2) / sum((a - mx) ** 2 for a in lx))
    half = t_quantile_95(n - 2) * se
    return PowerLaw(-slope, 10**intercept, -slope - half, -slope + half, n)


@torch.no_grad()
def window_loss(model: torch.nn.Module, ids: torch.Tensor, n_windows: int = 64, batch_size: int = 16) -> float:
    """Mean cross-entropy (nats per token) on ``n_windows`` evenly spaced windows of ``ids``.

    The same windows for every model that reads the same tokens, so differences between models are the
    models', not the sample's (a random batch would add its own noise to a curve of five points).
    """
    block = model.config.block_size
    if len(ids) < block + 1:
        raise ValueError(f"{len(ids)} tokens are fewer than one window of {block + 1}; give more validation text")
    if n_windows < 1:
        raise ValueError(f"n_windows must be at least 1, got {n_windows}")
    last = len(ids) - block - 1
    starts = [round(i * last / max(1, n_windows - 1)) for i in range(n_windows)]
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for i in range(0, n_windows, batch_size):
        rows = torch.stack([ids[s : s + block + 1] for s in starts[i : i + batch_size]]).to(device)
        logits, _ = model(rows[:, :-1])
        logits = logits if logits.dtype == torch.float64 else logits.float()  # fp16 / bf16 summed in fp32
        loss = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), reduction="sum")
        total, count = total + loss.item(), count + rows[:, 1:].numel()
    model.train(was_training)
    return total / count
