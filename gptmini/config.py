"""Model hyper-parameters and the named presets (GPT-1, GPT-2 sizes, classroom models)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .fields import is_int, is_real

Norm = Literal["post", "pre"]
Gelu = Literal["tanh", "exact"]


@dataclass
class GPTConfig:
    """Everything that fixes the shape of a GPT.

    GPT-1 and GPT-2 differ only in a few of these fields (``norm``, the vocabulary and context sizes and the
    residual init), which is why one model class serves both families.
    """

    vocab_size: int = 50257
    block_size: int = 1024  # the context window: the longest sequence the position table covers
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_inner: int | None = None  # width of the MLP; None means 4 * n_embd, as in both papers
    dropout: float = 0.1  # one rate for embedding, attention-weight and residual dropout
    norm: Norm = "pre"  # "post": GPT-1 (LayerNorm after each residual add); "pre": GPT-2 (+ final LayerNorm)
    bias: bool = True
    layer_norm_eps: float = 1e-5
    gelu: Gelu = "tanh"  # the tanh approximation is what the OpenAI code used
    scaled_residual_init: bool | None = None  # None: follow the norm (GPT-2 scales, GPT-1 does not)
    attn_only: bool = False  # True: blocks without MLP (and its LayerNorm), as in the induction-head studies
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        problems = []
        for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, key)
            if not is_int(value) or value <= 0:
                problems.append(f"{key} must be a positive integer, got {value!r}")
        if self.n_inner is not None and (not is_int(self.n_inner) or self.n_inner <= 0):
            problems.append(f"n_inner (the MLP width) must be a positive integer or None, got {self.n_inner!r}")
        if not problems and self.n_embd % self.n_head:
            problems.append(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so each head gets "
                f"an equal slice; try n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )
        if self.norm not in ("post", "pre"):
            problems.append(f"norm must be 'post' (GPT-1) or 'pre' (GPT-2), got {self.norm!r}")
        if self.gelu not in ("tanh", "exact"):
            problems.append(f"gelu must be 'tanh' or 'exact', got {self.gelu!r}")
        if not is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if not is_real(self.layer_norm_eps) or not 0.0 < self.layer_norm_eps < math.inf:
            problems.append(f"layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")
        if not isinstance(self.bias, bool):
            problems.append(f"bias must be True or False, got {self.bias!r}")
        if not isinstance(self.attn_only, bool):
            problems.append(f"attn_only must be True or False, got {self.attn_only!r}")
        if self.scaled_residual_init is not None and not isinstance(self.scaled_residual_init, bool):
            problems.append(f"scaled_residual_init must be True, False or None, got {self.scaled_residual_init!r}")
        if not isinstance(self.name, str):
            problems.append(f"name must be a string, got {self.name!r}")
        if problems:
            raise ValueError("Invalid GPTConfig: " + "; ".join(problems))

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_size(self) -> int:
        return self.n_inner or 4 * self.n_embd

    @property
    def scales_residual_init(self) -> bool:
        if self.scaled_residual_init is None:
            return self.norm == "pre"
        return self.scaled_residual_init

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        if not isinstance(data, dict):
            raise ValueError(f"a GPTConfig is built from a dict of fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown GPTConfig fields {unknown}; valid fields are {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named configuration, e.g. ``GPTConfig.preset("gpt2")``; keyword arguments override fields."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}. Valid presets: {', '.join(PRESETS)}")
        values = {**PRESETS[name][1], "name": name, **overrides}
        return cls(**values)

    @staticmethod
    def presets() -> dict[str, str]:
        """Preset names with a one-line description each."""
        return {name: desc for name, (desc, _) in PRESETS.items()}


_GPT2 = dict(vocab_size=50257, block_size=1024, norm="pre", dropout=0.1)

# name -> (what it is, fields)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt1": (
        "GPT-1 (2018): 12 layers x 768, 12 heads, 512 context, 40,478 BPE tokens, post-LN (117M params)",
        dict(vocab_size=40478, block_size=512, n_layer=12, n_head=12, n_embd=768, norm="post", dropout=0.1),
    ),
    "gpt2": ("GPT-2 small (124M): 12 layers x 768, 12 heads", dict(_GPT2, n_layer=12, n_head=12, n_embd=768)),
    "gpt2-medium": ("GPT-2 medium (350M): 24 x 1024, 16 heads", dict(_GPT2, n_layer=24, n_head=16, n_embd=1024)),
    "gpt2-large": ("GPT-2 large (774M): 36 x 1280, 20 heads", dict(_GPT2, n_layer=36, n_head=20, n_embd=1280)),
    "gpt2-xl": ("GPT-2 XL (1558M): 48 x 1600, 25 heads", dict(_GPT2, n_layer=48, n_head=25, n_embd=1600)),
    "shakespeare-char": (
        "classroom: characters of Shakespeare, 4 layers x 128, 64 context (trains on a CPU in minutes)",
        dict(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, norm="pre"),
    ),
    "gpt1-shakespeare": (
        "classroom GPT-1: the shakespeare-char model with post-LN, as notebook 05 trains it",
        dict(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, norm="post"),
    ),
    "shakespeare-bpe": (
        "classroom: a 1,024-token BPE of Shakespeare, 4 layers x 192, 128 context",
        dict(vocab_size=1024, block_size=128, n_layer=4, n_head=6, n_embd=192, dropout=0.0, norm="pre"),
    ),
    "tiny": (
        "tests and fast mode: 2 layers x 32, 32 context",
        dict(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0, norm="pre"),
    ),
}
