"""Decoding: filters, greedy vs cache, sliding past the context, streaming, seeds, errors."""

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.generate import filter_logits, sample_next, top_k_filter, top_p_filter


def test_top_k_keeps_exactly_k():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0, 4.0]])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [[False, True, False, False, True]]
    assert torch.isfinite(top_k_filter(logits, 100)).all()


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.5)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.6)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.9)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    cold = filter_logits(logits, 0.5).softmax(-1)
    hot = filter_logits(logits, 2.0).softmax(-1)
    assert cold[0, 0] > logits.softmax(-1)[0, 0] > hot[0, 0]
    with pytest.raises(ValueError, match="temperature=0 in generate"):
        filter_logits(logits, -1.0)


def test_sampling_follows_the_distribution():
    probs = torch.tensor([0.6, 0.3, 0.1])
    logits = probs.log().expand(20000, 3)
    draws = sample_next(logits, generator=torch.Generator().manual_seed(0)).flatten()
    freq = torch.bincount(draws, minlength=3) / draws.numel()
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_cache_gives_identical_greedy_output_past_the_context(norm):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", norm=norm, block_size=16)).eval()
    prompt = torch.randint(0, 64, (2, 5))
    with_cache = model.generate(prompt, 40, temperature=0, use_cache=True)  # runs well past block_size
    without = model.generate(prompt, 40, temperature=0, use_cache=False)
    assert with_cache.shape == (2, 45)
    assert with_cache.tolist() == without.tolist()


def test_cache_matches_full_recompute_logits():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny")).eval()
    idx = torch.randint(0, 64, (1, 12))
    cache = model.new_cache(batch_size=1, max_length=12)
    model.hidden_states(idx[:, :8], cache)
    for t in range(8, 12):
        x = model.hidden_states(idx[:, t : t + 1], cache)
        full, _ = model(idx[:, : t + 1])
        torch.testing.assert_close(model.lm_head(x[:, -1]), full[:, -1], atol=1e-5, rtol=1e-5)


def test_long_prompt_is_cropped_from_the_left(tiny_model):
    prompt = torch.randint(0, 64, (1, 50))  # block_size is 32
    out = tiny_model.generate(prompt, 3, temperature=0)
    cropped = tiny_model.generate(prompt[:, -32:], 3, temperature=0)
    assert out[:, :50].tolist() == prompt.tolist()
    assert out[:, 50:].tolist() == cropped[:, 32:].tolist()


def test_seed_makes_sampling_repeatable(tiny_model):
    a = tiny_model.generate([1, 2, 3], 20, temperature=1.0, top_k=10, seed=7)
    b = tiny_model.generate([1, 2, 3], 20, temperature=1.0, top_k=10, seed=7)
    c = tiny_model.generate([1, 2, 3], 20, temperature=1.0, top_k=10, seed=8)
    assert isinstance(a, list) and a == b and a != c


def test_top_k_one_is_greedy(tiny_model):
    greedy = tiny_model.generate([4, 5], 15, temperature=0)
    assert tiny_model.generate([4, 5], 15, temperature=1.3, top_k=1, seed=0) == greedy


def test_stream_yields_the_same_tokens(tiny_model):
    prompt = torch.tensor([3, 1, 4, 1, 5])
    streamed = list(tiny_model.generate_stream(prompt, 10, temperature=0))
    full = tiny_model.generate(prompt, 10, temperature=0)
    assert all(isinstance(t, int) for t in streamed)
    assert full.tolist() == prompt.tolist() + streamed


def test_eos_stops_generation(tiny_model):
    first = tiny_model.generate([7, 8, 9], 1, temperature=0)[-1]
    out = tiny_model.generate([7, 8, 9], 10, temperature=0, eos_token_id=first)
    assert out == [7, 8, 9, first]


def test_empty_prompt_is_an_error(tiny_model):
    with pytest.raises(ValueError, match="at least one token"):
        tiny_model.generate([], 5)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tiny_model.generate([1, 99], 5)


def test_generate_keeps_training_mode(tiny_model):
    tiny_model.train()
    tiny_model.generate([1], 2)
    assert tiny_model.training
