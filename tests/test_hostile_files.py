"""Broken or hostile model folders: every problem is one ValueError-family error naming the file and the field."""

import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptmini import GPT, CheckpointError, GPTConfig


@pytest.fixture
def folder(tmp_path):
    """A small gptmini checkpoint (our format) to break in different ways."""
    torch.manual_seed(0)
    GPT(GPTConfig.preset("tiny", vocab_size=61)).save_pretrained(tmp_path)
    return tmp_path


@pytest.fixture
def hf_folder(tmp_path):
    """The same weights written the way the hub stores them: Hugging Face's config, Conv1D (in, out) layout."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=61))
    state = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue
        key = key.removeprefix("transformer.")
        state[key] = (
            value.t().contiguous() if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else value
        )
    save_file(state, tmp_path / "model.safetensors")
    config = dict(model_type="gpt2", vocab_size=61, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def edit_config(directory, change):
    path = directory / "config.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_the_hub_layout_fixture_loads(hf_folder):
    assert GPT.from_pretrained(hf_folder).config.n_layer == 2


@pytest.mark.parametrize("text", ["[1, 2]", '"gpt2"', "42", "null", "{", "\xff\xfe", ""])
def test_config_that_is_not_a_json_object(folder, text):
    (folder / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError, match="config.json"):
        GPT.from_pretrained(folder)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("vocab_size", None, "'vocab_size' must be a positive integer; got None"),
        ("vocab_size", "61", "'vocab_size' must be a positive integer; got '61'"),
        ("vocab_size", True, "'vocab_size' must be a positive integer; got True"),
        ("n_layer", 2.0, "'n_layer' must be a positive integer; got 2.0"),
        ("n_head", -2, "'n_head' must be a positive integer; got -2"),
        ("n_embd", [32], "'n_embd' must be a positive integer; got [32]"),
        ("n_positions", {}, "'n_positions' must be a positive integer"),
        ("n_inner", "wide", "'n_inner' must be a positive integer or null"),
        ("layer_norm_epsilon", "1e-5", "'layer_norm_epsilon' must be a positive number; got '1e-5'"),
        ("layer_norm_epsilon", 0, "'layer_norm_epsilon' must be a positive number; got 0"),
        ("resid_pdrop", 1.5, "'resid_pdrop' must be a number in [0.0, 1.0)"),
        ("scale_attn_weights", "no", "'scale_attn_weights' must be true or false"),
        ("tie_word_embeddings", 0, "'tie_word_embeddings' must be true or false"),
        ("reorder_and_upcast_attn", None, "'reorder_and_upcast_attn' must be true or false"),
    ],
)
def test_hugging_face_config_with_wrong_types(hf_folder, field, value, expected):
    edit_config(hf_folder, lambda d: d.__setitem__(field, value))
    with pytest.raises(CheckpointError) as err:
        GPT.from_pretrained(hf_folder)
    assert str(err.value).startswith(str(hf_folder / "config.json")) and expected in str(err.value)


@pytest.mark.parametrize("field", ["vocab_size", "n_layer", "n_head", "n_embd", "n_positions"])
def test_hugging_face_config_missing_a_size(hf_folder, field):
    edit_config(hf_folder, lambda d: d.pop(field))
    with pytest.raises(CheckpointError, match=f"field '{field}' must be a positive integer; it is missing"):
        GPT.from_pretrained(hf_folder)


@pytest.mark.parametrize("model_type", [None, "bert", 7])
def test_unknown_model_type(hf_folder, model_type):
    edit_config(hf_folder, lambda d: d.__setitem__("model_type", model_type))
    with pytest.raises(CheckpointError, match="model_type"):
        GPT.from_pretrained(hf_folder)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.__setitem__("config", None), "field 'config' must be an object"),
        (lambda d: d.__setitem__("config", [1]), "field 'config' must be an object"),
        (lambda d: d["config"].__setitem__("vocab_size", True), "vocab_size must be a positive integer, got True"),
        (lambda d: d["config"].__setitem__("dropout", "0.1"), "dropout must be a number in [0, 1)"),
        (lambda d: d["config"].__setitem__("bias", 1), "bias must be True or False"),
        (lambda d: d["config"].__setitem__("n_inner", 0), "n_inner (the MLP width) must be a positive integer"),
        (lambda d: d["config"].__setitem__("layer_norm_eps", -1.0), "layer_norm_eps must be a positive number"),
        (lambda d: d["config"].__setitem__("norm", None), "norm must be 'post' (GPT-1) or 'pre'"),
        (lambda d: d["config"].__setitem__("heads", 2), "Unknown GPTConfig fields ['heads']"),
        (lambda d: d.__setitem__("format", "other"), "field 'format' is 'other'"),
    ],
)
def test_our_config_with_wrong_fields(folder, change, expected):
    edit_config(folder, change)
    with pytest.raises(CheckpointError) as err:
        GPT.from_pretrained(folder)
    assert str(folder / "config.json") in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize(
    "field, value",
    [("n_layer", 10**7), ("n_embd", 2**40), ("vocab_size", 2**40), ("n_positions", 10**12), ("n_inner", 2**40)],
)
def test_absurd_sizes_fail_in_milliseconds(hf_folder, field, value):
    edit_config(hf_folder, lambda d: d.__setitem__(field, value))
    if field == "n_embd":
        edit_config(hf_folder, lambda d: d.__setitem__("n_head", 1))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="does not describe"):
        GPT.from_pretrained(hf_folder)
    assert time.perf_counter() - started < 0.5


def test_absurd_sizes_in_our_format_fail_fast_too(folder):
    edit_config(folder, lambda d: d["config"].__setitem__("n_layer", 10**7))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="n_layer = 10000000, but the file holds 2 layers"):
        GPT.from_pretrained(folder)
    assert time.perf_counter() - started < 0.5


def test_integer_tensors_are_refused(folder):
    state = load_file(folder / "model.safetensors")
    state["transformer.h.0.ln_1.weight"] = torch.ones(32, dtype=torch.int64)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(
        CheckpointError, match=r"not floating-point weights \(1\): \['transformer.h.0.ln_1.weight \(I64\)'"
    ):
        GPT.from_pretrained(folder)


def test_mixed_float_dtypes_are_promoted_to_the_common_type(folder):
    reference = GPT.from_pretrained(folder)
    state = load_file(folder / "model.safetensors")
    state["transformer.wte.weight"] = state["transformer.wte.weight"].half()
    state["transformer.h.1.mlp.c_fc.weight"] = state["transformer.h.1.mlp.c_fc.weight"].double()
    save_file(state, folder / "model.safetensors")
    model = GPT.from_pretrained(folder)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert torch.equal(model.transformer.wte.weight, reference.transformer.wte.weight.half().double())
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, reference.transformer.h[1].mlp.c_fc.weight.double())
    assert model.lm_head.weight is model.transformer.wte.weight


def test_two_keys_for_one_parameter_are_refused(folder):
    state = load_file(folder / "model.safetensors")
    state["h.0.ln_1.weight"] = state["transformer.h.0.ln_1.weight"] + 1
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="holds both .*h.0.ln_1.weight.* same parameter"):
        GPT.from_pretrained(folder)


def test_a_folder_named_model_safetensors(folder):
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors is a folder, not a file"):
        GPT.from_pretrained(folder)


def test_a_folder_named_config_json(folder):
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    with pytest.raises(CheckpointError, match="config.json is a folder, not a file"):
        GPT.from_pretrained(folder)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\xff" * 64, (10**6).to_bytes(8, "little") + b"{}"])
def test_garbage_weights(folder, data):
    (folder / "model.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match="could not be read as safetensors"):
        GPT.from_pretrained(folder)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"vocab_size": True}, "vocab_size must be a positive integer, got True"),
        ({"n_layer": 2.0}, "n_layer must be a positive integer"),
        ({"layer_norm_eps": 0.0}, "layer_norm_eps must be a positive number"),
        ({"layer_norm_eps": float("nan")}, "layer_norm_eps must be a positive number"),
        ({"layer_norm_eps": True}, "layer_norm_eps must be a positive number"),
        ({"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ({"dropout": float("nan")}, "dropout must be a number in [0, 1)"),
        ({"dropout": False}, "dropout must be a number in [0, 1)"),
        ({"n_inner": 0}, "n_inner (the MLP width) must be a positive integer"),
        ({"n_inner": True}, "n_inner (the MLP width) must be a positive integer"),
        ({"bias": "yes"}, "bias must be True or False"),
        ({"scaled_residual_init": 1}, "scaled_residual_init must be True, False or None"),
    ],
)
def test_gptconfig_validation(fields, message):
    with pytest.raises(ValueError) as err:
        GPTConfig.preset("tiny", **fields)
    assert message in str(err.value)


def test_gptconfig_accepts_the_usual_spellings():
    config = GPTConfig.preset("tiny", dropout=0, layer_norm_eps=1e-6, n_inner=100, bias=False)
    assert config.mlp_size == 100 and config.dropout == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(folder, value):
    state = load_file(folder / "model.safetensors")
    state["transformer.h.1.mlp.c_fc.bias"][3] = value
    save_file(state, folder / "model.safetensors")
    with pytest.raises(
        CheckpointError, match=r"NaN or infinite values in 1 tensor\(s\): \['transformer.h.1.mlp.c_fc.bias'\]"
    ):
        GPT.from_pretrained(folder)


@pytest.mark.parametrize("size", [2**40, 2**62])
def test_sizes_cannot_hide_behind_missing_tensors(tmp_path, size):
    save_file({"h.0.ln_1.weight": torch.ones(4)}, tmp_path / "model.safetensors")
    config = dict(model_type="gpt2", vocab_size=size, n_positions=size, n_layer=1, n_head=1, n_embd=size)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"lacks \['wte.weight', 'wpe.weight', 'h.0.mlp.c_fc.weight'\]"):
        GPT.from_pretrained(tmp_path)
