"""Exact where it claims to be: float64 parity with transformers on deep, wide-weighted random models, for
GPT-1's GELU and for every GPT-2 config flag that changes the maths; the flags gptmini cannot follow are
refused by name."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from gptmini import GPT, CheckpointError, GPTConfig

VOCAB, T = 97, 40
IDX = torch.randint(0, VOCAB, (4, T), generator=torch.Generator().manual_seed(1))


def wide(model, std=0.5):
    """Every parameter (biases and LayerNorm gains too) ~ N(0, std): activations reach the GELU's tails."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model.eval()


def gpt1(**flags):
    cfg = OpenAIGPTConfig(vocab_size=VOCAB, n_positions=T, n_embd=32, n_layer=12, n_head=4, **flags)
    return wide(OpenAIGPTLMHeadModel(cfg).double())


def gpt2(std=0.3, attn="sdpa", **flags):
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_positions=T,
        n_embd=32,
        n_layer=12,
        n_head=4,
        attn_implementation=attn,
        bos_token_id=0,
        eos_token_id=0,
        **flags,
    )
    return wide(GPT2LMHeadModel(cfg).double(), std)


def load(hf, tmp_path):
    hf.save_pretrained(tmp_path)
    return GPT.from_pretrained(tmp_path)


def assert_refused(tmp_path, hf, field, value, match):
    """Save ``hf``, set ``field`` of its config.json to ``value``: loading must fail with ``match``."""
    hf.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=match):
        GPT.from_pretrained(tmp_path)


def assert_parity(model, hf, atol=1e-9):
    with torch.no_grad():
        expected = hf(IDX).logits
        for impl in ("sdpa", "explicit"):
            got, _ = model.set_attention(impl)(IDX)
            assert got.dtype == expected.dtype
            assert (got - expected).abs().max().item() <= atol
            assert torch.equal(got.argmax(-1), expected.argmax(-1))
    return expected


def test_gpt1_uses_the_tanh_gelu_exactly(tmp_path):
    hf = gpt1()
    model = load(hf, tmp_path)
    assert model.config.gelu == "tanh" and model.transformer.wte.weight.dtype == torch.float64
    expected = assert_parity(model, hf)
    # the test can tell the two GELUs apart: the exact (erf) one is off by far more than the tolerance
    exact = GPT(model.config.replace(gelu="exact")).double().eval()
    exact.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (exact(IDX)[0] - expected).abs().max().item() > 1e-5


@pytest.mark.parametrize("afn", ["relu", "silu", "swish", "gelu_new"])
def test_gpt1_activations_that_are_not_its_gelu_are_refused(tmp_path, afn):
    assert_refused(tmp_path, gpt1(), "afn", afn, rf"field 'afn' is '{afn}'.*supported for openai-gpt: \['gelu'\]")


@pytest.mark.parametrize(
    "flags, gelu",
    [
        ({}, "tanh"),
        ({"activation_function": "gelu_pytorch_tanh"}, "tanh"),
        ({"activation_function": "gelu_python_tanh"}, "tanh"),
        ({"activation_function": "gelu"}, "exact"),
        ({"activation_function": "gelu_python"}, "exact"),
        ({"n_inner": 48}, "tanh"),
        ({"scale_attn_weights": False}, "tanh"),
        ({"scale_attn_by_inverse_layer_idx": True}, "tanh"),
        ({"scale_attn_weights": False, "scale_attn_by_inverse_layer_idx": True}, "tanh"),
    ],
)
def test_gpt2_flags_are_followed_exactly(tmp_path, flags, gelu):
    hf = gpt2(**flags)
    model = load(hf, tmp_path)
    assert model.config.gelu == gelu
    assert model.config.mlp_size == flags.get("n_inner", 4 * 32)
    assert_parity(model, hf)


def test_the_attention_flags_matter(tmp_path):
    """Without folding the scales in, the flagged model would be far off: the parity above is not vacuous."""
    plain, flagged = gpt2(), gpt2(scale_attn_weights=False, scale_attn_by_inverse_layer_idx=True)
    flagged.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert (plain(IDX).logits - flagged(IDX).logits).abs().max().item() > 1e-2


def test_reorder_and_upcast_attn_is_the_same_maths_in_float32(tmp_path):
    # transformers' reordered path computes q.k in float32 even for a float64 model, so compare in float32
    hf = gpt2(attn="eager", reorder_and_upcast_attn=True).float()
    model = load(hf, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(model(IDX)[0], hf(IDX).logits, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("act", ["relu", "gelu_fast", "quick_gelu", "gelu_accurate", "gelu_10", 3, None])
def test_gpt2_activations_without_an_exact_match_are_refused(tmp_path, act):
    assert_refused(tmp_path, gpt2(), "activation_function", act, "'activation_function'")


def test_cross_attention_is_refused(tmp_path):
    assert_refused(tmp_path, gpt2(), "add_cross_attention", True, "'add_cross_attention'")


def test_untied_head_loads_only_when_it_equals_wte(tmp_path):
    hf = gpt2(tie_word_embeddings=False)
    assert hf.lm_head.weight is not hf.transformer.wte.weight
    with torch.no_grad():
        hf.lm_head.weight.copy_(hf.transformer.wte.weight)
    hf.save_pretrained(tmp_path)
    assert "lm_head.weight" in load_file(tmp_path / "model.safetensors")
    assert_parity(GPT.from_pretrained(tmp_path), hf)
    with torch.no_grad():
        hf.lm_head.weight.add_(0.1)
    hf.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"lm_head.weight that differs from wte \(config.json: 'tie_word"):
        GPT.from_pretrained(tmp_path)


def test_untied_config_without_a_head_is_refused(tmp_path):
    match = "'tie_word_embeddings' is false but .* holds no lm_head.weight"
    assert_refused(tmp_path, gpt2(), "tie_word_embeddings", False, match)


def test_our_format_never_drops_a_different_head(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny"))
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["lm_head.weight"] = state["transformer.wte.weight"] + 1
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="differs from wte"):
        GPT.from_pretrained(tmp_path)
    state["lm_head.weight"] = state["transformer.wte.weight"].clone()  # an equal copy is harmless
    save_file(state, tmp_path / "model.safetensors")
    assert GPT.from_pretrained(tmp_path).lm_head.weight is not None
    model.lm_head.weight = torch.nn.Parameter(model.transformer.wte.weight.detach() * 2)  # untied by hand
    with pytest.raises(ValueError, match="lm_head.weight differs from transformer.wte.weight"):
        model.save_pretrained(tmp_path / "untied")
    assert not (tmp_path / "untied" / "model.safetensors").exists()
