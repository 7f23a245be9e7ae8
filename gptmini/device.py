"""Pick where to run: a CUDA GPU, Apple's MPS, or the CPU, and the matching low-precision type."""

from __future__ import annotations

import torch


def get_device(prefer: str | torch.device | None = None) -> torch.device:
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


def has_native_bf16(device: str | torch.device) -> bool:
    """Whether this CUDA GPU computes in bf16 natively: compute capability 8.0 or later (Ampere, Hopper, ...).

    ``torch.cuda.is_bf16_supported()`` also says True on a T4 or V100, where bf16 is emulated and slow.
    """
    major, _ = torch.cuda.get_device_capability(torch.device(device))
    return major >= 8


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it (Ampere and later), fp16 on older ones (Colab's T4), None (fp32) elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if has_native_bf16(device) else torch.float16


def precision(amp: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto", "bf16", "fp16", "off") on ``device``; None means fp32.

    fp16 needs a gradient scaler (its small range underflows gradients), which only CUDA has here.
    """
    device = torch.device(device)
    if amp == "off":
        return None
    if amp == "auto":
        return autocast_dtype(device)
    if amp == "bf16":
        if device.type == "cuda" and not has_native_bf16(device):
            raise ValueError("This GPU has no native bf16 (e.g. Colab's T4): use amp='fp16' or amp='auto'")
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp='bf16' is supported on cuda and cpu, not {device.type}; use amp='off'")
        return torch.bfloat16
    if amp != "fp16":
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")
    if device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA GPU (it relies on a gradient scaler); on {device.type} use 'off'")
    return torch.float16


def precision_name(dtype: torch.dtype | None) -> str:
    """How a printout names the precision: bf16 autocast, fp16 autocast + gradient scaler, or fp32."""
    if dtype is torch.bfloat16:
        return "bf16 autocast"
    if dtype is torch.float16:
        return "fp16 autocast + gradient scaler"
    return "fp32"


def describe(device: str | torch.device) -> str:
    """A one-line description for a notebook's first cell."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda ({name}, {precision_name(autocast_dtype(device))})"
    return f"{device.type} ({precision_name(autocast_dtype(device))})"
