"""Classroom mode on a CUDA GPU picks GPU sizes; on a CPU nothing changes. CUDA is mocked (no GPU here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course import (
    by_mode,
    checkpoint_dir,
    checkpoint_name,
    checkpoints,
    course_model,
    describe_sizes,
    finetune_base_model,
    modes,
    recipe_for,
    scale,
    setup,
)
from gptmini.course.expect import expect
from gptmini.course.recipes import RECIPES, model_config, train_config
from gptmini.pretrained import save_pretrained
from gptmini.tokenizers import CharTokenizer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NANOGPT_SIZES = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)  # config/train_shakespeare_char.py


@pytest.fixture
def classroom(tmp_path, monkeypatch):
    """Classroom mode, an empty GPTMINI_HOME, no device remembered from an earlier setup() call."""
    monkeypatch.setenv("GPTMINI_MODE", "classroom")
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    monkeypatch.delenv("GPTMINI_RECORD", raising=False)
    monkeypatch.setattr(modes, "_setup_device", None)
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


def test_the_gpu_scale_is_classroom_mode_on_cuda_and_only_recipes_change_with_it(cuda, monkeypatch):
    assert scale() == "gpu" and scale("cpu") == "classroom" and scale("mps") == "classroom"
    assert by_mode(fast="F", classroom="C", full="X") == "C"  # counts and lengths: the same on every device
    assert checkpoint_name("gpt1-shakespeare") == "gpt1-shakespeare-gpu"
    assert checkpoint_name("gpt1-shakespeare", "cpu") == "gpt1-shakespeare"
    assert recipe_for("gpt1-shakespeare") == "gpt1-shakespeare-gpu" and recipe_for("tiny") == "tiny"
    assert recipe_for("gpt1-shakespeare", scale("cpu")) == "gpt1-shakespeare"  # asked to train on the CPU
    assert recipe_for("gpt1-shakespeare", scale("mps")) == "gpt1-shakespeare"  # Apple's GPU keeps the CPU sizes
    assert model_config("gpt1-shakespeare", 65, scale()).n_embd == 384
    assert model_config("gpt1-shakespeare", 65, scale("cpu")).n_embd == 128
    with pytest.raises(ValueError, match="Unknown training preset 'nope'"):
        recipe_for("nope")
    monkeypatch.setenv("GPTMINI_MODE", "fast")
    assert by_mode(fast="F", classroom="C", full="X") == "F" and scale() == "fast"
    assert (
        checkpoint_name("gpt1-shakespeare") == "gpt1-shakespeare" and recipe_for("gpt1-char-2x64") == "gpt1-char-2x64"
    )
    assert model_config("gpt1-shakespeare", 65, scale()).n_embd == 64
    monkeypatch.setenv("GPTMINI_MODE", "full")
    assert by_mode(fast="F", classroom="C", full="X") == "X"
    assert by_mode(fast="F", classroom="C") == "C"  # full without its own value: classroom's
    assert model_config("gpt1-shakespeare", 65, scale()).block_size == 256  # the recipe's full-mode sizes


def test_cpu_values_are_unchanged(cpu_only, monkeypatch):
    assert scale() == "classroom" and by_mode(fast="F", classroom="C", full="X") == "C"
    monkeypatch.setenv("GPTMINI_MODE", "full")
    assert by_mode(fast="F", classroom="C", full="X") == "X" and by_mode(fast="F", classroom="C") == "C"
    for name in ("gpt1-shakespeare", "gpt1-char-2x64", "gpt1-bpe-train-plays", "shakespeare-char"):
        assert recipe_for(name) == name and checkpoint_name(name) == name


def test_setup_remembers_its_device(cuda, capsys):
    setup(device="cpu")  # on a GPU machine, a notebook told to stay on the CPU keeps the CPU sizes
    assert scale() == "classroom" and recipe_for("gpt1-shakespeare") == "gpt1-shakespeare"
    assert "mode: classroom | device: cpu" in capsys.readouterr().out
    setup()
    assert "mode: classroom (GPU sizes) | device: cuda (Tesla T4" in capsys.readouterr().out
    assert scale() == "gpu" and recipe_for("gpt1-shakespeare") == "gpt1-shakespeare-gpu"


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
        if not name.startswith("ladder-"):  # nanoGPT's GPU sizes; the scale ladder's rungs grow on their own rule
            assert (big.n_head, big.n_embd) == (6, 384) and big.n_layer == (12 if "deep" in gpu else 6)
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
    """checkpoints._load on the CPU whatever device it is given (the GPU is mocked; the weights must go somewhere)."""
    real = checkpoints._load
    monkeypatch.setattr(checkpoints, "_load", lambda folder, device: real(folder, torch.device("cpu")))


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

    def fake_train(recipe, here, folder, device, what, steps):
        trained.append((recipe, steps, folder.name, device.type, here))
        said.append(what)
        _save_tiny(folder.name, 16)
        model, tok = checkpoints._load(folder, device)
        return model, tok, 1.5

    monkeypatch.setattr(checkpoints, "_train_recipe", fake_train)
    course_model()
    assert "--preset gpt1-shakespeare-gpu` makes a better one" in said[0]
    finetune_base_model()
    base = ("gpt1-bpe-train-plays-gpu", 2000, "gpt1-bpe-train-plays-gpu-post-2000", "cuda")
    assert trained == [("gpt1-char-6x384", 1000, "gpt1-char-6x384-1000-steps", "cuda", "gpu"), (*base, "gpu")]
    assert train_config(base[0], "gpu").eval_iters == 20
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


def test_notebook_05_trains_what_the_gpu_recipe_trains():
    """`python -m gptmini train --preset gpt1-shakespeare-gpu` and notebook 05 on a GPU train the same model:
    the notebook asks the recipe for its sizes and training at this run's scale, and restates none of them."""
    code = _code("05_gpt1_pretraining.ipynb")
    assert 'model_config("gpt1-shakespeare", tok.vocab_size, scale())' in code
    assert 'recipe_train_config("gpt1-shakespeare", scale())' in code
    config, train = model_config("gpt1-shakespeare", 65, "gpu"), train_config("gpt1-shakespeare", "gpu")
    assert {k: getattr(config, k) for k in NANOGPT_SIZES} == NANOGPT_SIZES
    assert (train.max_iters, train.warmup_iters, train.eval_interval, train.eval_iters, train.batch_size) == (
        5000,
        300,
        250,
        50,
        64,
    )
    assert 'checkpoint_name("gpt1-shakespeare"' in code and "describe_sizes(config" in code
    assert "gpu=" not in code and "n_embd=384" not in code


def test_notebook_08_picks_gpu_sizes_and_saves_them_under_their_own_name():
    code = _code("08_gpt1_to_gpt2.ipynb")
    assert 'model_config("ln-pair", tokenizer.vocab_size, scale())' in code
    assert 'model_config("ln-pair-deep", tokenizer.vocab_size, scale())' in code
    config, train = model_config("ln-pair", 1024, "gpu"), train_config("ln-pair", "gpu")
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (6, 6, 384, 256)
    assert model_config("ln-pair-deep", 1024, "gpu").n_layer == 12  # GPT-1's depth
    assert train.max_iters > 300 and 'checkpoint_name("gpt2-shakespeare"' in code and "describe_sizes(" in code
    assert "gpu=" not in code
