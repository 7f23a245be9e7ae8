"""gptmini: build GPT-1, then GPT-2, step by step."""

from .config import GPTConfig
from .data import encode_corpus, get_batch, shakespeare, shakespeare_plays, train_val_split
from .device import autocast_dtype, get_device
from .model import GPT
from .pretrained import CheckpointError, DownloadError
from .tokenizers import BPETokenizer, CharTokenizer, GPT1Tokenizer, GPT2Tokenizer, load_tokenizer
from .train import History, TrainConfig, Trainer, TrainingDiverged, train

__all__ = [
    "GPT",
    "GPTConfig",
    "CheckpointError",
    "DownloadError",
    "autocast_dtype",
    "get_device",
    "BPETokenizer",
    "CharTokenizer",
    "GPT1Tokenizer",
    "GPT2Tokenizer",
    "load_tokenizer",
    "encode_corpus",
    "get_batch",
    "shakespeare",
    "shakespeare_plays",
    "train_val_split",
    "History",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "train",
]
__version__ = "0.1.0"
