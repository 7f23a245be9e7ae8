"""gptmini: build GPT-1, then GPT-2, step by step."""

from .config import GPTConfig
from .device import autocast_dtype, get_device
from .model import GPT
from .pretrained import CheckpointError, DownloadError

__all__ = ["GPT", "GPTConfig", "CheckpointError", "DownloadError", "autocast_dtype", "get_device"]
__version__ = "0.1.0"
