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


SAMPLE, TRAIN = ["sample", "--checkpoint", "gpt2"], ["train", "--preset", "tiny"]


@pytest.mark.parametrize(
    "args, message",
    [
        (SAMPLE + ["--temperature", "nan"], "argument --temperature: must be a finite number, got 'nan'"),
        (SAMPLE + ["--temperature", "-1"], "argument --temperature: must be >= 0"),
        (SAMPLE + ["--temperature", "1e-97"], "argument --temperature: must be 0 (greedy) or at least 1e-06"),
        (SAMPLE + ["--temperature", "warm"], "argument --temperature: must be a number, got 'warm'"),
        (SAMPLE + ["--top-p", "1.5"], "argument --top-p: must be in (0, 1]"),
        (SAMPLE + ["--top-p", "0"], "argument --top-p: must be in (0, 1]"),
        (SAMPLE + ["--top-p", "1e-97"], "argument --top-p: must be at least 1e-06"),
        (SAMPLE + ["--top-p", "inf"], "argument --top-p: must be a finite number"),
        (SAMPLE + ["--top-k", "2.5"], "argument --top-k: must be a whole number, got '2.5'"),
        (SAMPLE + ["--top-k", "0"], "argument --top-k: must be >= 1, got 0"),
        (SAMPLE + ["--max-new-tokens", "-3"], "argument --max-new-tokens: must be >= 0"),
        (SAMPLE + ["--seed", "-1"], "argument --seed: must be >= 0"),
        (SAMPLE + ["--seed", str(2**64)], "argument --seed: must be below 2**63"),
        (TRAIN + ["--lr", "nan"], "argument --learning-rate/--lr: must be a finite number"),
        (TRAIN + ["--lr", "0"], "argument --learning-rate/--lr: must be > 0"),
        (TRAIN + ["--eval-interval", "-1"], "argument --eval-interval: must be >= 0"),
        (TRAIN + ["--batch-size", "1e3"], "argument --batch-size: must be a whole number"),
    ],
)
def test_bad_arguments_are_refused_by_name(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gptmini: error:") and message in err and err.count("\n") == 1


def test_bad_files_in_a_checkpoint_are_one_line(trained, tmp_path, capsys):
    import shutil

    out, _ = trained
    broken = tmp_path / "broken"
    for name, text, message in [
        ("config.json", '{"format": "gptmini", "config": {"vocab_size": "many"}}', "vocab_size must be a positive"),
        ("config.json", "[]", "must hold a JSON object"),
        ("model.safetensors", "not safetensors", "could not be read as safetensors"),
        ("tokenizer.json", '{"type": "char", "chars": [1, 2]}', "tokenizer.json"),
        ("tokenizer.json", '{"type": ["char"]}', "tokenizer.json"),
    ]:
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(out, broken)
        (broken / name).write_text(text)
        assert main(["sample", "--checkpoint", str(broken), "--max-new-tokens", "2"]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("gptmini: error:") and message in err and err.count("\n") == 1, err


def test_weights_that_overflow_give_one_line(trained, tmp_path, capsys):
    import shutil

    from safetensors.torch import load_file, save_file

    out, _ = trained
    copy = tmp_path / "huge"
    shutil.copytree(out, copy)
    state = load_file(copy / "model.safetensors")
    state["transformer.wte.weight"] = state["transformer.wte.weight"].sign() * 3e38  # finite, but not for long
    save_file(state, copy / "model.safetensors")
    assert main(["sample", "--checkpoint", str(copy), "--max-new-tokens", "3", "--seed", "0"]) == 2
    err = capsys.readouterr().err
    assert "probabilities are NaN or infinite" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "name, text",
    [
        ("trainer_state.json", "["),
        ("trainer_state.json", "[]"),
        ("trainer_state.json", '{"config": {}}'),
        ("trainer_state.json", '{"config": {"max_iters": "many"}}'),
        ("trainer_state.json", '{"config": {"__tensor__": ["x"]}}'),
        ("trainer_state.safetensors", "garbage"),
    ],
)
def test_resume_from_a_broken_training_state_is_one_line(trained, tmp_path, capsys, name, text):
    import shutil

    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / name).write_text(text)
    args = ["train", "--preset", "tiny", "--max-iters", "14", "--out", str(copy), "--resume", "--no-progress"]
    assert main(args + ["--sample-tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gptmini: error:") and err.count("\n") == 1 and "Traceback" not in err, err
