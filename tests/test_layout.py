"""gptmini.layout: column-major weights for decoding change strides only, never values, names or tying."""

import copy

import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.layout import for_decoding, for_training, is_column_major
from gptmini.pretrained import save_pretrained


@pytest.fixture(params=["pre", "post"])
def model(request):
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", norm=request.param)).eval().double()


def linear_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


def test_for_decoding_keeps_every_value_name_shape_and_the_tied_head(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = {name: id(p) for name, p in model.named_parameters()}
    assert for_decoding(model) is model
    after = model.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].shape == value.shape and torch.equal(after[key], value), key
    assert {name: id(p) for name, p in model.named_parameters()} == params  # the same Parameter objects
    assert model.lm_head.weight is model.transformer.wte.weight
    assert all(is_column_major(w) for w in linear_weights(model))
    for_decoding(model)  # twice is the same as once
    assert all(is_column_major(w) for w in linear_weights(model))
    for_training(model)
    assert all(w.is_contiguous() and not is_column_major(w) for w in linear_weights(model))


def test_logits_and_cached_decoding_agree_in_float64(model):
    idx = torch.randint(0, model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(idx)[0]
        columns = for_decoding(copy.deepcopy(model))
        got = columns(idx)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert (
        columns.generate(idx[:, :4], 30, temperature=0).tolist()
        == model.generate(idx[:, :4], 30, temperature=0).tolist()
    )


def test_a_column_major_model_saves_loads_and_trains(model, tmp_path):
    for_decoding(model)
    save_pretrained(model, tmp_path)
    loaded = GPT.from_pretrained(tmp_path).double()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    reference = for_training(copy.deepcopy(model))
    ref_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3)
    idx = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))
    for m, opt in ((model, optimizer), (reference, ref_optimizer)):
        torch.manual_seed(0)
        for _ in range(3):
            logits = m(idx[:, :-1])[0]
            loss = F.cross_entropy(logits.flatten(0, 1), idx[:, 1:].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=1e-10)
