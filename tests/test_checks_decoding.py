"""Notebook 09's checks: each passes a right answer written independently of gptmini's and names the usual slips."""

from __future__ import annotations

import math

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course.checks import package_version
from gptmini.course.checks._report import CheckResult
from gptmini.course.checks.nb09 import (
    attend_with_cache,
    check_attend_with_cache,
    check_from_hf_layout,
    check_top_k,
    check_top_p,
    from_hf_layout,
    to_hf_layout,
)

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
INF = float("-inf")


def said(result: CheckResult) -> str:
    """Everything a check printed: its verdict and the lines of its sub-checks."""
    return "\n".join([result.message, *(said(r) for r in result.details)])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0, norm="pre")
    return GPT(config).eval()


# ------------------------------------------------------------------------------- the hub's layout
def nanogpt_style(hf_state, transpose=CONV1D, skip=(".attn.bias", ".attn.masked_bias"), strip=True, add=True):
    """A loader as a learner writes it (nanoGPT style); the keyword arguments reproduce the usual slips."""
    state = {}
    for key, tensor in hf_state.items():
        if key.endswith(skip):
            continue
        if strip:
            key = key.removeprefix("transformer.")
        if any(key.endswith(name) for name in transpose):
            tensor = tensor.t()
        state[("transformer." if add else "") + key] = tensor
    state["lm_head.weight"] = next(v for k, v in state.items() if k.endswith("wte.weight"))  # tied
    return state


def test_the_hub_layout_is_what_from_pretrained_reads(model, tmp_path):
    """to_hf_layout writes what the loader reads, and from_hf_layout maps it back exactly."""
    import json

    from safetensors.torch import save_file

    hf = to_hf_layout(model)
    assert hf["h.0.attn.c_attn.weight"].shape == (16, 48)  # Conv1D: (in, out)
    assert hf["h.1.attn.bias"].shape == (1, 1, 16, 16) and "lm_head.weight" not in hf
    assert not any(k.startswith("transformer.") for k in hf)
    save_file(hf, tmp_path / "model.safetensors")
    config = dict(model_type="gpt2", vocab_size=37, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = GPT.from_pretrained(tmp_path)
    state = from_hf_layout(hf)
    for key, value in loaded.state_dict().items():
        assert torch.equal(state[key], value), key
        assert torch.equal(model.state_dict()[key], value), key


def test_from_hf_layout_passes_a_right_answer(model, capsys):
    assert check_from_hf_layout(nanogpt_style, model)
    assert check_from_hf_layout(package_version("from_hf_layout"), model)
    assert "matches the original model's logits" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(transpose=()), "Conv1D weights"),
        (dict(transpose=CONV1D[:3]), "mlp.c_proj.weight as stored"),  # one of the four forgotten
        (dict(transpose=CONV1D + ("wte.weight",)), "only the four Conv1D weights are transposed"),
        (dict(skip=()), "causal mask"),
        (dict(add=False), "start with `transformer.`"),
        (dict(strip=False), "already had the `transformer.` prefix"),
    ],
)
def test_from_hf_layout_names_the_slip(model, kwargs, words):
    result = check_from_hf_layout(lambda hf: nanogpt_style(hf, **kwargs), model)
    assert not result and words in said(result), said(result)


def test_from_hf_layout_refuses_changed_values_and_reports_a_stub(model):
    def scaled(hf):
        state = nanogpt_style(hf)
        state["transformer.ln_f.weight"] = 2 * state["transformer.ln_f.weight"]
        return state

    assert "changes the values of transformer.ln_f.weight" in said(check_from_hf_layout(scaled, model))
    untied = lambda hf: {**nanogpt_style(hf), "lm_head.weight": torch.zeros(37, 16)}  # noqa: E731
    assert "tied" in said(check_from_hf_layout(untied, model))
    assert check_from_hf_layout(lambda hf: None, model).pending

    def stub(hf):
        raise NotImplementedError

    assert check_from_hf_layout(stub, model).pending
    assert not check_from_hf_layout(lambda hf: 1 / 0, model)
    with pytest.raises(TypeError, match="function"):
        check_from_hf_layout("not a function", model)


# ------------------------------------------------------------------------------- one cached step
def by_hand(qkv, past_k, past_v, n_head, scale=True, dim=2, new_first=False, mask="shifted"):
    """One attention step written with plain matmuls; the keyword arguments reproduce the usual slips."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    q, k, v = (x.view(b, t, n_head, c // n_head).transpose(1, 2) for x in qkv.split(c, dim=-1))
    pair = (lambda old, new: (new, old)) if new_first else (lambda old, new: (old, new))
    k, v = torch.cat(pair(past_k, k), dim=dim), torch.cat(pair(past_v, v), dim=dim)
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(c if scale == "C" else q.size(-1))
    total = k.size(2)
    if mask != "none":
        offset = total - t if mask == "shifted" else 0
        allowed = torch.ones(t, total, dtype=torch.bool).tril(diagonal=offset)
        scores = scores.masked_fill(~allowed, INF)
    y = scores.softmax(-1) @ v
    return y.transpose(1, 2).reshape(b, t, c), k, v


def test_attend_with_cache_passes_a_right_answer(capsys):
    assert check_attend_with_cache(by_hand)
    assert check_attend_with_cache(attend_with_cache)
    assert "matches one causal pass over all tokens" in capsys.readouterr().out


def test_attend_with_cache_equals_gptmini_attention_with_its_kv_cache():
    """The package's version agrees with the model's own cached attention, token by token."""
    torch.manual_seed(1)
    config = GPTConfig(vocab_size=11, block_size=12, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
    block = GPT(config).eval().transformer.h[0].attn
    x = torch.randn(1, 7, 8)
    with torch.no_grad():
        full = block(x)
        qkv = block.c_attn(x)
        k = v = torch.zeros(1, 2, 0, 4)
        rows = []
        for t in range(7):
            y, k, v = attend_with_cache(qkv[:, t : t + 1], k, v, 2)
            rows.append(block.c_proj(y))
    assert torch.allclose(torch.cat(rows, dim=1), full, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(scale=False), "divide the scores by √(head size)"),
        (dict(scale="C"), "not √C"),
        (dict(mask="none"), "must not see the new tokens after it"),
        (dict(mask="square"), "not shifted by the cached length"),
        (dict(new_first=True), "the new keys go after the cached ones"),
        (dict(dim=-1), "the cache grows along the tokens, dim=2"),
        (dict(dim=1), "dim=2"),
    ],
)
def test_attend_with_cache_names_the_slip(kwargs, words):
    result = check_attend_with_cache(lambda *args: by_hand(*args, **kwargs))
    assert not result and words in said(result), said(result)


def test_attend_with_cache_names_two_more_slips():
    heads_apart = lambda *args: by_hand(*args)[0].view(args[0].size(0), args[0].size(1), args[3], -1).transpose(1, 2)  # noqa: E731
    result = check_attend_with_cache(lambda *a: (heads_apart(*a), *by_hand(*a)[1:]))
    assert "merge the heads back" in said(result)
    assert check_attend_with_cache(lambda *a: None).pending
    only_new = lambda qkv, pk, pv, n: (by_hand(qkv, pk, pv, n)[0], *by_hand(qkv, pk[:, :, :0], pv[:, :, :0], n)[1:])  # noqa: E731
    assert "new tokens' keys only" in said(check_attend_with_cache(only_new))


# ------------------------------------------------------------------------------- top-k and top-p
def top_k_by_sort(logits, k):
    kth = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]
    return logits.masked_fill(logits < kth, INF)


def top_p_by_sort(logits, p):
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    remove = probs.cumsum(-1) - probs >= p
    return logits.masked_fill(remove.scatter(-1, order, remove), INF)


def test_top_k_and_top_p_pass_right_answers():
    assert check_top_k(top_k_by_sort) and check_top_k(package_version("top_k"))
    assert check_top_p(top_p_by_sort) and check_top_p(package_version("top_p"))


def test_the_package_greedy_decode_passes_its_check(model):
    from gptmini.course.checks.nb09 import check_greedy_decode

    assert check_greedy_decode(package_version("greedy_decode"), model, [1, 2, 3], steps=5)


def exactly_k(logits, k):  # topk's k indices: ties at the k-th value are lost
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k).indices, True)
    return logits.masked_fill(~keep, INF)


@pytest.mark.parametrize(
    "fn, words",
    [
        (exactly_k, "ties at the k-th value are dropped"),
        (lambda lg, k: top_k_by_sort(lg, k + 1), "one token too many"),
        (lambda lg, k: lg.masked_fill(lg <= lg.topk(k).values[..., -1:], INF), "the k-th largest itself is removed"),
        (lambda lg, k: lg.masked_fill(lg >= lg.topk(k).values[..., -1:], INF), "removed the k largest"),
    ],
)
def test_top_k_names_the_slip(fn, words):
    result = check_top_k(fn)
    assert not result and words in said(result), said(result)


def top_p_slip(logits, p, crossing=False, keep_first=False, unsort=True):
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    remove = probs.cumsum(-1) > p if crossing else probs.cumsum(-1) - probs >= p
    if keep_first:
        remove[..., 0] = False
    return logits.masked_fill(remove.scatter(-1, order, remove) if unsort else remove, INF)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(crossing=True, keep_first=True), "takes the running total past p"),
        (dict(crossing=True), "the most likely token must always stay"),
        (dict(unsort=False), "undo the sort"),
    ],
)
def test_top_p_names_the_slip(kwargs, words):
    result = check_top_p(lambda logits, p: top_p_slip(logits, p, **kwargs))
    assert not result and words in said(result), said(result)


def test_from_hf_layout_reads_a_hugging_face_gpt2_state_dict():
    """Independent of gptmini's own writer: transformers' GPT2LMHeadModel, with and without the prefix."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=37, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    hf = transformers.GPT2LMHeadModel(config).eval()
    ours = GPT(GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0, norm="pre"))
    hub_layout = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    ids = torch.randint(37, (2, 16), generator=torch.Generator().manual_seed(1))
    for hf_state in (hf.state_dict(), hub_layout):
        ours.load_state_dict(from_hf_layout(hf_state))
        with torch.no_grad():
            assert torch.allclose(ours.eval()(ids)[0], hf(ids).logits, atol=1e-5)
    assert check_from_hf_layout(nanogpt_style, ours, hub_layout)
