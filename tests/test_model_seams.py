"""The model's seams: blocks return x, the static KV cache, hook points, argument and id checks."""

from __future__ import annotations

import inspect as pyinspect

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.generate import check_sampling_args
from gptmini.inspect import attention_maps
from gptmini.kvcache import KVCache


@pytest.fixture
def model64():
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", block_size=16)).double().eval()


def test_block_returns_the_residual_stream(model64):
    x = torch.randn(2, 5, 32, dtype=torch.float64)
    out = model64.transformer.h[0](x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_static_cache_equals_full_recompute_in_float64(norm):
    torch.manual_seed(1)
    model = GPT(GPTConfig.preset("tiny", norm=norm, block_size=16)).double().eval()
    idx = torch.randint(0, 64, (3, 16))
    cache = model.new_cache(batch_size=3)
    assert cache.keys.dtype == torch.float64 and cache.max_length == 16
    buffer = cache.keys.data_ptr()
    x = model.hidden_states(idx[:, :6], cache)  # a prompt of 6, then one token at a time
    states = [x]
    for t in range(6, 16):
        states.append(model.hidden_states(idx[:, t : t + 1], cache))
    assert cache.length == 16 and cache.keys.data_ptr() == buffer  # written in place, never re-allocated
    full = model.hidden_states(idx)
    torch.testing.assert_close(torch.cat(states, dim=1), full, rtol=0, atol=1e-12)


def test_cache_prefill_in_two_chunks_uses_the_causal_mask(model64):
    idx = torch.randint(0, 64, (1, 12))
    cache = model64.new_cache(max_length=12)
    model64.hidden_states(idx[:, :5], cache)
    x = model64.hidden_states(idx[:, 5:], cache)  # 7 new positions after 5 cached ones
    torch.testing.assert_close(x, model64.hidden_states(idx)[:, 5:], rtol=0, atol=1e-12)


def test_cache_overflow_and_bad_sizes_are_clear_errors(model64):
    cache = model64.new_cache(max_length=4)
    model64.hidden_states(torch.zeros(1, 4, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="do not fit"):
        model64.hidden_states(torch.zeros(1, 1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="max_length"):
        KVCache(model64.config, batch_size=1, max_length=17)
    with pytest.raises(ValueError, match="batch_size"):
        KVCache(model64.config, batch_size=0)


def test_attention_maps_come_from_hooks_and_leave_none_behind(model64):
    idx = torch.randint(0, 64, (2, 9))
    maps = attention_maps(model64, idx)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 9, 9)
    # the same weights computed from the layer's own q and k
    block = model64.transformer.h[0]
    x = model64.transformer.wte(idx) + model64.transformer.wpe(torch.arange(9))
    q, k, _ = block.attn.c_attn(block.ln_1(x)).split(32, dim=2)
    q, k = (t.view(2, 9, 2, 16).transpose(1, 2) for t in (q, k))
    scores = (q @ k.transpose(-2, -1)) / 4.0
    scores = scores.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(maps[0], scores.softmax(-1), rtol=0, atol=1e-12)
    assert not any(b.attn.hook_pattern.has_hooks() for b in model64.transformer.h)


def test_hooks_change_no_logits_and_hook_z_can_replace_a_head(model64):
    idx = torch.randint(0, 64, (1, 10))
    plain, _ = model64(idx)
    seen = []
    handle = model64.transformer.h[1].attn.hook_pattern.register_forward_hook(lambda m, i, o: seen.append(o))
    hooked, _ = model64(idx)
    handle.remove()
    assert len(seen) == 1
    torch.testing.assert_close(hooked, plain, rtol=0, atol=1e-12)

    attn = model64.transformer.h[1].attn

    def zero_head0(_module, _inputs, z):
        z = z.clone()
        z[:, 0] = 0
        return z

    handle = attn.hook_z.register_forward_hook(zero_head0)
    ablated, _ = model64(idx)
    handle.remove()
    assert not torch.allclose(ablated, plain)
    again, _ = model64(idx)
    torch.testing.assert_close(again, plain, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.int32, torch.long])
def test_every_integer_dtype_check_input_accepts_runs(model64, dtype):
    idx = torch.tensor([[1, 2, 3, 63]], dtype=dtype)
    logits, loss = model64(idx, idx)
    ref, ref_loss = model64(idx.long(), idx.long())
    torch.testing.assert_close(logits, ref, rtol=0, atol=0)
    assert model64.generate(idx, 3, temperature=0).tolist()[0][:4] == [1, 2, 3, 63]


def test_bool_and_float_ids_are_refused(model64):
    with pytest.raises(ValueError, match="integers"):
        model64(torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="integers"):
        model64.generate(torch.tensor([[1.0, 2.0]]), 2)


def test_out_of_vocabulary_id_in_the_cropped_part_is_refused(model64):
    prompt = [99] + [1] * 20  # block_size 16: the bad id would be cropped away
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model64.generate(prompt, 2, temperature=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(temperature=float("nan")), "temperature"),
        (dict(temperature=float("inf")), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=float("nan")), "top_p"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=True), "top_k"),
    ],
)
def test_bad_sampling_arguments_name_the_argument(model64, kwargs, name):
    with pytest.raises(ValueError, match=name):
        check_sampling_args(**kwargs)
    with pytest.raises(ValueError, match=name):
        model64.generate([1, 2], 3, **kwargs)


def test_generate_shows_its_real_signature(model64):
    params = pyinspect.signature(model64.generate).parameters
    assert list(params)[:3] == ["idx", "max_new_tokens", "temperature"]
    assert {"top_k", "top_p", "seed", "use_cache", "eos_token_id"} <= set(params)
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())


def test_range_check_stays_on_while_training_on_the_cpu(model64):
    bad = torch.tensor([[1, 99]])
    model64.train()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model64.check_input(bad)  # on the CPU the check stays on, training or not


def test_model_and_generate_import_without_a_cycle():
    import ast
    from pathlib import Path

    import gptmini.generate

    tree = ast.parse(Path(gptmini.generate.__file__).read_text())
    runtime_imports = [
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("model")
    ]
    assert runtime_imports == []


@pytest.mark.parametrize("temperature", [1e-97, 1e-30, 1e-6])
def test_a_tiny_temperature_samples_the_greedy_token(model64, temperature):
    greedy = model64.generate([1, 2, 3], 6, temperature=0)
    assert model64.generate([1, 2, 3], 6, temperature=temperature, seed=0) == greedy


def test_a_tiny_top_p_keeps_the_most_likely_token(model64):
    greedy = model64.generate([1, 2, 3], 6, temperature=0)
    assert model64.generate([1, 2, 3], 6, top_p=1e-97, seed=0) == greedy
