"""Pick where to run: a CUDA GPU, Apple's MPS, or the CPU, and the matching low-precision type."""

from __future__ import annotations

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """cuda > mps > cpu, unless ``prefer`` names one (an unavailable choice is an error, not a silent fallback)."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use 'cpu' or leave it unset")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple's MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it (Ampere and later), fp16 on older ones (Colab's T4), None (fp32) elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device: str | torch.device) -> str:
    """A one-line description for a notebook's first cell."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda ({name}, autocast {autocast_dtype(device)})"
    return device.type
