"""Property tests: random JSON in config.json / tokenizer.json and random bytes in model.safetensors reach the
loaders and the CLI, and the only outcomes are a loaded model (or tokenizer) or a ValueError-family error
with a message; the CLI answers one line and exit code 2, never a traceback."""

import contextlib
import io
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptmini import GPT, GPTConfig
from gptmini.checkpoint import save_checkpoint
from gptmini.cli import main
from gptmini.tokenizers import CharTokenizer, Tokenizer, load_tokenizer

EXAMPLES = int(os.environ.get("GPTMINI_FUZZ_EXAMPLES", "60"))  # raise it for a longer hunt
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HF_FIELDS = [
    "model_type", "vocab_size", "n_positions", "n_ctx", "n_layer", "n_head", "n_embd", "n_inner", "afn",
    "activation_function", "layer_norm_epsilon", "resid_pdrop", "scale_attn_weights", "tie_word_embeddings",
    "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention", "_name_or_path",
]  # fmt: skip
OUR_FIELDS = ["vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_inner", "dropout", "norm", "bias",
              "layer_norm_eps", "gelu", "scaled_residual_init", "name"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny trained-for-nothing checkpoint with a char tokenizer, and its config in Hugging Face's form."""
    tok = CharTokenizer("abcdefgh \n")
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size, n_layer=1, block_size=16))
    folder = tmp_path_factory.mktemp("fuzz") / "ck"
    save_checkpoint(folder, model, tokenizer=tok)
    return folder


@contextlib.contextmanager
def broken_copy(folder: Path, name: str, data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ck"
        shutil.copytree(folder, copy)
        (copy / name).write_bytes(data)
        yield copy


def loads_or_value_error(load):
    try:
        return load()
    except ValueError as err:
        assert str(err).strip(), "an error needs a message"
        return None


def cli_answers_cleanly(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = err.getvalue()
    assert "Traceback" not in text
    if code != 0:
        assert code == 2 and text.startswith("gptmini: error: ") and text.count("\n") == 1, (code, text)
    return code


def mutated_config(original: dict, fields: list[str]):
    """A valid config with some fields replaced, removed or added (these get past the first checks)."""
    changes = st.dictionaries(st.sampled_from(fields), json_values | st.just("<drop>"), min_size=1, max_size=3)

    def apply(change):
        data = json.loads(json.dumps(original))
        target = data["config"] if "config" in data else data
        for key, value in change.items():
            if value == "<drop>":
                target.pop(key, None)
            else:
                target[key] = value
        return data

    return changes.map(apply)


@SETTINGS
@given(data=st.data())
def test_random_config_json(checkpoint, data):
    ours = json.loads((checkpoint / "config.json").read_text())
    hf = {"model_type": "gpt2", "vocab_size": 10, "n_positions": 16, "n_layer": 1, "n_head": 2, "n_embd": 32}
    config = data.draw(
        json_values | mutated_config(ours, OUR_FIELDS) | mutated_config(hf, HF_FIELDS), label="config.json"
    )
    raw = data.draw(st.sampled_from([json.dumps(config).encode(), json.dumps(config)[:-1].encode()]))
    with broken_copy(checkpoint, "config.json", raw) as folder:
        model = loads_or_value_error(lambda: GPT.from_pretrained(folder))
        assert model is None or isinstance(model, GPT)
        code = cli_answers_cleanly(["sample", "--checkpoint", str(folder), "--max-new-tokens", "2", "--seed", "0"])
        assert (code == 0) == (model is not None)


def safetensors_bytes(header, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "BOOL", "U8", "F8_E4M3", "X"]),
        "shape": st.lists(st.integers(0, 40), max_size=3),
        "data_offsets": st.lists(st.integers(0, 5000), min_size=2, max_size=2),
    }
)


@SETTINGS
@given(data=st.data())
def test_random_safetensors(checkpoint, data):
    valid = (checkpoint / "model.safetensors").read_bytes()
    names = ["transformer.wte.weight", "h.0.ln_1.weight", "wpe.weight", "h.0.mlp.c_fc.weight", "lm_head.weight", "x"]
    keys = st.sampled_from(names)
    choice = data.draw(st.integers(0, 3), label="kind")
    if choice == 0:
        raw = data.draw(st.binary(max_size=200), label="bytes")
    elif choice == 1:
        header = data.draw(st.dictionaries(keys, tensor_entries | json_values, max_size=4), label="header")
        raw = safetensors_bytes(header, data.draw(st.binary(max_size=600)))
    elif choice == 2:  # a valid file with a few bytes changed
        raw = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw)
    else:  # a valid file cut short
        raw = valid[: data.draw(st.integers(0, len(valid) - 1))]
    with broken_copy(checkpoint, "model.safetensors", raw) as folder:
        model = loads_or_value_error(lambda: GPT.from_pretrained(folder))
        assert model is None or isinstance(model, GPT)
        code = cli_answers_cleanly(["sample", "--checkpoint", str(folder), "--max-new-tokens", "2", "--seed", "0"])
        assert code in (0, 2)


tokenizer_payloads = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["char", "bpe", "gpt1", "gpt2"]) | json_values},
        optional={
            "chars": st.lists(st.text(max_size=2), max_size=12) | json_values,
            "unk": json_values,
            "merges": st.lists(st.lists(st.integers(-2, 300) | json_values, max_size=3), max_size=4) | json_values,
            "special_tokens": st.lists(st.text(max_size=4), max_size=3) | json_values,
            "pattern": st.sampled_from([None, r"\w+", "(", r"\s+"]) | json_values,
            "vocab": st.dictionaries(st.text(max_size=4), st.integers(-1, 20) | json_values, max_size=5),
            "unk_token": json_values,
            "fast": json_values,
        },
    ),
)


@SETTINGS
@given(payload=tokenizer_payloads)
def test_random_tokenizer_json(checkpoint, payload):
    with broken_copy(checkpoint, "tokenizer.json", json.dumps(payload).encode()) as folder:
        tok = loads_or_value_error(lambda: load_tokenizer(folder))
        assert tok is None or isinstance(tok, Tokenizer)
        cli_answers_cleanly(["sample", "--checkpoint", str(folder), "--max-new-tokens", "2", "--prompt", "a"])


@SETTINGS
@given(
    flag=st.sampled_from(["--temperature", "--top-p", "--top-k", "--max-new-tokens", "--seed", "--num-samples"]),
    value=st.text(max_size=6) | st.floats().map(str) | st.integers(-5, 5).map(str),
)
def test_random_sampling_arguments(checkpoint, flag, value):
    code = cli_answers_cleanly(["sample", "--checkpoint", str(checkpoint), "--max-new-tokens", "2", flag, value])
    assert code in (0, 2)
