"""Load the real GPT-2 / GPT-1 weights (or our own checkpoints) into :class:`gptmini.GPT`, safely.

Only ``model.safetensors`` + ``config.json`` are read: no pickle is ever unpickled. Hugging Face stores the
four Conv1D matrices as (in, out), so they are transposed for ``nn.Linear``; everything else is a key copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import GPTConfig
from .model import GPT

HUB_NAMES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "openai-gpt": "openai-community/openai-gpt",
    "gpt1": "openai-community/openai-gpt",
}
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers in old HF checkpoints
RENAMES = {"tokens_embed.": "wte.", "positions_embed.": "wpe."}  # HF's OpenAIGPT names for GPT-1
FORMAT = "gptmini"


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: missing, unexpected or mis-shaped tensors, or a corrupt file."""


class DownloadError(RuntimeError):
    """The weights could not be fetched from the Hugging Face hub (usually: no network)."""


# ---------------------------------------------------------------- configs
def config_from_hf(hf: dict[str, Any]) -> tuple[GPTConfig, bool]:
    """Translate a Hugging Face ``config.json`` (GPT-2 or OpenAI GPT) to a GPTConfig; also says if it is GPT-1."""
    model_type = hf.get("model_type")
    if model_type not in ("gpt2", "openai-gpt"):
        raise CheckpointError(
            f"config.json has model_type {model_type!r}; gptmini loads 'gpt2' and 'openai-gpt' checkpoints "
            "or its own (written by save_pretrained)."
        )
    act = hf.get("activation_function", hf.get("afn", "gelu_new"))
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise CheckpointError(f"Unsupported activation {act!r} in config.json (expected a GELU)")
    is_gpt1 = model_type == "openai-gpt"
    config = GPTConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf.get("n_positions", hf.get("n_ctx", 1024)),
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        n_inner=hf.get("n_inner"),
        dropout=hf.get("resid_pdrop", 0.1),
        norm="post" if is_gpt1 else "pre",
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        gelu="exact" if act == "gelu" else "tanh",
        name=hf.get("_name_or_path") or model_type,
    )
    return config, True


def read_config(directory: Path) -> tuple[GPTConfig, bool]:
    """(config, weights are in Hugging Face's Conv1D layout) from ``directory/config.json``."""
    path = directory / "config.json"
    if not path.exists():
        raise CheckpointError(
            f"No config.json in {directory}: a checkpoint folder needs config.json and model.safetensors"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err}); the checkpoint is corrupt, re-save or re-download it"
        ) from err
    if data.get("format") == FORMAT:
        return GPTConfig.from_dict(data["config"]), False
    return config_from_hf(data)


# ---------------------------------------------------------------- weights
def _our_key(key: str) -> str | None:
    """Map a checkpoint key to ours (``transformer.h.0...``), or None for keys to skip."""
    if key.startswith("transformer."):
        key = key[len("transformer.") :]
    if key == "lm_head.weight" or key.endswith(IGNORED_SUFFIXES):
        return None  # lm_head is tied to wte; the masks are recomputed
    for old, new in RENAMES.items():
        if key.startswith(old):
            key = new + key[len(old) :]
    return "transformer." + key


def load_weights(model: GPT, weights_path: Path, conv1d: bool) -> None:
    """Read tensors one at a time (memory: the model plus one tensor) and check every key and shape."""
    from safetensors import SafetensorError, safe_open

    expected = {k: v.shape for k, v in model.state_dict().items() if k != "lm_head.weight"}
    state: dict[str, torch.Tensor] = {}
    unexpected, mismatched, mismatched_keys = [], [], set()
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            for key in f.keys():
                ours = _our_key(key)
                if ours is None:
                    continue
                if ours not in expected:
                    unexpected.append(key)
                    continue
                tensor = f.get_tensor(key)
                if conv1d and ours.endswith(CONV1D_WEIGHTS):
                    tensor = tensor.t().contiguous()
                if tensor.shape != expected[ours]:
                    mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[ours])}")
                    mismatched_keys.add(ours)
                    continue
                state[ours] = tensor
    except SafetensorError as err:
        raise CheckpointError(
            f"{weights_path} could not be read as safetensors ({err}); the file is corrupt or incomplete: "
            "delete it and download or save it again."
        ) from err
    missing = sorted(set(expected) - set(state) - mismatched_keys)
    if missing or unexpected or mismatched:
        parts = [
            f"{label} ({len(items)}): {items[:8]}{' ...' if len(items) > 8 else ''}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if items
        ]
        raise CheckpointError(
            f"Checkpoint {weights_path} does not fit the model ({model.config.name}): "
            + "; ".join(parts)
            + ". Is config.json from the same model as the weights?"
        )
    model.load_state_dict(state, strict=False, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # assign=True replaced the tied tensor: tie again


def _download(repo_id: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        config = hf_hub_download(repo_id, "config.json")
        hf_hub_download(repo_id, "model.safetensors")
    except Exception as err:  # offline, DNS failure, HTTP error, missing cache entry: one friendly message
        raise DownloadError(
            f"Could not download {repo_id} from the Hugging Face hub ({type(err).__name__}: {err}).\n"
            "Check the network connection, or load from a local folder that holds config.json and "
            "model.safetensors: GPT.from_pretrained('path/to/folder'). The notebooks fall back to a "
            "checkpoint trained locally (notebooks 05/08, or `python -m gptmini train`)."
        ) from err
    return Path(config).parent


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A local folder as it is; a known name or a hub repo id through the hub cache."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name in HUB_NAMES or name.count("/") == 1 and not path.exists() and not name.startswith((".", "/")):
        return _download(HUB_NAMES.get(name, name))
    raise ValueError(
        f"{name!r} is neither a folder nor a known model. Known names: {', '.join(HUB_NAMES)}; "
        "or pass a folder holding config.json and model.safetensors."
    )


def from_pretrained(
    name_or_path: str | os.PathLike, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> GPT:
    """Build a GPT from a hub name (``"gpt2"``, ``"openai-gpt"``, ...) or a checkpoint folder; eval mode."""
    directory = resolve(name_or_path)
    config, conv1d = read_config(directory)
    weights = directory / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(
            f"No model.safetensors in {directory} (only safetensors weights are loaded, never pickles)"
        )
    with torch.device("meta"):  # no memory for random weights that are overwritten at once
        model = GPT(config)
    load_weights(model, weights, conv1d)
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()


# ---------------------------------------------------------------- saving
def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: a crash leaves the old file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_pretrained(model: GPT, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    """``config.json`` + ``model.safetensors`` in ``directory``, each written atomically; loads with from_pretrained."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    config = {"format": FORMAT, "config": model.config.to_dict(), **(metadata or {})}
    atomic_write(directory / "model.safetensors", lambda p: save_file(state, p, metadata={"format": "pt"}))
    atomic_write(directory / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2)))
