"""One GPT for both families: GPT-1 (post-LN) and GPT-2 (pre-LN + final LayerNorm).

Module names follow the OpenAI / Hugging Face checkpoints (``wte``, ``wpe``, ``h``, ``ln_1``,
``attn.c_attn``, ``attn.c_proj``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_f``) so that loading the
real weights is a copy of keys plus a transpose (see ``pretrained.py``).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import pretrained
from .config import GPTConfig
from .generate import generate, generate_stream
from .kvcache import KVCache


def causal_mask(t_query: int, t_key: int, device: torch.device | None = None) -> torch.Tensor:
    """True where a query may look: query i (the last ``t_query`` of ``t_key`` positions) sees keys <= i."""
    offset = t_key - t_query
    return torch.ones(t_query, t_key, dtype=torch.bool, device=device).tril(diagonal=offset)


class HookPoint(nn.Identity):
    """A named place in the forward pass where a forward hook can read a value, or replace it.

    It does nothing by itself. :mod:`gptmini.inspect` attaches hooks here (the way
    TransformerLens does), so no layer has to return extra values for the few callers that look inside.
    """

    def has_hooks(self) -> bool:
        return bool(self._forward_hooks or self._forward_pre_hooks)


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention: every position mixes the values of itself and earlier positions."""

    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.layer_idx = layer_idx  # which slot of a KVCache is this layer's
        self.n_head = config.n_head
        self.head_size = config.head_size
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout
        self.use_sdpa = True  # False: the explicit path the notebooks teach (same numbers, slower)
        self.hook_pattern = HookPoint()  # attention weights (B, nh, T, T_total); a hook here forces the explicit path
        self.hook_z = HookPoint()  # each head's output (B, nh, T, hs), before c_proj mixes the heads

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (self._split_heads(part) for part in self.c_attn(x).split(c, dim=2))
        past = 0
        if cache is not None:  # the KV cache: keys and values of earlier positions are reused, not recomputed
            past = cache.length
            k, v = cache.update(self.layer_idx, k, v)
        if self.use_sdpa and not self.hook_pattern.has_hooks():
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=causal_mask(t, k.size(2), x.device) if past and t > 1 else None,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=not past and t > 1,
            )
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_size)  # (B, nh, T, T_total)
            scores = scores.masked_fill(~causal_mask(t, k.size(2), x.device), float("-inf"))
            weights = self.hook_pattern(F.softmax(scores, dim=-1))
            y = self.attn_dropout(weights) @ v
        y = self.hook_z(y)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # put the heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_size, bias=config.bias)
        self.act = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.c_proj = nn.Linear(config.mlp_size, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """A decoder block (no cross-attention). ``norm`` decides where the LayerNorms sit."""

    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.pre_norm = config.norm == "pre"
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.attn_only = config.attn_only  # no MLP sub-block: the block only moves information between positions
        if not self.attn_only:
            self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
            self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if self.attn_only:
            return x + self.attn(self.ln_1(x), cache) if self.pre_norm else self.ln_1(x + self.attn(x, cache))
        if self.pre_norm:  # GPT-2: x + f(LN(x)) keeps a clean residual path through the whole stack
            x = x + self.attn(self.ln_1(x), cache)
            x = x + self.mlp(self.ln_2(x))
        else:  # GPT-1: LN(x + f(x)), the original Transformer's order
            x = self.ln_1(x + self.attn(x, cache))
            x = self.ln_2(x + self.mlp(x))
        return x


class GPT(nn.Module):
    """A decoder-only Transformer language model: P(next token | previous tokens)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        parts = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embedding W_e
            wpe=nn.Embedding(config.block_size, config.n_embd),  # learned position embedding W_p
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config, i) for i in range(config.n_layer)),
        )
        if config.norm == "pre":
            parts["ln_f"] = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.transformer = nn.ModuleDict(parts)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: P(u) = softmax(h W_e^T)
        self.apply(self._init_weights)
        if config.scales_residual_init:  # GPT-2: each residual branch adds variance, so start them small
            std = 0.02 / math.sqrt(2 * config.n_layer)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    # ---------------------------------------------------------------- utilities
    @property
    def device(self) -> torch.device:
        return self.transformer.wte.weight.device

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position table (the token table is reused by lm_head)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def set_attention(self, impl: str) -> GPT:
        """Switch every layer between "sdpa" (fused kernel) and "explicit" (scores, mask, softmax)."""
        if impl not in ("sdpa", "explicit"):
            raise ValueError(f"attention implementation must be 'sdpa' or 'explicit', got {impl!r}")
        for block in self.transformer.h:
            block.attn.use_sdpa = impl == "sdpa"
        return self

    def check_input(self, idx: torch.Tensor, past_length: int = 0) -> None:
        """Fail early, with a message that says what to do, instead of an index error deep inside.

        The id range check reads values back from the device; it is skipped while training on a GPU, where it
        would stall every step (the Trainer checks its data once instead).
        """
        if not isinstance(idx, torch.Tensor):
            raise ValueError(
                f"Expected token ids as a torch.LongTensor of shape (batch, time), got {type(idx).__name__}; "
                "wrap a list with torch.tensor([ids])."
            )
        if idx.dtype not in (torch.long, torch.int, torch.int16, torch.uint8):
            raise ValueError(
                f"Token ids must be integers (torch.long, int32, int16 or uint8), got dtype {idx.dtype}; "
                "use idx.long()."
            )
        if idx.dim() != 2:
            raise ValueError(
                f"Expected token ids of shape (batch, time), got shape {tuple(idx.shape)}; "
                "for a single sequence use idx.unsqueeze(0)."
            )
        if idx.size(1) == 0:
            raise ValueError("Got an empty sequence (time dimension is 0); give at least one token.")
        t = idx.size(1) + past_length
        if t > self.config.block_size:
            raise ValueError(
                f"Sequence length {t} exceeds the model's context (block_size={self.config.block_size}); "
                f"keep the last {self.config.block_size} tokens, e.g. idx[:, -{self.config.block_size}:] "
                "(generate() crops for you)."
            )
        if torch.compiler.is_compiling():
            return  # reading values back breaks a compiled graph: inside torch.compile the range check is skipped
        if self.training and idx.device.type != "cpu":
            return  # reading min/max back stalls the GPU every step; the Trainer checks its data once, up front
        self.check_ids(idx)

    def check_ids(self, idx: torch.Tensor) -> None:
        """Every id must index a row of the token table: in [0, vocab_size)."""
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.config.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"Token id {bad} is outside the vocabulary [0, {self.config.vocab_size}); were these ids made "
                "by the tokenizer this model was trained with?"
            )

    # ---------------------------------------------------------------- forward passes
    def hidden_states(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Final hidden states (B, T, C). With a ``cache``, ``idx`` continues the positions it holds."""
        past_length = cache.length if cache is not None else 0
        self.check_input(idx, past_length)
        if idx.dtype not in (torch.long, torch.int):
            idx = idx.long()  # the embedding lookup takes int32/int64 ids only
        pos = torch.arange(past_length, past_length + idx.size(1), device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # h0 = U W_e + W_p
        for block in self.transformer.h:
            x = block(x, cache)  # h_l = transformer_block(h_{l-1})
        if cache is not None:
            cache.advance(idx.size(1))
        if "ln_f" in self.transformer:
            x = self.transformer.ln_f(x)
        return x

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, ignore_index: int = -100
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, with ``targets``, the mean next-token cross-entropy."""
        logits = self.lm_head(self.hidden_states(idx))
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {tuple(targets.shape)} must equal idx shape {tuple(idx.shape)}")
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)).float(), targets.reshape(-1).long(), ignore_index=ignore_index
            )
        return logits, loss

    def new_cache(self, batch_size: int = 1, max_length: int | None = None) -> KVCache:
        """An empty KV cache on this model's device and dtype (see :class:`gptmini.kvcache.KVCache`)."""
        weight = self.transformer.wte.weight
        return KVCache(self.config, batch_size, max_length, device=weight.device, dtype=weight.dtype)

    def resize_token_embeddings(self, vocab_size: int) -> GPT:
        """Grow the token table (e.g. for fine-tuning's special tokens); old rows stay, new rows ~ N(0, 0.02)."""
        old = self.transformer.wte
        if vocab_size < old.num_embeddings:
            raise ValueError(f"Can only grow the vocabulary ({old.num_embeddings} -> {vocab_size} would shrink it)")
        new = nn.Embedding(vocab_size, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
        nn.init.normal_(new.weight, mean=0.0, std=0.02)
        with torch.no_grad():
            new.weight[: old.num_embeddings] = old.weight
        self.transformer.wte = new
        self.lm_head = nn.Linear(old.embedding_dim, vocab_size, bias=False, device=new.weight.device)
        self.lm_head.weight = new.weight
        self.config = self.config.replace(vocab_size=vocab_size)
        return self

    # ---------------------------------------------------------------- generation
    # The functions of generate.py, called as methods: ``model.generate(idx, 100, temperature=0.8, top_k=40)``.
    # Their first parameter is the model, so Shift-Tab in Jupyter shows the real arguments and docstring.
    generate = generate
    generate_stream = generate_stream

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> GPT:
        """Load real GPT-2 / GPT-1 weights by name (``"gpt2"``, ``"openai-gpt"``, ...) or a local folder."""
        return pretrained.load_pretrained(cls, name_or_path, device=device, dtype=dtype)

    def save_pretrained(self, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` atomically; :meth:`from_pretrained` reads them back."""
        pretrained.save_pretrained(self, directory, metadata=metadata)
