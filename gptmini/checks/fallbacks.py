"""The package's version of each exercise, with the notebook's interface, for a learner who is not there yet.

In the student edition an unwritten exercise's check says "not yet" and returns a falsy result; the cell
then swaps in ``package_version(name)``, so the rest of the notebook runs on working parts::

    if not check_softmax(softmax):
        softmax = package_version("softmax")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["package_version"]


def _char_tokenizer(text: str) -> tuple[Callable[[str], list[int]], Callable[[list[int]], str]]:
    from ..tokenizers import CharTokenizer

    tok = CharTokenizer.from_text(text)
    return tok.encode, tok.decode


def _get_batch(data: torch.Tensor, batch_size: int, block_size: int):
    from ..data import get_batch

    return get_batch(data, batch_size, block_size)


def _embed(idx: torch.Tensor, We: torch.Tensor, Wp: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.embedding(idx, We) + Wp[: idx.size(1)]


def _masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    from ..model import causal_mask

    t = q.size(-2)
    scores = (q @ k.transpose(-2, -1)) / q.size(-1) ** 0.5
    weights = scores.masked_fill(~causal_mask(t, t, q.device), float("-inf")).softmax(-1)
    return weights @ v, weights


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    b, t, c = x.shape
    return x.view(b, t, n_head, c // n_head).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, n_head, t, hs = x.shape
    return x.transpose(1, 2).reshape(b, t, n_head * hs)


def _block(norm: str) -> Callable[[Any], torch.nn.Module]:
    def build(config):
        from ..model import Block

        return Block(config.replace(norm=norm))

    return build


def _attention_module(config):
    from ..model import CausalSelfAttention

    return CausalSelfAttention(config)


def _mlp(config):
    from ..model import MLP

    return MLP(config)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    from ..tokenizers.bpe import merge_pair

    return merge_pair(ids, pair, new_id)


def _train_bpe(text: str, num_merges: int):
    from ..tokenizers import BPETokenizer

    return BPETokenizer(pattern=None).train(text, vocab_size=256 + num_merges, progress=False).history


def _continuation_logprob(model, context_ids: list[int], continuation_ids: list[int]) -> float:
    from ..zeroshot import score_continuations

    return score_continuations(model, [context_ids], [continuation_ids])[0].logprob


def _entailment_input(premise_ids, hypothesis_ids, special) -> list[int]:
    from ..finetune import entailment_input

    return entailment_input(premise_ids, hypothesis_ids, special).ids


def _l3_loss(class_logits, labels, lm_loss, lam):
    from ..finetune import combined_loss

    return combined_loss(class_logits, labels, lm_loss, lam)[0]


def _classifier_probs(h: torch.Tensor, extract: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(h.size(0), device=h.device)
    return (h[rows, extract] @ w.T + b).softmax(-1)


def _choice_probs(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (h @ w.T + b).squeeze(-1).softmax(-1)


_VERSIONS: dict[str, Callable[..., Any]] = {
    "char_tokenizer": _char_tokenizer,  # called with the text: returns (encode, decode)
    "get_batch": lambda: _get_batch,
    "embed": lambda: _embed,
    "softmax": lambda: lambda s: torch.softmax(s, dim=-1),
    "masked_attention": lambda: _masked_attention,
    "split_heads": lambda: _split_heads,
    "merge_heads": lambda: _merge_heads,
    "MultiHeadAttention": lambda: _attention_module,
    "MLP": lambda: _mlp,
    "PostLNBlock": lambda: _block("post"),
    "PreLNBlock": lambda: _block("pre"),
    "merge": lambda: _merge,
    "train_bpe": lambda: _train_bpe,
    "pre_ln_forward": lambda: lambda block, x: block(x),
    "continuation_logprob": lambda: _continuation_logprob,
    # notebook 07
    "entailment_input": lambda: _entailment_input,
    "l3_loss": lambda: _l3_loss,
    "classifier_probs": lambda: _classifier_probs,
    "similarity_sum": lambda: lambda h_ab, h_ba: h_ab + h_ba,
    "choice_probs": lambda: _choice_probs,
}


def package_version(name: str, *args: Any) -> Any:
    """gptmini's working version of the exercise ``name`` (a function, or a class-like factory of modules)."""
    if name not in _VERSIONS:
        raise KeyError(f"no package version of {name!r}; known: {sorted(_VERSIONS)}")
    return _VERSIONS[name](*args)


# ------------------------------------------------------------------------------------------------ 05
def _gpt1_module():
    from ..model import GPT

    return GPT  # MyGPT1(config) -> gptmini's GPT: the same parameter names, (logits, loss) from (idx, targets)


def _lr_schedule():
    from ..optim import get_lr

    return get_lr  # lr_schedule(step, learning_rate=, warmup_iters=, decay_iters=, min_lr=)


def _train_step(model, optimizer, x, y, lr, grad_clip):
    from ..train import train_step

    return train_step(model, optimizer, [(x, y)], lr=lr, grad_clip=grad_clip).loss


_VERSIONS.update(
    {
        "MyGPT1": _gpt1_module,
        "lr_schedule": _lr_schedule,
        "train_step": lambda: _train_step,  # my_train_step(model, optimizer, x, y, lr, grad_clip) -> the loss
    }
)


# ------------------------------------------------------------------------------------------------ 09
def _decoding_limit(bandwidth_gb_s: float, model: torch.nn.Module) -> float:
    """Tokens/s at most for a batch of one: every weight byte (the tied ``wte`` once) read once per token."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return bandwidth_gb_s * 1e9 / weight_bytes


_VERSIONS["decoding_limit"] = lambda: _decoding_limit


def _from_hf_layout():
    from .decoding import from_hf_layout

    return from_hf_layout  # from_hf_layout(hf_state) -> gptmini's state dict


def _attend_with_cache():
    from .decoding import attend_with_cache

    return attend_with_cache  # attend_with_cache(qkv, past_k, past_v, n_head) -> (y, k, v)


_VERSIONS.update({"from_hf_layout": _from_hf_layout, "attend_with_cache": _attend_with_cache})


def _top_k():
    from ..generate import top_k_filter

    return top_k_filter  # top_k(logits, k)


def _top_p():
    from ..generate import top_p_filter

    return top_p_filter  # top_p(logits, p)


def _greedy_decode(model, prompt_ids, steps: int) -> list[int]:
    return model.generate(list(prompt_ids), steps, temperature=0)


_VERSIONS.update({"top_k": _top_k, "top_p": _top_p, "greedy_decode": lambda: _greedy_decode})
