"""Loading Hugging Face checkpoints: logits and greedy decoding equal transformers', on tiny random models."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from gptmini import GPT, CheckpointError, DownloadError, GPTConfig

VOCAB = 97  # odd sizes catch transposes and off-by-one errors that square, round shapes hide


def make_hf(kind: str):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=VOCAB, n_positions=40, n_embd=36, n_layer=3, n_head=3, n_inner=100)
        return GPT2LMHeadModel(cfg).eval()
    cfg = OpenAIGPTConfig(vocab_size=VOCAB, n_positions=40, n_embd=36, n_layer=3, n_head=3)
    return OpenAIGPTLMHeadModel(cfg).eval()


def strip_prefix(directory):
    """Rewrite a save_pretrained folder the way hub files are stored: no ``transformer.`` prefix."""
    path = directory / "model.safetensors"
    state = load_file(path)
    save_file({k.removeprefix("transformer."): v for k, v in state.items()}, path, metadata={"format": "pt"})


@pytest.fixture(scope="module", params=["gpt2", "gpt1"])
def hf_pair(request, tmp_path_factory):
    hf = make_hf(request.param)
    out = {}
    for prefix in (True, False):
        d = tmp_path_factory.mktemp(f"{request.param}_{prefix}")
        hf.save_pretrained(d)
        if not prefix:
            strip_prefix(d)
        out[prefix] = d
    return request.param, hf, out


@pytest.mark.parametrize("prefix", [True, False])
def test_logits_equal_hugging_face(hf_pair, prefix):
    kind, hf, dirs = hf_pair
    model = GPT.from_pretrained(dirs[prefix])
    assert model.config.norm == ("post" if kind == "gpt1" else "pre")
    idx = torch.randint(0, VOCAB, (3, 29), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(idx).logits
        for impl in ("sdpa", "explicit"):
            logits, _ = model.set_attention(impl)(idx)
            torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generate_equals_hugging_face(hf_pair, use_cache):
    kind, hf, dirs = hf_pair
    model = GPT.from_pretrained(dirs[False])
    prompt = torch.tensor([[5, 17, 3, 88, 41]])
    expected = hf.generate(prompt, max_new_tokens=30, do_sample=False, pad_token_id=0, use_cache=use_cache)
    got = model.generate(prompt, 30, temperature=0, use_cache=use_cache)
    assert got.tolist() == expected.tolist()


def test_our_own_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", norm="post", vocab_size=71)).eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = GPT.from_pretrained(tmp_path)
    assert loaded.config == model.config
    idx = torch.randint(0, 71, (2, 20))
    torch.testing.assert_close(loaded(idx)[0], model(idx)[0], atol=0, rtol=0)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight, "weights must stay tied after loading"


def test_config_sizes_are_checked_against_the_file_before_building(tmp_path, hf_pair):
    _, _, dirs = hf_pair
    config = json.loads((dirs[True] / "config.json").read_text())
    config["n_layer"] = 2  # weights hold 3 layers
    config["n_embd"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((dirs[True] / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError) as err:
        GPT.from_pretrained(tmp_path)
    message = str(err.value)
    assert "config.json does not describe" in message
    assert "n_layer = 2, but the file holds 3 layers" in message and "but wte is (97, 36)" in message


def test_mismatched_checkpoint_lists_the_problems(tmp_path, hf_pair):
    _, _, dirs = hf_pair
    (tmp_path / "config.json").write_text((dirs[False] / "config.json").read_text())
    state = load_file(dirs[False] / "model.safetensors")
    state["h.1.ln_1.weight"] = torch.ones(35)
    state["h.0.attn.extra"] = torch.ones(2)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        GPT.from_pretrained(tmp_path)
    message = str(err.value)
    assert "unexpected keys (1): ['h.0.attn.extra']" in message
    assert "shape mismatches (1): ['h.1.ln_1.weight: checkpoint (35,) vs model (36,)']" in message


def test_missing_keys_are_named(tmp_path, hf_pair):
    _, _, dirs = hf_pair
    (tmp_path / "config.json").write_text((dirs[False] / "config.json").read_text())
    state = load_file(dirs[False] / "model.safetensors")
    del state["h.1.mlp.c_fc.weight"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): \['transformer.h.1.mlp.c_fc.weight'\]"):
        GPT.from_pretrained(tmp_path)


def test_corrupt_weights_file_is_a_clear_error(tmp_path, hf_pair):
    _, _, dirs = hf_pair
    (tmp_path / "config.json").write_text((dirs[False] / "config.json").read_text())
    data = (dirs[False] / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])  # a download cut in half
    with pytest.raises(CheckpointError, match="corrupt or incomplete"):
        GPT.from_pretrained(tmp_path)


def test_only_safetensors_are_loaded(tmp_path):
    GPT(GPTConfig.preset("tiny")).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="never pickles"):
        GPT.from_pretrained(tmp_path)


def test_no_network_gives_a_helpful_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache, and HF_HUB_OFFLINE=1 from conftest
    with pytest.raises(DownloadError) as err:
        GPT.from_pretrained("gpt2")
    message = str(err.value)
    assert "openai-community/gpt2" in message and "local folder" in message and "notebooks" in message


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="Known names: gpt2, gpt2-medium"):
        GPT.from_pretrained("gpt5-mega")


def test_pretrained_does_not_import_the_model_at_runtime():
    """model.py imports pretrained.py; the way back is only for type checkers (no import cycle)."""
    import ast
    from pathlib import Path

    import gptmini.pretrained as module

    tree = ast.parse(Path(module.__file__).read_text())
    runtime = []
    for node in tree.body:  # module level, outside `if TYPE_CHECKING:`
        if isinstance(node, ast.ImportFrom):
            runtime.append(node.module)
    assert "model" not in runtime and "gptmini.model" not in runtime
    assert "TYPE_CHECKING" in Path(module.__file__).read_text()


def test_load_pretrained_builds_the_class_it_is_given(tmp_path):
    from gptmini.pretrained import load_pretrained, save_pretrained

    class Subclass(GPT):
        pass

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny"))
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(Subclass, tmp_path, dtype=torch.float64)
    assert type(loaded) is Subclass and loaded.transformer.wte.weight.dtype == torch.float64
    assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight.double())
