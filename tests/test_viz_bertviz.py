"""The bertviz adapter: the data handed to bertviz, the limits for long inputs, and the offline message.

Nothing here renders bertviz (it needs a browser and a CDN); its entry points are replaced by recorders.
"""

from __future__ import annotations

import time

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import attention_maps
from gptmini.viz import bertviz as adapter
from gptmini.viz import bertviz_inputs, cdn_reachable, show_bertviz

TEXT = "to be or not to be, that is the question"


@pytest.fixture
def recorder(monkeypatch):
    """Swap bertviz's views for functions that remember their arguments."""
    import bertviz

    calls = []
    monkeypatch.setattr(bertviz, "head_view", lambda *a, **k: calls.append(("head", a, k)))
    monkeypatch.setattr(bertviz, "model_view", lambda *a, **k: calls.append(("model", a, k)))
    return calls


def test_inputs_equal_attention_maps(char_model, char_tok):
    inputs = bertviz_inputs(char_model, char_tok, "to be or not")
    ids = char_tok.encode("to be or not")
    ref = attention_maps(char_model, torch.tensor([ids]))
    assert isinstance(inputs.attention, tuple) and len(inputs.attention) == char_model.config.n_layer
    for ours, theirs in zip(inputs.attention, ref, strict=True):
        assert ours.shape == (1, char_model.config.n_head, len(ids), len(ids))
        torch.testing.assert_close(ours, theirs)
    assert inputs.tokens == char_tok.token_strings(ids) and inputs.layers == [0, 1] and not inputs.truncated


def test_long_inputs_are_limited(char_model, char_tok):
    inputs = bertviz_inputs(char_model, char_tok, TEXT, view="model", max_tokens=8)
    assert inputs.attention[0].shape[-1] == 8 and len(inputs.tokens) == 8
    assert inputs.truncated and inputs.total_tokens == len(TEXT)
    deep = GPT(GPTConfig.preset("tiny", vocab_size=char_tok.vocab_size, n_layer=24, n_embd=16)).eval()
    layers = bertviz_inputs(deep, char_tok, "to be", view="model").layers
    assert len(layers) == 12 and layers[0] == 0 and layers == sorted(set(layers)) and max(layers) < 24
    assert bertviz_inputs(deep, char_tok, "to be", view="head").layers == list(range(24))  # one layer at a time
    assert bertviz_inputs(deep, char_tok, "to be", view="model", layers=[3, 20]).layers == [3, 20]
    with pytest.raises(ValueError, match="layers"):
        bertviz_inputs(char_model, char_tok, "to be", layers=[5])
    with pytest.raises(ValueError, match="view"):
        bertviz_inputs(char_model, char_tok, "to be", view="neuron")


def test_offline_prints_one_line_and_draws_nothing(char_model, char_tok, recorder, monkeypatch, capsys):
    monkeypatch.setenv(adapter.ENV_VAR, "offline")
    assert show_bertviz(char_model, char_tok, "to be") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "attention_explorer" in out and adapter.CDN_HOST in out
    assert recorder == []


def test_online_feeds_bertviz(char_model, char_tok, recorder, monkeypatch, capsys):
    monkeypatch.setenv(adapter.ENV_VAR, "online")
    inputs = show_bertviz(char_model, char_tok, "to be or", view="model", layers=[1])
    kind, args, kwargs = recorder[0]
    assert kind == "model" and args[1] == char_tok.token_strings(char_tok.encode("to be or"))
    assert kwargs["include_layers"] == [1] and args[0] is inputs.attention
    show_bertviz(char_model, char_tok, TEXT, view="head", max_tokens=5)
    kind, args, kwargs = recorder[1]
    assert kind == "head" and len(args[1]) == 5 and args[0][0].shape[-1] == 5
    assert "first 5 of" in capsys.readouterr().out


def test_cdn_check_is_quick_cached_and_overridable(monkeypatch):
    monkeypatch.setenv(adapter.ENV_VAR, "auto")
    monkeypatch.setattr(adapter, "_reachable", {})
    start = time.monotonic()
    assert cdn_reachable(timeout=0.5, host="unreachable.invalid") is False  # .invalid never resolves
    assert time.monotonic() - start < 2.0
    assert adapter._reachable == {"unreachable.invalid": False}
    monkeypatch.setenv(adapter.ENV_VAR, "online")
    assert cdn_reachable(host="unreachable.invalid") is True
    monkeypatch.setenv(adapter.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match=adapter.ENV_VAR):
        cdn_reachable()
