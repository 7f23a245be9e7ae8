"""Read a head's job from its weights: QK and OV circuits, how heads compose, and whether a head copies.

A head does two things (Elhage et al. 2021). Its **QK circuit** decides where it looks: the score a query
position gives a key position is ``x_q W_Q (x_k W_K)ᵀ``, a bilinear form ``x_q W_QK x_kᵀ`` with
``W_QK = W_Q W_Kᵀ`` (C x C). Its **OV circuit** decides what it writes once it looks: ``x_k W_OV`` with
``W_OV = W_V W_O`` (C x C). Everything here is in PyTorch's row-vector convention (x is a row, ``x W``).

On a model's vocabulary these become token x token matrices (the *full* circuits of a layer-0 head, where the
stream holds only the token's embedding; positions are left out):

* full QK[q, k] = the attention score (before the softmax) query token q gives key token k;
* full OV[s, t] = how much attending to a token s raises the logit of token t.

Each embedding row goes through the head's own LayerNorm ``ln_1`` (exactly: LayerNorm acts on each row
alone), the biases of ``c_attn`` are included; the full OV circuit then goes straight to the unembedding,
**without the final LayerNorm**, whose scale depends on the whole residual stream (the scale changes the
size of the logits, not which token a head favours). The composition scores use the weight matrices with
each LayerNorm's weight folded in and its centring and scale left out, as in the paper.
"""

from __future__ import annotations

import torch


def _head_weights(model, layer: int, head: int) -> dict[str, torch.Tensor]:
    """W_Q, W_K, W_V (C, hs), their biases (hs,) and W_O (hs, C) of one head, in row-vector form (x W)."""
    cfg = model.config
    if not (0 <= layer < cfg.n_layer and 0 <= head < cfg.n_head):
        raise ValueError(f"head ({layer}, {head}) does not exist: {cfg.n_layer} layers x {cfg.n_head} heads")
    attn = model.transformer.h[layer].attn
    c, hs = cfg.n_embd, cfg.head_size
    cols = slice(head * hs, (head + 1) * hs)
    w = attn.c_attn.weight.detach()  # (3C, C): nn.Linear stores out x in, so x W is x @ weight.T
    b = attn.c_attn.bias.detach() if attn.c_attn.bias is not None else w.new_zeros(3 * c)
    out = {}
    for k, name in enumerate("QKV"):
        out[f"W_{name}"] = w[k * c : (k + 1) * c][cols].T  # (C, hs)
        out[f"b_{name}"] = b[k * c : (k + 1) * c][cols]
    out["W_O"] = attn.c_proj.weight.detach()[:, cols].T  # (hs, C): the head's rows of c_proj in x W form
    return out


def _ln_weight(model, layer: int) -> torch.Tensor:
    ln = model.transformer.h[layer].ln_1
    return ln.weight.detach()


def _require_pre_ln(model, what: str) -> None:
    if model.config.norm != "pre":
        raise ValueError(
            f"{what} reads a pre-LN model (GPT-2 style): in a post-LN model (GPT-1) a head reads the stream "
            "after the previous block's LayerNorm, not through its own ln_1; use a pre-LN model"
        )


def qk_matrix(model, layer: int, head: int) -> torch.Tensor:
    """``W_QK = diag(γ) W_Q (diag(γ) W_K)ᵀ`` (C x C), γ = the layer's ``ln_1.weight``: score = x W_QK xᵀ."""
    _require_pre_ln(model, "qk_matrix")
    w, g = _head_weights(model, layer, head), _ln_weight(model, layer)[:, None]
    return (g * w["W_Q"]) @ (g * w["W_K"]).T


def ov_matrix(model, layer: int, head: int) -> torch.Tensor:
    """``W_OV = diag(γ) W_V W_O`` (C x C): what the head writes into the stream for a key whose stream is x."""
    _require_pre_ln(model, "ov_matrix")
    w, g = _head_weights(model, layer, head), _ln_weight(model, layer)[:, None]
    return (g * w["W_V"]) @ w["W_O"]


def _token_inputs(model, layer: int) -> torch.Tensor:
    """Every token's embedding through the layer's ``ln_1`` (vocab, C): the head's input for a one-token stream."""
    return model.transformer.h[layer].ln_1(model.transformer.wte.weight.detach())


@torch.no_grad()
def full_qk_circuit(model, head: int, layer: int = 0) -> torch.Tensor:
    """(vocab, vocab): the attention score (before softmax, scaled by 1/√head size) query token q gives key token k.

    Exact for a layer-0 head on token embeddings alone (positions left out); see the module's docstring.
    """
    _require_pre_ln(model, "full_qk_circuit")
    w = _head_weights(model, layer, head)
    x = _token_inputs(model, layer)
    q, k = x @ w["W_Q"] + w["b_Q"], x @ w["W_K"] + w["b_K"]
    return q @ k.T / model.config.head_size**0.5


@torch.no_grad()
def ov_on_stream(model, layer: int, head: int, resid: torch.Tensor) -> torch.Tensor:
    """(..., vocab): the logits the head would add, straight to the unembedding, if it attended fully to a
    position whose residual stream is ``resid`` (..., C): ``ln_1``, values (with their bias), ``W_O``, ``W_U``.

    On the real stream entering the layer this is what the head copies from each position; on the bare token
    embeddings it is the full OV circuit. No final LayerNorm (see the module's docstring).
    """
    _require_pre_ln(model, "ov_on_stream")
    w = _head_weights(model, layer, head)
    x = model.transformer.h[layer].ln_1(resid)
    return (x @ w["W_V"] + w["b_V"]) @ w["W_O"] @ model.lm_head.weight.detach().T


def full_ov_circuit(model, head: int, layer: int = 0) -> torch.Tensor:
    """(vocab, vocab): row s = the logits the head adds when it attends (fully) to a token s; no final LayerNorm.

    The stream at that position is taken to hold only the token's embedding (what a layer-0 head sees, minus
    the position); for a later head the real stream also holds what earlier layers wrote (:func:`ov_on_stream`).
    """
    return ov_on_stream(model, layer, head, model.transformer.wte.weight.detach())


def composition_score(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``‖first @ second‖_F / (‖first‖_F ‖second‖_F)``: how much of two matrices' action passes through both.

    1 when what ``first`` writes is exactly what ``second`` reads (rank one, aligned), 0 when they are orthogonal.
    """
    norm = torch.linalg.matrix_norm
    return norm(first @ second) / (norm(first) * norm(second))


def k_composition(model, earlier: tuple[int, int], later: tuple[int, int]) -> torch.Tensor:
    """How much the later head's **keys** read what the earlier head wrote (an induction head on a
    previous-token head): the composition of ``W_QK(later)`` with ``W_OV(earlier)ᵀ``.

    The later head's score is ``x_q W_QK x_kᵀ``; if the key's stream holds the earlier head's output
    ``y W_OV``, that is ``x_q W_QK W_OVᵀ yᵀ``.
    """
    if earlier[0] >= later[0]:
        raise ValueError(f"the earlier head {earlier} must be in a lower layer than the later head {later}")
    return composition_score(qk_matrix(model, *later), ov_matrix(model, *earlier).T)


def q_composition(model, earlier: tuple[int, int], later: tuple[int, int]) -> torch.Tensor:
    """How much the later head's **queries** read the earlier head's output: ``W_OV(earlier) @ W_QK(later)``."""
    if earlier[0] >= later[0]:
        raise ValueError(f"the earlier head {earlier} must be in a lower layer than the later head {later}")
    return composition_score(ov_matrix(model, *earlier), qk_matrix(model, *later))


def copying_score(model, head: int, layer: int = 0) -> float:
    """Σ Re λ / Σ |λ| over the eigenvalues λ of the full OV circuit: 1 for a head that copies (raises the
    logit of the token it attends to), -1 for one that suppresses it, near 0 for neither.

    The full circuit X W_V' W_O W_Uᵀ (vocab x vocab) has the same non-zero eigenvalues as the C x C matrix
    W_V' W_O W_Uᵀ X (with X the ln_1'd embeddings and W_V' the value map with its bias), so GPT-2's 50,257
    tokens cost a 768 x 768 eigenproblem.
    """
    _require_pre_ln(model, "copying_score")
    with torch.no_grad():
        w = _head_weights(model, layer, head)
        x = _token_inputs(model, layer)  # (vocab, C)
        values = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], 1)  # bias as a column
        w_v = torch.cat([w["W_V"], w["b_V"][None]], 0)  # (C + 1, hs)
        small = w_v @ w["W_O"] @ model.lm_head.weight.detach().T @ values  # (C + 1, C + 1)
        eig = torch.linalg.eigvals(small.double())
    return float(eig.real.sum() / eig.abs().sum())


def top1_diagonal(circuit: torch.Tensor) -> float:
    """The share of rows whose largest entry is on the diagonal, after centring each column.

    For a full OV circuit: the share of tokens s for which attending to s raises the logit of s more than any
    other logit, compared with attending elsewhere. Centring each column (subtracting its mean over the rows)
    removes what the head adds whatever it attends to (its biases), which would otherwise win every row.
    """
    centred = circuit - circuit.mean(0, keepdim=True)
    rows = torch.arange(circuit.shape[0], device=circuit.device)
    return float((centred.argmax(-1) == rows).float().mean())
