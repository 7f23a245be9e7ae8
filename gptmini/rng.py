"""Random-number states for exact resume: a learner can skip this.

Dropout draws from torch's global generators: the CPU one, and the current GPU's (CUDA) or Apple's (MPS)
when the model runs there. Each process under ``torchrun`` has its own streams, so a checkpoint keeps
one state per process, and a resumed process takes back its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run the block, then put back every global generator (CPU, every CUDA GPU, MPS) as it was.

    ``torch.manual_seed`` inside the block reseeds all of them; ``torch.random.fork_rng(devices=[])`` would
    restore only the CPU's and leave the caller's GPU stream reseeded for good.
    """
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    mps = torch.mps.get_rng_state() if torch.backends.mps.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        if mps is not None:
            torch.mps.set_rng_state(mps)
