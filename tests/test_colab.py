"""Colab helpers: Google Drive for checkpoints, the URL from installed metadata, bertviz as an optional extra."""

from __future__ import annotations

import os
import sys
import types
from email.message import Message
from pathlib import Path

import pytest

from gptmini.course import checkpoint_dir, colab


@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """A ``google.colab`` whose ``drive.mount`` records the call and makes the folder, as Colab's does."""
    mounts: list[str] = []

    def mount(mountpoint: str, force_remount: bool = False) -> None:
        mounts.append(mountpoint)
        (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)

    google, google_colab = types.ModuleType("google"), types.ModuleType("google.colab")
    google_colab.drive = types.SimpleNamespace(mount=mount)
    google.colab = google_colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.setenv(colab.DRIVE_ENV, str(tmp_path / "drive"))
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path / "local"))
    return mounts


def test_use_drive_on_colab_mounts_and_moves_checkpoints(fake_colab, tmp_path, capsys):
    target = colab.use_drive()
    assert fake_colab == [str(tmp_path / "drive")]
    assert target == tmp_path / "drive" / "MyDrive" / "gptmini" and target.is_dir()
    assert os.environ["GPTMINI_HOME"] == str(target)
    assert checkpoint_dir("gpt1-shakespeare") == target / "checkpoints" / "gpt1-shakespeare"
    assert "Google Drive" in capsys.readouterr().out


def test_use_drive_elsewhere_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    assert colab.use_drive() == tmp_path
    assert os.environ["GPTMINI_HOME"] == str(tmp_path)
    assert capsys.readouterr().out.strip() == f"not on Colab: checkpoints stay in {tmp_path}"


def test_url_from_installed_metadata(monkeypatch):
    """A pip-installed gptmini has no pyproject.toml: the URL comes from its Project-URL metadata."""
    message = Message()
    message["Project-URL"] = "Documentation, https://example.org/docs"
    message["Project-URL"] = "Repository, https://github.com/a/b/"
    monkeypatch.setattr("importlib.metadata.metadata", lambda name: message)
    assert colab.url_from_metadata() == "https://github.com/a/b"
    empty = Message()
    monkeypatch.setattr("importlib.metadata.metadata", lambda name: empty)
    with pytest.raises(ValueError, match="Repository"):
        colab.url_from_metadata()


def test_usage_line_for_an_unknown_command(capsys):
    from gptmini.course.__main__ import main

    assert main(["sync"]) == 2
    assert "sync-notebooks" in capsys.readouterr().err


def test_show_bertviz_without_bertviz_says_what_to_install(monkeypatch, capsys):
    from gptmini import GPT, GPTConfig
    from gptmini.tokenizers import CharTokenizer
    from gptmini.viz import bertviz as adapter

    tok = CharTokenizer.from_text("to be or not")
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()
    monkeypatch.setitem(sys.modules, "bertviz", None)  # as if not installed: `import bertviz` raises ImportError
    monkeypatch.setenv(adapter.ENV_VAR, "online")
    assert not adapter.bertviz_installed()
    assert adapter.show_bertviz(model, tok, "to be") is None
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [adapter.MISSING_MESSAGE] and "pip install bertviz" in printed[0]
