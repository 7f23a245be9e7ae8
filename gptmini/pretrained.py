"""Load the real GPT-2 / GPT-1 weights (or our own checkpoints) into a GPT, safely; save ours.

Only ``model.safetensors`` + ``config.json`` are read: no pickle is ever unpickled. Hugging Face stores the
four Conv1D matrices as (in, out), so they are transposed for ``nn.Linear``; everything else is a key copy.

Files are not trusted: ``config.json`` is type-checked field by field (:mod:`gptmini.fields`), and its sizes
are compared with the safetensors *header* (names, shapes, dtypes; no tensor read) before any module is
built, so a config asking for ten million layers fails at once. Every problem is a :class:`CheckpointError`
(a ``ValueError``) that names the file and what is wrong.

This module does not import :mod:`gptmini.model` (``model.py`` imports it): the loaders take the model
class as their first argument, ``load_pretrained(GPT, "gpt2")``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .config import GPTConfig
from .errors import CheckpointError, DownloadError
from .fields import read_json_object
from .hf_config import LoadSpec, config_from_hf, query_scales
from .utils import unwrap

if TYPE_CHECKING:
    from .model import GPT

__all__ = [
    "CheckpointError",
    "DownloadError",
    "load_pretrained",
    "read_config",
    "resolve",
    "save_pretrained",
]

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
HEAD, WTE, WPE = "lm_head.weight", "transformer.wte.weight", "transformer.wpe.weight"
FLOAT_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


# ---------------------------------------------------------------- configs
def read_config(directory: Path) -> LoadSpec:
    """What ``directory/config.json`` asks for: ours (``format: gptmini``) or Hugging Face's."""
    path = directory / "config.json"
    hint = "; a checkpoint folder needs config.json and model.safetensors: re-save or re-download it"
    data = read_json_object(path, CheckpointError, hint)
    if "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path}: field 'format' is {data['format']!r}; gptmini writes {FORMAT!r}")
        fields = data.get("config")
        if not isinstance(fields, dict):
            raise CheckpointError(f"{path}: field 'config' must be an object of GPTConfig fields, got {fields!r}")
        try:
            return LoadSpec(GPTConfig.from_dict(fields), conv1d=False)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: field 'config': {err}") from err
    return config_from_hf(data, str(path))


# ---------------------------------------------------------------- the safetensors header
def our_key(key: str) -> str | None:
    """Map a checkpoint key to ours (``transformer.h.0...``, or ``lm_head.weight``); None for keys to skip."""
    if key == HEAD or key == "transformer." + HEAD:
        return HEAD
    if key.endswith(IGNORED_SUFFIXES):
        return None  # causal masks: recomputed
    key = key.removeprefix("transformer.")
    for old, new in RENAMES.items():
        if key.startswith(old):
            key = new + key[len(old) :]
    return "transformer." + key


def read_header(weights: Path) -> dict[str, tuple[str, tuple[int, ...], str]]:
    """Our key -> (file key, shape as stored, dtype), from the header only: no tensor is read."""
    from safetensors import safe_open

    if not weights.is_file():
        what = "is a folder, not a file" if weights.is_dir() else "is missing"
        raise CheckpointError(
            f"{weights} {what}: a checkpoint needs model.safetensors (only safetensors weights are loaded, "
            "never pickles)"
        )
    header: dict[str, tuple[str, tuple[int, ...], str]] = {}
    try:
        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():
                ours = our_key(key)
                if ours is None:
                    continue
                if ours in header:
                    raise CheckpointError(
                        f"{weights} holds both {header[ours][0]!r} and {key!r}, which are the same parameter "
                        f"({ours}); keep one of them"
                    )
                view = f.get_slice(key)
                header[ours] = (key, tuple(view.get_shape()), view.get_dtype())
    except CheckpointError:
        raise
    except Exception as err:  # SafetensorError, OSError, a bad header: the file is not usable as it is
        raise CheckpointError(
            f"{weights} could not be read as safetensors ({type(err).__name__}: {err}); the file is corrupt or "
            "incomplete: delete it and download or save it again."
        ) from err
    return header


def _layers_in(header: dict[str, Any]) -> set[int]:
    layers = set()
    for key in header:
        parts = key.split(".")
        if len(parts) > 2 and parts[1] == "h" and parts[2].isdigit():
            layers.add(int(parts[2]))
    return layers


def check_sizes(spec: LoadSpec, header: dict[str, tuple[str, tuple[int, ...], str]], source: Path) -> None:
    """Compare config.json's sizes with the tensors in the file, before a model of that size is built."""
    config, problems = spec.config, []
    fc_key = "transformer.h.0.mlp.c_fc.weight"
    needed = (WTE, WPE) if config.attn_only else (WTE, WPE, fc_key)  # an attention-only model has no MLP
    missing = [key for key in needed if key not in header]
    if missing:  # these fix every size; without them a config could ask for any size at all
        raise CheckpointError(
            f"{source} lacks {[k.removeprefix('transformer.') for k in missing]}, so config.json's sizes cannot be "
            "checked; the file is incomplete or not a GPT checkpoint"
        )
    wte, wpe = header[WTE][1], header[WPE][1]
    if wte != (config.vocab_size, config.n_embd):
        problems.append(f"vocab_size x n_embd = {config.vocab_size} x {config.n_embd}, but wte is {wte}")
    if wpe != (config.block_size, config.n_embd):
        problems.append(f"block_size (n_positions) x n_embd = {config.block_size} x {config.n_embd}, but wpe is {wpe}")
    layers = _layers_in(header)
    if len(layers) != config.n_layer:
        problems.append(f"n_layer = {config.n_layer}, but the file holds {len(layers)} layers")
    fc = header[fc_key][1] if fc_key in header else ()
    width = (fc[-1] if spec.conv1d else fc[0]) if len(fc) == 2 else None
    if not config.attn_only and width != config.mlp_size:
        problems.append(f"the MLP width (n_inner) is {config.mlp_size}, but h.0.mlp.c_fc has shape {fc}")
    if problems:
        raise CheckpointError(
            f"{source.parent / 'config.json'} does not describe {source}: "
            + "; ".join(problems)
            + ". Is config.json from the same model as the weights?"
        )


# ---------------------------------------------------------------- weights
def _compare(expected: dict[str, torch.Size], header: dict, conv1d: bool, weights: Path, name: str) -> None:
    """Missing, unexpected and mis-shaped tensors, all listed in one error; every weight must be a float."""
    missing = sorted(set(expected) - set(header))
    unexpected, mismatched, not_float = [], [], []
    for ours, (key, shape, dtype) in header.items():
        if ours == HEAD:
            continue
        if ours not in expected:
            unexpected.append(key)
            continue
        if dtype not in FLOAT_DTYPES:
            not_float.append(f"{key} ({dtype})")
        if conv1d and ours.endswith(CONV1D_WEIGHTS):
            shape = shape[::-1]
        if shape != tuple(expected[ours]):
            mismatched.append(f"{key}: checkpoint {shape} vs model {tuple(expected[ours])}")
    parts = [
        f"{label} ({len(items)}): {items[:8]}{' ...' if len(items) > 8 else ''}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
            ("not floating-point weights", not_float),
        )
        if items
    ]
    if parts:
        raise CheckpointError(
            f"Checkpoint {weights} does not fit the model ({name}): "
            + "; ".join(parts)
            + ". Is config.json from the same model as the weights?"
        )


def load_weights(model: GPT, weights: Path, spec: LoadSpec, header: dict | None = None) -> None:
    """Read tensors one at a time (memory: the model plus one tensor) into ``model`` (built on any device).

    Mixed float dtypes in one file are promoted to their common type (``torch.promote_types``, as arithmetic
    would), so no weight loses precision. The scales of :func:`~gptmini.hf_config.query_scales` are folded
    into the query rows of ``c_attn``.
    """
    from safetensors import safe_open

    header = read_header(weights) if header is None else header
    expected = {k: v.shape for k, v in model.state_dict().items() if k != HEAD}
    _compare(expected, header, spec.conv1d, weights, model.config.name)
    dtypes = [FLOAT_DTYPES[dtype] for ours, (_, _, dtype) in header.items() if ours != HEAD]
    target = dtypes[0]
    for dtype in dtypes[1:]:
        target = torch.promote_types(target, dtype)
    scales = query_scales(spec)
    n_embd = model.config.n_embd
    state: dict[str, torch.Tensor] = {}
    head, not_finite = None, []
    try:
        with safe_open(str(weights), framework="pt") as f:
            for ours, (key, _, _) in header.items():
                tensor = f.get_tensor(key)
                if ours == HEAD:
                    head = tensor
                    continue
                if spec.conv1d and ours.endswith(CONV1D_WEIGHTS):
                    tensor = tensor.t()
                tensor = tensor.to(target).contiguous()
                if ours.endswith(("attn.c_attn.weight", "attn.c_attn.bias")):
                    scale = scales[int(ours.split(".")[2])]
                    if scale != 1.0:
                        tensor[:n_embd] *= scale
                if not torch.isfinite(tensor).all():
                    not_finite.append(key)
                state[ours] = tensor
    except Exception as err:
        raise CheckpointError(
            f"{weights} could not be read ({type(err).__name__}: {err}); the file is corrupt or incomplete: "
            "delete it and download or save it again."
        ) from err
    if not_finite:
        raise CheckpointError(
            f"{weights} holds NaN or infinite values in {len(not_finite)} tensor(s): {not_finite[:8]}; the file is "
            "corrupt (or was saved from a model whose training diverged): download or save it again."
        )
    _check_head(head, state[WTE], spec, weights)
    model.load_state_dict(state, strict=False, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # assign=True replaced the tied tensor: tie again


def _check_head(head: torch.Tensor | None, wte: torch.Tensor, spec: LoadSpec, weights: Path) -> None:
    """gptmini always ties the output head to ``wte``; a file whose head differs is refused, never dropped."""
    if head is None:
        if not spec.tie_word_embeddings:
            raise CheckpointError(
                f"{weights.parent / 'config.json'}: field 'tie_word_embeddings' is false but {weights} holds no "
                "lm_head.weight; gptmini's output head is always tied to wte"
            )
        return
    if head.shape != wte.shape or not torch.equal(head.to(wte.dtype), wte):
        flag = "" if spec.tie_word_embeddings else " (config.json: 'tie_word_embeddings' is false)"
        raise CheckpointError(
            f"{weights} holds an lm_head.weight that differs from wte{flag}; gptmini ties the output head to "
            "the token embedding, so loading it would silently change the model. Untied heads are not supported."
        )


# ---------------------------------------------------------------- finding the files
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


def load_pretrained(
    cls: type[GPT],
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> GPT:
    """Build ``cls`` (the GPT class) from a hub name (``"gpt2"``, ``"openai-gpt"``, ...) or a folder; eval mode."""
    directory = resolve(name_or_path)
    spec = read_config(directory)
    weights = directory / "model.safetensors"
    header = read_header(weights)
    check_sizes(spec, header, weights)  # before building: absurd sizes fail here, in milliseconds
    try:
        with torch.device("meta"):  # no memory for random weights that are overwritten at once
            model = cls(spec.config)
    except RuntimeError as err:  # e.g. a size that overflows; check_sizes should have caught it already
        raise CheckpointError(f"{directory / 'config.json'} describes a model that cannot be built: {err}") from err
    load_weights(model, weights, spec, header)
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()


# ---------------------------------------------------------------- saving
def file_mode() -> int:
    """0o666 minus the process umask: the mode ``open()`` gives a new file (mkstemp and safetensors give 0o600)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """Write through a temporary file in the same folder, then rename: a crash leaves the old file intact.

    The file gets the permissions a plain ``open()`` would give (0o666 minus the umask), not mkstemp's
    0o600, so a teacher's checkpoints in a shared folder are readable by the class.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # after writing: a writer may replace the file with a 0o600 one
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_pretrained(
    model: torch.nn.Module, directory: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> None:
    """``config.json`` + ``model.safetensors`` in ``directory``, each written atomically; loads with from_pretrained.

    The output head is tied to ``wte`` and not stored; a model whose head differs from ``wte`` is refused
    rather than saved without it.
    """
    import json

    from safetensors.torch import save_file

    model = unwrap(model)
    directory = Path(directory)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    head = state.pop(HEAD, None)
    if head is not None and not (head.shape == state[WTE].shape and torch.equal(head, state[WTE])):
        raise ValueError(
            "lm_head.weight differs from transformer.wte.weight: gptmini's format ties them and would drop "
            "the head. Tie them again (model.lm_head.weight = model.transformer.wte.weight) before saving."
        )
    state = {k: v.contiguous().cpu() for k, v in state.items()}
    config = {"format": FORMAT, "config": model.config.to_dict(), **(metadata or {})}
    atomic_write(directory / "model.safetensors", lambda p: save_file(state, p, metadata={"format": "pt"}))
    atomic_write(directory / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2)))
