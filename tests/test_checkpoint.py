"""Checkpoints: exact round trip, exact resume, and no corruption when a save is interrupted."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import quick_config

import gptmini.checkpoint as ckpt
from gptmini import GPT, GPTConfig
from gptmini.checkpoint import (
    has_train_state,
    is_checkpoint,
    join_tensors,
    load_checkpoint,
    load_train_state,
    recover,
    save_checkpoint,
    split_tensors,
)
from gptmini.pretrained import CheckpointError
from gptmini.tokenizers import CharTokenizer
from gptmini.train import Trainer

TEXT = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 40


@pytest.fixture
def corpus():
    tok = CharTokenizer.from_text(TEXT)
    ids = torch.tensor(tok.encode(TEXT))
    return tok, ids[:3000], ids[3000:]


def make_model(tok, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size, dropout=dropout))


def config(**overrides):
    """The quick config of the training tests, with a decay longer than the run (resume must continue it)."""
    return quick_config(**{"max_iters": 6, "lr_decay_iters": 12, "eval_interval": 3, **overrides})


def logits_of(model, ids):
    model.eval()
    with torch.no_grad():
        return model(ids[:32].unsqueeze(0))[0]


def test_round_trip_gives_identical_logits_and_tokenizer(tmp_path, corpus):
    tok, train_ids, val_ids = corpus
    run = config(max_iters=3, out_dir=str(tmp_path / "c"))
    trainer = Trainer(make_model(tok), train_ids, val_ids, run, tokenizer=tok)
    trainer.fit()
    folder = tmp_path / "c"
    assert is_checkpoint(folder) and has_train_state(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "trainer_state.json",
        "trainer_state.safetensors",
    ]
    assert not list(tmp_path.glob(".c.*"))  # no temporary folders left behind
    model, tok2 = load_checkpoint(folder)
    assert torch.equal(logits_of(model, val_ids), logits_of(trainer.model, val_ids))
    assert tok2.encode("whether to be") == tok.encode("whether to be")
    loaded = GPT.from_pretrained(folder)  # the folder is also a plain pretrained-model folder
    assert torch.equal(logits_of(loaded, val_ids), logits_of(trainer.model, val_ids))


def test_resume_equals_uninterrupted(tmp_path, corpus):
    tok, train_ids, val_ids = corpus
    n = 6
    # Uninterrupted: 2n steps. Dropout is on, so the RNG state must be restored too.
    full = Trainer(make_model(tok, dropout=0.1), train_ids, val_ids, config(max_iters=2 * n))
    full_history = full.fit()
    # Interrupted: n steps, checkpoint, a fresh Trainer from the folder, n more steps.
    first = Trainer(make_model(tok, dropout=0.1), train_ids, val_ids, config(max_iters=n, out_dir=str(tmp_path / "r")))
    first.fit()
    resumed = Trainer.resume(tmp_path / "r", train_ids, val_ids, max_iters=2 * n)
    assert resumed.step == n and resumed.config.out_dir == str(tmp_path / "r")
    resumed_history = resumed.fit()
    strip = lambda records: [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in records]  # noqa: E731
    assert strip(resumed_history.to_list()) == strip(full_history.to_list())
    late = [r["train_loss"] for r in full_history.of_kind("train") if r["step"] > n]
    assert len(late) == n and len(set(late)) == n  # real, changing losses were compared
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_crash_while_writing_leaves_previous_checkpoint(tmp_path, corpus, monkeypatch):
    tok, _, val_ids = corpus
    folder = tmp_path / "ck"
    old, new = make_model(tok, seed=1), make_model(tok, seed=2)
    save_checkpoint(folder, old, tokenizer=tok, state={"step": 1, "t": torch.ones(3)})
    real_write_state = ckpt._write_state

    def crash_midway(directory, state):
        real_write_state(directory, state)  # the files are there...
        raise OSError("disk full")  # ...but the save dies before the folder is swapped in

    monkeypatch.setattr(ckpt, "_write_state", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(folder, new, tokenizer=tok, state={"step": 2, "t": torch.zeros(3)})
    assert not list(tmp_path.glob(".ck.*"))
    model, _ = load_checkpoint(folder)
    assert torch.equal(logits_of(model, val_ids), logits_of(old, val_ids))
    assert load_train_state(folder)["step"] == 1


def test_kill_between_the_two_renames_is_recovered(tmp_path, corpus, monkeypatch):
    tok, _, val_ids = corpus
    folder = tmp_path / "ck"
    old, new = make_model(tok, seed=1), make_model(tok, seed=2)
    save_checkpoint(folder, old, tokenizer=tok, state={"step": 1})
    real_replace = os.replace

    def die_on_second_rename(src, dst):
        if str(src).endswith(".ck.saving"):
            assert (tmp_path / ".ck.previous").is_dir()  # the old folder has been moved aside...
            raise KeyboardInterrupt  # ...and the kill comes before the new one is moved in
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(folder, new, tokenizer=tok, state={"step": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    assert not folder.exists() and (tmp_path / ".ck.previous").is_dir()
    model, tok2 = load_checkpoint(folder)  # recovers first
    assert torch.equal(logits_of(model, val_ids), logits_of(old, val_ids))
    assert load_train_state(folder)["step"] == 1 and tok2.vocab_size == tok.vocab_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_during_repeated_saves_leaves_a_loadable_checkpoint(tmp_path):
    folder = tmp_path / "ck"
    script = f"""
import torch
from gptmini import GPT, GPTConfig
from gptmini.checkpoint import save_checkpoint
torch.set_num_threads(1)
model = GPT(GPTConfig.preset("tiny"))
step = 0
while True:
    step += 1
    with torch.no_grad():
        model.transformer.wte.weight.fill_(step)
    save_checkpoint({str(folder)!r}, model, state={{"step": step, "moments": torch.full((4096,), float(step))}})
    print(step, flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        seen = 0
        deadline = time.monotonic() + 120
        while seen < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen = int(line)
        assert seen >= 4, "the saving subprocess did not get going"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    recover(folder)
    state = load_train_state(folder)
    model = GPT.from_pretrained(folder)
    step = state["step"]
    assert step >= seen
    assert torch.equal(state["moments"], torch.full((4096,), float(step)))
    assert torch.all(model.transformer.wte.weight == step)  # weights and state are from the same save


def test_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tmp_path, corpus):
    tok, _, _ = corpus
    (tmp_path / "notes.txt").write_text("my homework")
    with pytest.raises(ValueError, match="not a gptmini checkpoint"):
        save_checkpoint(tmp_path, make_model(tok))
    assert (tmp_path / "notes.txt").read_text() == "my homework"
    save_checkpoint(tmp_path / "empty-is-fine", make_model(tok))
    assert is_checkpoint(tmp_path / "empty-is-fine")


def test_model_only_folder_cannot_be_resumed(tmp_path, corpus):
    tok, _, _ = corpus
    GPT.save_pretrained(make_model(tok), tmp_path / "m")
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        load_train_state(tmp_path / "m")
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "missing")


def test_split_and_join_tensors_round_trip():
    state = {"a": torch.arange(3), "b": [1, {"c": torch.ones(2, 2), "d": "x"}], "e": None, "f": 2.5}
    tensors = {}
    payload = split_tensors(state, tensors)
    assert set(tensors) == {"a", "b.1.c"}
    back = join_tensors(payload, tensors)
    assert torch.equal(back["a"], state["a"]) and torch.equal(back["b"][1]["c"], state["b"][1]["c"])
    assert back["b"][0] == 1 and back["b"][1]["d"] == "x" and back["e"] is None and back["f"] == 2.5
    with pytest.raises(TypeError, match="keys must be strings"):
        split_tensors({1: torch.ones(1)}, {})
    with pytest.raises(TypeError, match="cannot store"):
        split_tensors({"x": object()}, {})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s.pop("optimizer"), "has no 'optimizer'"),
        (lambda s: (s.pop("rng"), s.pop("history")), "has no 'rng', 'history'"),
        (lambda s: s.update(step=-3), "'step' should be a step number >= 0"),
        (lambda s: s.update(history={"a": 1}), "'history' should be a list"),
        (lambda s: s["rng"].pop("batches"), "'rng' has no 'batches'"),
        (lambda s: s["config"].update(max_iters="many"), "saved training settings are not valid"),
        (lambda s: s["config"].update(warp_speed=9), "saved training settings are not valid"),
    ],
)
def test_resume_from_python_names_what_the_state_lacks(tmp_path, corpus, monkeypatch, damage, message):
    """The Python API, not only the CLI: a damaged state is a CheckpointError naming the part, never a KeyError."""
    tok, train_ids, val_ids = corpus
    Trainer(make_model(tok), train_ids, val_ids, config(max_iters=2, out_dir=str(tmp_path / "r"))).fit()
    state = load_train_state(tmp_path / "r")
    damage(state)
    monkeypatch.setattr("gptmini.checkpoint.load_train_state", lambda _: state)
    with pytest.raises(CheckpointError, match=message):
        Trainer.resume(tmp_path / "r", train_ids, val_ids)
    trainer = Trainer(make_model(tok), train_ids, val_ids, config(max_iters=2))
    if "settings" not in message:
        with pytest.raises(CheckpointError, match=message):
            trainer.load_state_dict(state)
        assert trainer.step == 0  # refused before anything changed
