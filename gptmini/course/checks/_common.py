"""Small helpers shared by the checks of several notebooks (not checks themselves)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ._report import CheckResult, failed


def first(value: Any) -> Any:
    """Modules often return (output, extras); the checks compare the first item."""
    return value[0] if isinstance(value, (tuple, list)) else value


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def close(a: Any, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and a.shape == b.shape
        and bool(torch.allclose(a.detach().double(), b.double(), atol=atol, rtol=1e-4))
    )


def load_state(what: str, module: nn.Module, state: dict[str, torch.Tensor]) -> CheckResult | None:
    """Copy ``state`` into ``module``; a name or shape mismatch becomes a failing result naming the keys."""
    own = module.state_dict()
    missing = [key for key in state if key not in own]
    unexpected = [key for key in own if key not in state]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}")
        return failed(
            what,
            "has different parameter names from gptmini's: " + "; ".join(parts),
            hint=f"name the layers like gptmini so weights can be copied: {sorted(state)[:8]}",
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            return failed(what, f"parameter {key!r} has shape {tuple(own[key].shape)}, expected {tuple(value.shape)}")
    module.load_state_dict(state)
    return None
