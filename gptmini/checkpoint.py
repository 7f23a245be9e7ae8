"""Training checkpoints that survive a crash: one folder, written whole, swapped in by renames.

A checkpoint folder holds what :func:`gptmini.pretrained.save_pretrained` writes (``config.json`` +
``model.safetensors``, loadable with ``GPT.from_pretrained(folder)``), the tokenizer (``tokenizer.json``),
and, for resuming, ``trainer_state.json`` + ``trainer_state.safetensors`` (optimizer moments, RNG states,
step, history). Tensors go to safetensors and everything else to JSON, so loading never unpickles.

Why a whole folder rather than file by file: the files only make sense together (weights of step 500 with
the optimizer of step 400 would resume wrongly). So a save writes a fresh sibling folder ``.NAME.saving``,
then renames ``NAME`` -> ``.NAME.previous`` and ``.NAME.saving`` -> ``NAME``, then deletes the previous
one. A kill at any moment leaves either the old or the new checkpoint complete; the one gap (between the
two renames, ``NAME`` missing) is repaired by :func:`recover`, which every loader here calls first.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
_TENSOR_REF = "__tensor__"


# ---------------------------------------------------------------- folder names and recovery
def _real(directory: str | os.PathLike) -> Path:
    """Where the checkpoint's files really are: a folder that is a symlink (say, to a bigger disk) is saved
    inside its target, with the sibling folders next to the target, so the link itself is never replaced."""
    directory = Path(directory)
    return directory.resolve() if directory.is_symlink() else directory


def _sibling(directory: Path, tag: str) -> Path:
    return directory.parent / f".{directory.name}.{tag}"


def recover(directory: str | os.PathLike) -> Path:
    """Finish or undo an interrupted save so that ``directory`` is a complete checkpoint again (if one was).

    - ``directory`` missing but ``.NAME.previous`` present: the kill came between the two renames; the
      previous checkpoint is put back (the new one, complete or not, is dropped).
    - a leftover ``.NAME.saving`` is an unfinished save: deleted.
    - a leftover ``.NAME.previous`` next to a present ``directory``: the new one was already in place; deleted.
    """
    directory = Path(directory)
    real = _real(directory)
    previous, saving = _sibling(real, "previous"), _sibling(real, "saving")
    if not real.exists() and previous.is_dir():
        os.replace(previous, real)
        _fsync_dir(real.parent)
    for leftover in (saving, previous):
        if leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)
    return directory


def is_checkpoint(directory: str | os.PathLike) -> bool:
    """True for a folder written by ``save_pretrained`` (our ``config.json`` with ``format: gptmini``)."""
    config = Path(directory) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == "gptmini"
    except (json.JSONDecodeError, OSError, AttributeError):
        return False


def has_train_state(directory: str | os.PathLike) -> bool:
    """True if the folder can be resumed from (not only sampled from)."""
    directory = Path(directory)
    return (directory / STATE_JSON).is_file() and (directory / STATE_TENSORS).is_file()


def _check_replaceable(directory: Path) -> None:
    """Refuse to swap away a folder that is not ours: saving must never delete a user's files."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir()) and not is_checkpoint(directory)):
        raise ValueError(
            f"{directory} exists and is not a gptmini checkpoint; saving replaces the whole folder, so pick a "
            "new or empty folder for out_dir (e.g. checkpoints/my-run)."
        )


def _fsync_dir(directory: Path) -> None:
    """Make renames durable on POSIX; Windows cannot open folders, and its renames need no fsync here."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- tensors + JSON instead of pickle
def split_tensors(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """A JSON-ready copy of ``obj`` in which each tensor is replaced by a reference into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        if key in tensors:
            raise ValueError(f"two tensors would share the key {key!r}")
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()  # own storage: safetensors refuses shared
        return {_TENSOR_REF: key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise TypeError(f"state keys must be strings for JSON, got {k!r} ({type(k).__name__})")
        return {k: split_tensors(v, tensors, f"{prefix}.{k}" if prefix else k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [split_tensors(v, tensors, f"{prefix}.{i}" if prefix else str(i)) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint (JSON + tensors only)")


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Undo :func:`split_tensors`."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR_REF}:
            key = obj[_TENSOR_REF]
            if not isinstance(key, str) or key not in tensors:
                raise ValueError(f"trainer state refers to tensor {key!r}, which is not in {STATE_TENSORS}")
            return tensors[key]
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    from .pretrained import file_mode

    tensors: dict[str, torch.Tensor] = {}
    payload = split_tensors(state, tensors)
    save_file(tensors, str(directory / STATE_TENSORS), metadata={"format": "gptmini-trainer"})
    (directory / STATE_JSON).write_text(json.dumps(payload, indent=1))
    for name in (STATE_TENSORS, STATE_JSON):
        os.chmod(directory / name, file_mode())  # safetensors writes 0o600; a shared folder needs the umask's
        with open(directory / name, "rb") as f:
            os.fsync(f.fileno())


# ---------------------------------------------------------------- save / load
def save_checkpoint(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    tokenizer: Any = None,
    state: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write model (+ tokenizer, + resume ``state``) as one complete folder, replacing the old one atomically.

    ``state`` is any nest of dicts (string keys), lists, numbers, strings and tensors. If anything fails
    midway, the half-written folder is removed and the previous checkpoint is untouched. If ``directory`` is
    a symlink, the swap happens at its target and the link stays.
    """
    from .pretrained import save_pretrained

    given = Path(directory)
    directory = _real(given)
    recover(directory)
    _check_replaceable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    saving, previous = _sibling(directory, "saving"), _sibling(directory, "previous")
    saving.mkdir()
    try:
        save_pretrained(model, saving, metadata=metadata)
        if tokenizer is not None:
            tokenizer.save(saving)
        if state is not None:
            _write_state(saving, state)
        _fsync_dir(saving)
    except BaseException:
        shutil.rmtree(saving, ignore_errors=True)
        raise
    _swap_in(saving, directory, previous)
    return given


def _swap_in(saving: Path, directory: Path, previous: Path) -> None:
    """The two renames; between them ``directory`` is briefly missing, which :func:`recover` repairs."""
    if directory.exists():
        os.replace(directory, previous)
    os.replace(saving, directory)
    _fsync_dir(directory.parent)
    shutil.rmtree(previous, ignore_errors=True)


def load_train_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The resume state saved with a checkpoint (tensors on the CPU)."""
    from safetensors.torch import load_file

    from .fields import read_json_object
    from .pretrained import CheckpointError

    directory = recover(directory)
    if not has_train_state(directory):
        raise CheckpointError(
            f"{directory} holds no training state ({STATE_JSON} + {STATE_TENSORS}), so it cannot be resumed: "
            "it can still be loaded with GPT.from_pretrained for sampling or fine-tuning."
        )
    hint = "; resume from another checkpoint, or start again without --resume"
    payload = read_json_object(directory / STATE_JSON, CheckpointError, hint)
    try:
        tensors = load_file(str(directory / STATE_TENSORS))
    except Exception as err:  # SafetensorError, a bad header, an unreadable file
        raise CheckpointError(
            f"the training state in {directory / STATE_TENSORS} is corrupt ({type(err).__name__}: {err}){hint}"
        ) from err
    try:
        return join_tensors(payload, tensors)
    except ValueError as err:
        raise CheckpointError(f"{directory / STATE_JSON}: {err}{hint}") from err


def load_checkpoint(
    directory: str | os.PathLike, device: str | torch.device | None = None, load_tokenizer: bool = True
) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, tokenizer or None) from a checkpoint folder, after :func:`recover`."""
    from .model import GPT
    from .pretrained import CheckpointError

    directory = Path(directory)
    recover(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"No checkpoint at {directory}. Train one with `python -m gptmini train --preset shakespeare-char "
            f"--out {directory}` or pass the folder of an existing checkpoint."
        )
    model = GPT.from_pretrained(directory, device=device)
    tokenizer = None
    if load_tokenizer and (directory / "tokenizer.json").is_file():
        from .tokenizers import load_tokenizer as _load

        tokenizer = _load(directory)
    return model, tokenizer
