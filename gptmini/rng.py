"""Random-number states for exact resume: a learner can skip this.

Dropout draws from torch's global generators: the CPU one, and the current GPU's (CUDA) or Apple's (MPS)
when the model runs there. Each process under ``torchrun`` has its own streams, so a checkpoint keeps
one state per process, and a resumed process takes back its own.
"""

from __future__ import annotations

import torch


def get_rng_state(device: str | torch.device) -> dict[str, torch.Tensor]:
    """This process's generator states that matter on ``device`` (CPU always; CUDA or MPS when used)."""
    device = torch.device(device)
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: str | torch.device) -> None:
    """Restore what :func:`get_rng_state` returned (a state for another kind of device is ignored)."""
    device = torch.device(device)
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"])
