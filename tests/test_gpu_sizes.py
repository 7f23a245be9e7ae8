"""Classroom mode on a CUDA GPU picks GPU sizes; on a CPU nothing changes. CUDA is mocked (no GPU here)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from gptmini import GPT, GPTConfig, course
from gptmini.course import (
    by_mode,
    checkpoint_dir,
    checkpoint_name,
    course_model,
    describe_sizes,
    finetune_base_model,
    recipe_for,
    scale,
    setup,
)
from gptmini.expect import expect
from gptmini.pretrained import save_pretrained
from gptmini.recipes import RECIPES, model_config, train_config
from gptmini.tokenizers import CharTokenizer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NANOGPT_SIZES = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)  # config/train_shakespeare_char.py


@pytest.fixture
def classroom(tmp_path, monkeypatch):
    """Classroom mode, an empty GPTMINI_HOME, no device remembered from an earlier setup() call."""
    monkeypatch.setenv("GPTMINI_MODE", "classroom")
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    monkeypatch.delenv("GPTMINI_RECORD", raising=False)
    monkeypatch.setattr(course, "_setup_device", None)
    return tmp_path


@pytest.fixture
def cuda(classroom, monkeypatch):
    """A machine with a T4 (compute capability 7.5), as Colab lends one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    return classroom


@pytest.fixture
def cpu_only(classroom, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    return classroom


def test_by_mode_picks_gpu_values_only_in_classroom_mode_on_cuda(cuda, monkeypatch):
    pick = dict(fast="F", classroom="C", full="X", gpu="G")
    assert scale() == "gpu" and by_mode(**pick) == "G"
    assert by_mode(fast="F", classroom="C") == "C"  # no GPU value given: the CPU one
    assert by_mode(**pick, device="cpu") == "C" and scale("cpu") == "classroom"  # asked to train on the CPU
    assert by_mode(**pick, device="mps") == "C"  # Apple's GPU keeps the CPU sizes
    assert checkpoint_name("gpt1-shakespeare") == "gpt1-shakespeare-gpu"
    assert checkpoint_name("gpt1-shakespeare", "cpu") == "gpt1-shakespeare"
    assert recipe_for("gpt1-shakespeare") == "gpt1-shakespeare-gpu" and recipe_for("tiny") == "tiny"
    with pytest.raises(ValueError, match="Unknown training preset 'nope'"):
        recipe_for("nope")
    monkeypatch.setenv("GPTMINI_MODE", "fast")
    assert by_mode(**pick) == "F" and scale() == "fast"
    assert (
        checkpoint_name("gpt1-shakespeare") == "gpt1-shakespeare" and recipe_for("gpt1-char-2x64") == "gpt1-char-2x64"
    )
    monkeypatch.setenv("GPTMINI_MODE", "full")
    assert by_mode(**pick) == "X"
    assert by_mode(fast="F", classroom="C", gpu="G") == "G"  # full without its own value: classroom's pick here
    assert by_mode(fast="F", classroom="C", gpu="G", device="cpu") == "C"


def test_cpu_values_are_unchanged(cpu_only, monkeypatch):
    pick = dict(fast="F", classroom="C", full="X", gpu="G")
    assert scale() == "classroom" and by_mode(**pick) == "C"
    monkeypatch.setenv("GPTMINI_MODE", "full")
    assert by_mode(**pick) == "X" and by_mode(fast="F", classroom="C", gpu="G") == "C"
    for name in ("gpt1-shakespeare", "gpt1-char-2x64", "gpt1-bpe-train-plays", "shakespeare-char"):
        assert recipe_for(name) == name and checkpoint_name(name) == name


def test_setup_remembers_its_device(cuda, capsys):
    setup(device="cpu")  # on a GPU machine, a notebook told to stay on the CPU keeps the CPU sizes
    assert scale() == "classroom" and by_mode(fast=1, classroom=2, gpu=3) == 2
    assert "mode: classroom | device: cpu" in capsys.readouterr().out
    setup()
    assert "mode: classroom (GPU sizes) | device: cuda (Tesla T4" in capsys.readouterr().out
    assert scale() == "gpu" and by_mode(fast=1, classroom=2, gpu=3) == 3


def test_gpu_variants_change_the_sizes_only():
    """A GPU variant is the same model (tokenizer, text, norm) at nanoGPT's GPU sizes, not a different model."""
    variants = {name: r.gpu for name, r in RECIPES.items() if r.gpu is not None}
    assert set(variants) >= {"gpt1-shakespeare", "gpt1-char-2x64", "gpt1-bpe-train-plays", "shakespeare-char"}
    for name, gpu in variants.items():
        cpu_recipe, gpu_recipe = RECIPES[name], RECIPES[gpu]
        assert gpu_recipe.gpu is None, f"{gpu} is a GPU variant; it has none of its own"
        assert (gpu_recipe.tokenizer, gpu_recipe.text) == (cpu_recipe.tokenizer, cpu_recipe.text)
        small, big = model_config(name, 1024), model_config(gpu, 1024)
        assert big.norm == small.norm and big.name == gpu  # a checkpoint of one is never taken for the other
        assert (big.n_layer, big.n_head, big.n_embd) == (6, 6, 384)
        assert big.n_layer * big.n_embd > small.n_layer * small.n_embd and big.block_size >= small.block_size
    for gpu in ("shakespeare-char-gpu", "gpt1-shakespeare-gpu"):  # nanoGPT's recipe, as it published it
        config, train = model_config(gpu, 65), train_config(gpu)
        assert {k: getattr(config, k) for k in NANOGPT_SIZES} == NANOGPT_SIZES
        assert (train.batch_size, train.max_iters, train.learning_rate, train.min_lr) == (64, 5000, 1e-3, 1e-4)
        assert (train.betas, train.weight_decay, train.eval_interval) == ((0.9, 0.99), 0.1, 250)
    assert train_config("shakespeare-char-gpu").warmup_iters == 100
    assert train_config("gpt1-shakespeare-gpu").warmup_iters == 300  # post-LN: a gentler start


def test_the_sizes_line_says_mode_device_sizes_and_why(cuda, monkeypatch):
    config = model_config("gpt1-shakespeare-gpu", 65)
    with torch.device("meta"):
        params = sum(p.numel() for p in GPT(config).parameters())
    line = describe_sizes(config, "cuda")
    assert line.startswith("classroom mode on cuda (Tesla T4, fp16 autocast + gradient scaler): 6 × 384, 6 heads")
    assert f"context 256, {params / 1e6:.1f}M parameters (GPU sizes" in line and "\n" not in line
    small = model_config("gpt1-shakespeare", 65)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    line = describe_sizes(small)
    assert line.startswith("classroom mode on cpu (fp32): 4 × 128, 4 heads, context 64, 0.8M parameters")
    assert "minutes on a laptop CPU" in line


def _save_tiny(name: str, n_embd: int) -> None:
    tok = CharTokenizer.from_text("abcdefgh \n")
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=n_embd, norm="post")
    save_pretrained(GPT(config), checkpoint_dir(name))
    tok.save(checkpoint_dir(name))


@pytest.fixture
def load_on_cpu(monkeypatch):
    """course._load on the CPU whatever device it is given (the GPU is mocked; the weights must go somewhere)."""
    real = course._load
    monkeypatch.setattr(course, "_load", lambda folder, device: real(folder, torch.device("cpu")))


def test_a_gpu_run_finds_the_gpu_checkpoint_first_and_says_which_sizes_it_loaded(cuda, load_on_cpu, capsys):
    _save_tiny("gpt1-shakespeare", 16)
    model, _, source = course_model()  # only the CPU-size one: used, and its sizes said
    assert model.config.n_embd == 16 and "the gpt1-shakespeare checkpoint from notebook 05 (1 × 16" in source
    _save_tiny("gpt1-shakespeare-gpu", 32)  # notebook 05 ran on this GPU
    model, _, source = course_model()
    assert model.config.n_embd == 32 and "gpt1-shakespeare-gpu checkpoint from notebook 05 (1 × 32" in source
    _, _, source = course_model(device="cpu")  # on the CPU: the CPU-size one, never the GPU one
    assert "the gpt1-shakespeare checkpoint" in source
    _save_tiny("gpt2-shakespeare", 48)
    model, _, _ = course_model(("gpt2-shakespeare", "gpt1-shakespeare"))
    assert model.config.n_embd == 48  # the first name's checkpoint of any size comes before the next name's
    capsys.readouterr()


def test_stand_ins_on_a_gpu_use_the_gpu_recipes_under_their_own_names(cuda, load_on_cpu, monkeypatch, capsys):
    trained, said = [], []

    def fake_train(recipe, steps, folder, device, what, **overrides):
        trained.append((recipe, steps, folder.name, device.type, overrides))
        said.append(what)
        _save_tiny(folder.name, 16)
        model, tok = course._load(folder, device)
        return model, tok, 1.5

    monkeypatch.setattr(course, "_train_recipe", fake_train)
    course_model()
    assert "--preset gpt1-shakespeare-gpu` makes a better one" in said[0]
    finetune_base_model()
    base = ("gpt1-bpe-train-plays-gpu", 2000, "gpt1-bpe-train-plays-gpu-post-2000", "cuda")
    assert trained == [
        ("gpt1-char-6x384", 1000, "gpt1-char-6x384-1000-steps", "cuda", {}),
        (*base, {"max_chars": None, "eval_iters": 20}),
    ]
    _, _, source = course_model()  # the next notebook on this GPU finds the stand-in, nothing trained
    assert len(trained) == 2 and "gpt1-char-6x384 trained earlier for 1000 steps" in source
    monkeypatch.setenv("GPTMINI_MODE", "fast")  # fast mode on a GPU: the CPU recipes, fast steps
    course_model()
    assert trained[-1][:3] == ("gpt1-char-2x64", 60, "gpt1-char-2x64-60-steps")


def test_expect_does_not_judge_a_gpu_run_against_cpu_ranges(cuda, tmp_path, monkeypatch, capsys):
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("GPTMINI_RECORD", str(record))
    expect(1.52, 1.85, 1.95, "the validation loss", mode="classroom")
    assert capsys.readouterr().out == (
        "this run (classroom mode on a CUDA GPU): 1.52; the text's 1.85–1.95 for the validation loss "
        "was measured in classroom mode on a CPU\n"
    )
    expect(1.52, 1.45, 1.55, "the validation loss", mode="gpu")  # a range measured on a GPU is judged there
    assert capsys.readouterr().out == ""
    expect(1.9, 1.45, 1.55, "the validation loss", mode="gpu")
    assert capsys.readouterr().out.startswith("this run: 1.9; the text says 1.45–1.55")
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["run_scale"], r["inside"]) for r in rows] == [("gpu", None), ("gpu", True), ("gpu", False)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    expect(1.52, 1.85, 1.95, "the validation loss", mode="classroom")  # on the CPU: judged as before
    assert capsys.readouterr().out.startswith("this run: 1.52; the text says 1.85–1.95")


def _code(notebook: str) -> str:
    nb = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _gpu_choices(code: str) -> dict[str, object]:
    """Every ``name = by_mode(..., gpu=...)`` and ``field=by_mode(..., gpu=...)`` of a notebook: name -> gpu value."""
    found = {}
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    for node in ast.walk(tree):
        pairs = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            pairs.append((node.targets[0].id, node.value))
        if isinstance(node, ast.Call):
            pairs += [(k.arg, k.value) for k in node.keywords if k.arg]
        for name, value in pairs:
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "by_mode":
                gpu = next((k.value for k in value.keywords if k.arg == "gpu"), None)
                if gpu is not None:
                    found[name] = eval(compile(ast.Expression(gpu), "<gpu>", "eval"), {"dict": dict})
    return found


def test_notebook_05_trains_what_the_gpu_recipe_trains():
    """`python -m gptmini train --preset gpt1-shakespeare-gpu` and notebook 05 on a GPU train the same model."""
    code = _code("05_gpt1_pretraining.ipynb")
    gpu = _gpu_choices(code)
    config, train = model_config("gpt1-shakespeare-gpu", 65), train_config("gpt1-shakespeare-gpu")
    assert gpu["sizes"] == {k: getattr(config, k) for k in gpu["sizes"]} == NANOGPT_SIZES
    for field in ("max_iters", "warmup_iters", "eval_interval", "eval_iters", "batch_size"):
        assert gpu[field] == getattr(train, field), field
    assert 'checkpoint_name("gpt1-shakespeare"' in code and "describe_sizes(config" in code


def test_notebook_08_picks_gpu_sizes_and_saves_them_under_their_own_name():
    code = _code("08_gpt1_to_gpt2.ipynb")
    gpu = _gpu_choices(code)
    assert {k: gpu["sizes"][k] for k in ("n_layer", "n_head", "n_embd", "block_size")} == dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256
    )
    assert gpu["max_iters"] > 300 and 'checkpoint_name("gpt2-shakespeare"' in code and "describe_sizes(" in code
