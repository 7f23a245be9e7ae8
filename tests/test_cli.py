"""``python -m gptmini``: train -> checkpoint -> sample end to end, resume, and one-line errors."""

import json
import subprocess
import sys

import pytest
import torch

import gptmini.pretrained as pretrained
from gptmini.checkpoint import load_checkpoint, load_train_state
from gptmini.cli import main
from gptmini.pretrained import DownloadError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short CLI training run shared by the tests below (its printed output is kept)."""
    out = tmp_path_factory.mktemp("cli") / "tiny-run"
    args = ["train", "--preset", "tiny", "--max-iters", "12", "--out", str(out), "--no-progress"]
    args += ["--eval-interval", "6", "--eval-iters", "2", "--sample-tokens", "20"]
    from contextlib import redirect_stdout
    from io import StringIO

    buffer = StringIO()
    torch.set_num_threads(1)
    with redirect_stdout(buffer):
        code = main(args)
    assert code == 0, buffer.getvalue()
    return out, buffer.getvalue()


def test_train_writes_a_checkpoint_and_reports(trained):
    out, printed = trained
    assert "final validation loss" in printed and "Sample:" in printed
    state = load_train_state(out)
    assert state["step"] == 12 and state["config"]["max_iters"] == 12
    evals = [r for r in state["history"] if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 6, 12]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]  # it learned something in 12 steps
    assert f"{evals[-1]['val_loss']:.4f}" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["step"] == 12


def test_sample_from_the_checkpoint_matches_the_model(trained, capsys):
    out, _ = trained
    args = ["sample", "--checkpoint", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "3"]
    assert main(args + ["--top-k", "10"]) == 0
    text = capsys.readouterr().out
    model, tok = load_checkpoint(out)
    ids = tok.encode("ROMEO:")
    expected = tok.decode(model.generate(ids, 30, temperature=0.8, top_k=10, seed=3))
    assert text == expected + "\n"
    assert len(text) == len("ROMEO:") + 30 + 1  # one character per token
    assert main(args + ["--top-k", "10"]) == 0
    assert capsys.readouterr().out == text  # the seed makes it repeatable


def test_resume_continues_from_the_saved_step(trained, tmp_path, capsys):
    import shutil

    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    args = ["train", "--preset", "tiny", "--max-iters", "14", "--out", str(copy), "--resume", "--no-progress"]
    assert main(args + ["--sample-tokens", "0"]) == 0
    assert "Resuming from" in capsys.readouterr().out
    state = load_train_state(copy)
    assert state["step"] == 14
    assert [r["step"] for r in state["history"] if r["kind"] == "train"] == [1, 10, 12, 14]  # log_interval 10, + ends


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["train", "--preset", "nope"], 2, "unknown preset 'nope'; choose one of: shakespeare-char"),
        (["train", "--max-iters", "0"], 2, "must be >= 1"),
        (["sample", "--checkpoint", "no/such/folder/here"], 2, "No checkpoint at no/such/folder/here"),
        (["fly"], 2, "invalid choice: 'fly'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, code, message, capsys):
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and err.startswith("gptmini: error:") and "Traceback" not in err


def test_prompt_with_unknown_characters(trained, capsys):
    out, _ = trained
    assert main(["sample", "--checkpoint", str(out), "--prompt", "Zoë says ∑"]) == 2
    err = capsys.readouterr().err
    assert "cannot be encoded" in err and "'∑'" in err and "'ë'" in err


def test_default_checkpoint_is_the_course_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    assert main(["sample"]) == 2
    assert str(tmp_path / "checkpoints" / "shakespeare-char") in capsys.readouterr().err


def test_offline_hub_weights_give_the_download_message(monkeypatch, capsys):
    def offline(repo_id):
        raise DownloadError(f"Could not download {repo_id} from the Hugging Face hub (offline)")

    monkeypatch.setattr(pretrained, "_download", offline)
    assert main(["sample", "--checkpoint", "gpt2", "--prompt", "Hello"]) == 1
    err = capsys.readouterr().err
    assert "Could not download openai-community/gpt2" in err and "Traceback" not in err


def test_python_dash_m_entry_point(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gptmini", "sample", "--checkpoint", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("gptmini: error: No checkpoint at") and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
