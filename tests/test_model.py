"""The model: presets, both attention paths, attention maps, init, and clear errors for bad input."""

import math

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import attention_maps


def test_presets_have_the_published_shapes():
    gpt1 = GPTConfig.preset("gpt1")
    assert (gpt1.n_layer, gpt1.n_embd, gpt1.n_head, gpt1.block_size, gpt1.vocab_size, gpt1.norm) == (
        12,
        768,
        12,
        512,
        40478,
        "post",
    )
    sizes = {
        name: (c.n_layer, c.n_embd)
        for name in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
        for c in [GPTConfig.preset(name)]
    }
    assert sizes == {"gpt2": (12, 768), "gpt2-medium": (24, 1024), "gpt2-large": (36, 1280), "gpt2-xl": (48, 1600)}
    assert GPTConfig.preset("gpt2").norm == "pre" and GPTConfig.preset("gpt2").block_size == 1024


def test_gpt2_small_has_124m_parameters():
    with torch.device("meta"):
        model = GPT(GPTConfig.preset("gpt2"))
    assert model.num_params(non_embedding=False) == 124_439_808  # the figure Hugging Face reports


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Valid presets: gpt1, gpt2, gpt2-medium"):
        GPTConfig.preset("gpt4")


def test_bad_config_says_what_to_change():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=100, n_head=3)
    with pytest.raises(ValueError, match="norm must be 'post'"):
        GPTConfig(norm="middle")


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_both_attention_paths_agree(norm):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", norm=norm)).eval()
    idx = torch.randint(0, 64, (2, 32))
    fast, _ = model.set_attention("sdpa")(idx)
    slow, _ = model.set_attention("explicit")(idx)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_attention_maps_are_causal_distributions(tiny_model):
    idx = torch.randint(0, 64, (2, 17))
    maps = attention_maps(tiny_model, idx)
    assert len(maps) == tiny_model.config.n_layer
    for weights in maps:
        assert weights.shape == (2, tiny_model.config.n_head, 17, 17)
        future = torch.triu(torch.ones(17, 17, dtype=torch.bool), diagonal=1)
        assert torch.all(weights[..., future] == 0), "no position may attend to a later one"
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, tiny_model.config.n_head, 17))


def test_future_tokens_do_not_change_past_logits(tiny_model):
    idx = torch.randint(0, 64, (1, 20))
    changed = idx.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 64
    a, _ = tiny_model(idx)
    b, _ = tiny_model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_loss_is_cross_entropy_and_starts_near_log_vocab():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=500)).eval()
    idx = torch.randint(0, 500, (4, 32))
    targets = torch.randint(0, 500, (4, 32))
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 500), targets.reshape(-1))
    torch.testing.assert_close(loss, expected)
    assert abs(loss.item() - math.log(500)) < 0.3, "a fresh model should be close to uniform"
    assert model(idx)[1] is None


def test_weights_are_tied_and_residual_init_is_scaled():
    torch.manual_seed(0)
    config = GPTConfig.preset("tiny", n_layer=8, n_embd=256, n_head=4)
    model = GPT(config)
    assert model.lm_head.weight is model.transformer.wte.weight
    proj = torch.cat([b.attn.c_proj.weight.flatten() for b in model.transformer.h])
    fc = torch.cat([b.mlp.c_fc.weight.flatten() for b in model.transformer.h])
    assert abs(proj.std().item() - 0.02 / math.sqrt(2 * 8)) < 5e-4
    assert abs(fc.std().item() - 0.02) < 5e-4
    gpt1_style = GPT(config.replace(norm="post"))
    assert abs(gpt1_style.transformer.h[0].attn.c_proj.weight.std().item() - 0.02) < 1e-3
    assert "ln_f" not in gpt1_style.transformer and "ln_f" in model.transformer


@pytest.mark.parametrize(
    "idx, message",
    [
        (torch.tensor([[1, 2, 64]]), r"Token id 64 is outside the vocabulary \[0, 64\)"),
        (torch.tensor([[1, -1]]), "Token id -1 is outside the vocabulary"),
        (torch.zeros(1, 33, dtype=torch.long), r"Sequence length 33 exceeds the model's context \(block_size=32\)"),
        (torch.zeros(1, 5), "must be integers"),
        (torch.zeros(5, dtype=torch.long), r"shape \(batch, time\).*unsqueeze\(0\)"),
        (torch.zeros(1, 2, 3, dtype=torch.long), r"shape \(batch, time\)"),
        (torch.zeros(1, 0, dtype=torch.long), "empty sequence"),
        ([[1, 2, 3]], "torch.LongTensor"),
    ],
)
def test_bad_input_gets_a_clear_error(tiny_model, idx, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(idx)


def test_resize_token_embeddings_keeps_old_rows(tiny_model):
    old = tiny_model.transformer.wte.weight.detach().clone()
    tiny_model.resize_token_embeddings(67)
    assert tiny_model.config.vocab_size == 67
    torch.testing.assert_close(tiny_model.transformer.wte.weight[:64], old)
    assert tiny_model.lm_head.weight is tiny_model.transformer.wte.weight
    assert tiny_model(torch.tensor([[66, 1]]))[0].shape == (1, 2, 67)
