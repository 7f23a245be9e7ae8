"""Trainer: the loss falls, the schedule and weight-decay groups are right, NaNs stop training cleanly."""

import math

import pytest
import torch
from helpers import cyclic_data, quick_config, tiny_model

from gptmini.checkpoint import load_checkpoint, load_train_state
from gptmini.course.recipes import RECIPES, train_config
from gptmini.device import precision
from gptmini.optim import get_lr, param_groups
from gptmini.train import History, TrainConfig, Trainer, TrainingDiverged, train
from gptmini.viz import plot_losses


def test_loss_falls_on_a_tiny_run():
    data = cyclic_data()
    history = train(tiny_model(), data[:3000], data[3000:], **quick_config(max_iters=30, eval_interval=30).to_dict())
    evals = history.of_kind("eval")
    assert [r["step"] for r in evals] == [0, 30]
    assert evals[0]["val_loss"] == pytest.approx(math.log(64), abs=0.3)  # untrained: about uniform over 64 ids
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 1.5
    train_records = history.of_kind("train")
    assert [r["step"] for r in train_records] == list(range(1, 31))
    assert all(r["tokens_per_sec"] > 0 and r["val_loss"] is None for r in train_records)


def test_lr_schedule_warmup_cosine_floor():
    def lr(step):
        return get_lr(step, learning_rate=1.0, min_lr=0.1, warmup_iters=10, decay_iters=110)

    assert lr(0) == pytest.approx(0.1)  # first step: 1/10 of the peak
    assert lr(4) == pytest.approx(0.5)
    assert lr(9) == pytest.approx(1.0)  # the last warm-up step reaches the peak
    assert lr(10) == pytest.approx(1.0)  # the cosine starts at the peak
    assert lr(60) == pytest.approx(0.55)  # halfway down the cosine: (peak + floor) / 2
    assert lr(35) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert lr(110) == lr(500) == pytest.approx(0.1)
    rates = [lr(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    config = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)  # the same, from a config
    assert [config.lr_at(s) for s in range(120)] == [lr(s) for s in range(120)]


def test_linear_decay_is_gpt1_finetuning_schedule():
    def lr(step):
        return get_lr(step, learning_rate=1.0, warmup_iters=10, decay_iters=100, decay="linear")

    assert (lr(0), lr(9), lr(10), lr(55), lr(100)) == pytest.approx((0.1, 1.0, 1.0, 0.5, 0.0))
    with pytest.raises(ValueError, match="decay must be"):
        get_lr(50, learning_rate=1.0, warmup_iters=10, decay_iters=100, decay="step")


def test_weight_decay_only_on_matrices():
    model = tiny_model()
    groups, names = param_groups(model, 0.1)
    decay = {n for n, p in model.named_parameters() if any(p is q for q in groups[0]["params"])}
    no_decay = {n for n, p in model.named_parameters() if any(p is q for q in groups[1]["params"])}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert "transformer.wte.weight" in decay and "transformer.wpe.weight" in decay
    assert "transformer.h.0.attn.c_attn.weight" in decay and "transformer.h.1.mlp.c_proj.weight" in decay
    assert "transformer.h.0.attn.c_attn.bias" in no_decay and "transformer.h.0.ln_1.weight" in no_decay
    assert "transformer.ln_f.bias" in no_decay
    assert not decay & no_decay
    assert len(names) == len(set(names)) == len(list(model.parameters()))  # the tied lm_head counted once
    assert sum(p.numel() for g in groups for p in g["params"]) == model.num_params(non_embedding=False)


def test_callbacks_and_history_agree_and_plot():
    seen = []
    data = cyclic_data()
    trainer = Trainer(tiny_model(), data[:3000], data[3000:], quick_config(log_interval=3), callbacks=[seen.append])
    history = trainer.fit()
    assert seen == history.to_list()
    assert [(r["kind"], r["step"]) for r in seen] == [
        ("eval", 0),
        ("train", 1),
        ("train", 3),
        ("eval", 5),
        ("train", 6),
        ("train", 9),
        ("train", 10),
        ("eval", 10),
    ]
    assert set(seen[1]) >= {"kind", "step", "train_loss", "val_loss", "lr", "tokens_per_sec"}
    assert History.from_list(history.to_list()).to_list() == history.to_list()
    assert history.final_val_loss == seen[-1]["val_loss"]
    assert history.best_val_loss == min(r["val_loss"] for r in seen if r["kind"] == "eval")
    ax = plot_losses(history).axes[0]
    assert len(ax.get_lines()) == 3 and ax.get_legend() is not None
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 3, 6, 9, 10]


def test_estimate_loss_uses_fixed_batches_and_matches_a_manual_mean():
    data = cyclic_data()
    trainer = Trainer(tiny_model(), data[:3000], None, quick_config(eval_iters=3))
    first, second = trainer.estimate_loss(), trainer.estimate_loss()
    assert first == second and first["val"] is None
    from gptmini.data import get_batch

    gen = torch.Generator().manual_seed(trainer.config.seed + 1)
    with torch.no_grad():
        manual = sum(float(trainer.model(*get_batch(data[:3000], 4, 16, "cpu", gen))[1]) for _ in range(3)) / 3
    assert first["train"] == pytest.approx(manual, rel=1e-6)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = cyclic_data()
    out = tmp_path / "run"

    def poison(record):
        if record["kind"] == "train" and record["step"] == 5:  # after the step-4 checkpoint
            with torch.no_grad():
                trainer.model.transformer.wte.weight[3] = float("nan")

    config = quick_config(out_dir=str(out), checkpoint_interval=4, eval_interval=0)
    trainer = Trainer(tiny_model(), data[:3000], data[3000:], config, callbacks=[poison])
    with pytest.raises(TrainingDiverged, match="diverged at step 6") as info:
        trainer.fit()
    assert info.value.step == 6 and info.value.checkpoint == out
    assert "step 4" in str(info.value) and "learning_rate" in str(info.value)
    assert trainer.step == 5  # the NaN step was not applied
    assert load_train_state(out)["step"] == 4
    model, _ = load_checkpoint(out)
    with torch.no_grad():
        logits, loss = model(data[:16].unsqueeze(0), data[1:17].unsqueeze(0))
    assert torch.isfinite(logits).all() and math.isfinite(float(loss))


def test_nan_weights_are_never_saved(tmp_path):
    data = cyclic_data()
    out = tmp_path / "run"

    def poison(record):
        if record["kind"] == "train" and record["step"] == 4:  # a checkpoint step, after the update
            with torch.no_grad():
                trainer.model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("inf")

    config = quick_config(out_dir=str(out), checkpoint_interval=2, eval_interval=0)
    trainer = Trainer(tiny_model(), data[:3000], data[3000:], config, callbacks=[poison])
    with pytest.raises(TrainingDiverged, match="NaN or infinite") as info:
        trainer.fit()
    assert info.value.step == 4
    assert load_train_state(out)["step"] == 2
    model, _ = load_checkpoint(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_data_and_config_are_clear_errors():
    data = cyclic_data()
    with pytest.raises(ValueError, match="vocabulary has 64"):
        Trainer(tiny_model(), data + 60, None, quick_config())
    with pytest.raises(ValueError, match="1-D tensor"):
        Trainer(tiny_model(), data.view(2, -1), None, quick_config())
    with pytest.raises(ValueError, match="longer than the model's context"):
        Trainer(tiny_model(), data, None, quick_config(block_size=64))
    with pytest.raises(ValueError, match="tokens; one training window"):
        Trainer(tiny_model(), data[:10], None, quick_config())
    with pytest.raises(ValueError, match="Unknown training preset 'nope'"):
        train_config("nope")
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="batch_size must be"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        precision("fp16", torch.device("cpu"))
    assert precision("auto", torch.device("cpu")) is None
    assert precision("bf16", torch.device("cpu")) is torch.bfloat16


def test_config_presets_and_round_trip():
    for name in RECIPES:
        config = train_config(name)
        assert TrainConfig.from_dict(config.to_dict()) == config
    char = train_config("shakespeare-char", max_iters=7)
    assert (char.batch_size, char.max_iters, char.learning_rate, char.betas) == (12, 7, 6e-3, (0.9, 0.95))
    with pytest.raises(ValueError, match="Unknown TrainConfig fields"):
        TrainConfig.from_dict({"batch": 3})


def test_bf16_autocast_on_cpu_trains():
    data = cyclic_data()
    trainer = Trainer(tiny_model(), data[:3000], None, quick_config(amp="bf16", max_iters=3, eval_interval=0))
    history = trainer.fit()
    assert trainer.amp_dtype is torch.bfloat16
    assert all(math.isfinite(r["train_loss"]) for r in history.of_kind("train"))


def test_data_of_exactly_one_window_is_enough():
    data = cyclic_data(17)  # block_size 16 + 1: one window, the smallest that trains
    trainer = Trainer(tiny_model(), data, None, quick_config(max_iters=2, eval_interval=0))
    assert math.isfinite(trainer.train_step()[0]) and trainer.step == 1
    with pytest.raises(ValueError, match="has 16 tokens; one training window needs block_size \\+ 1 = 17"):
        Trainer(tiny_model(), data[:16], None, quick_config())


def test_a_compiled_model_is_trained_saved_and_counted_unwrapped(tmp_path):
    data = cyclic_data()
    config = quick_config(max_iters=4, eval_interval=2, out_dir=str(tmp_path / "run"))
    plain = Trainer(tiny_model(), data[:3000], data[3000:], config.replace(out_dir=None)).fit()
    model = tiny_model()
    compiled = torch.compile(model, backend="eager")
    trainer = Trainer(compiled, data[:3000], data[3000:], config)
    history = trainer.fit()
    assert trainer.model is model and trainer.forward_model is compiled
    assert sorted(trainer._param_names) == sorted(n for n, _ in model.named_parameters())  # no "_orig_mod."
    assert [r["train_loss"] for r in history.records] == pytest.approx([r["train_loss"] for r in plain.records])
    saved, _ = load_checkpoint(tmp_path / "run")
    assert set(load_train_state(tmp_path / "run")["optimizer"]) <= set(dict(model.named_parameters()))
    for (name, a), b in zip(model.state_dict().items(), saved.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


class SkippingScaler:
    """Stands in for torch.amp.GradScaler: skips the updates whose call number is in ``skip`` (an fp16 overflow)."""

    def __init__(self, skip):
        self.skip, self.calls, self.scale_value = set(skip), 0, 2.0**16

    def scale(self, loss):
        return loss

    def unscale_(self, optimizer):
        pass

    def step(self, optimizer):
        self.calls += 1
        if self.calls not in self.skip:
            optimizer.step()

    def update(self):
        self.scale_value *= 0.5 if self.calls in self.skip else 1.0

    def get_scale(self):
        return self.scale_value

    def state_dict(self):
        return {}


def test_skipped_fp16_updates_do_not_advance_the_step_or_the_schedule():
    data = cyclic_data()
    config = quick_config(max_iters=5, eval_interval=0, warmup_iters=3)
    trainer = Trainer(tiny_model(), data[:3000], None, config)
    trainer.scaler = SkippingScaler(skip={2, 3})
    lrs = []
    real_step = trainer.optimizer.step

    def spy():
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        real_step()

    trainer.optimizer.step = spy
    history = trainer.fit()
    assert trainer.scaler.calls == 7 and trainer.step == 5  # 7 attempts, 5 real updates
    assert [r["step"] for r in history.of_kind("train")] == [1, 2, 3, 4, 5]
    assert lrs == pytest.approx([config.lr_at(s) for s in range(5)])  # the schedule follows real updates


def test_too_many_skipped_updates_in_a_row_stop_training():
    data = cyclic_data()
    trainer = Trainer(tiny_model(), data[:3000], None, quick_config(eval_interval=0, max_skipped_steps=4))
    trainer.scaler = SkippingScaler(skip=range(1, 1000))
    with pytest.raises(TrainingDiverged, match="skipped 4 updates in a row"):
        trainer.fit()
    assert trainer.scaler.calls == 4 and trainer.step == 0


@pytest.mark.parametrize(
    ("capability", "auto", "bf16_ok"), [((7, 5), torch.float16, False), ((8, 0), torch.bfloat16, True)]
)
def test_precision_follows_the_gpus_compute_capability(monkeypatch, capability, auto, bf16_ok):
    from gptmini.device import describe

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 says (emulation)
    cuda = torch.device("cuda")
    assert precision("auto", cuda) is auto
    if bf16_ok:
        assert precision("bf16", cuda) is torch.bfloat16
        assert describe(cuda) == "cuda (Some GPU, bf16 autocast)"
    else:
        with pytest.raises(ValueError, match="no native bf16"):
            precision("bf16", cuda)
        assert describe(cuda) == "cuda (Some GPU, fp16 autocast + gradient scaler)"
    assert precision("fp16", cuda) is torch.float16 and precision("off", cuda) is None
    assert precision("auto", torch.device("cpu")) is None and describe("cpu") == "cpu (fp32)"


def test_setup_prints_the_precision(monkeypatch, capsys):
    from gptmini.course import setup

    monkeypatch.setenv("GPTMINI_MODE", "fast")
    setup(device="cpu")
    assert "device: cpu (fp32)" in capsys.readouterr().out


def test_more_processes_than_gpus_is_one_clear_line():
    from gptmini.distributed import check_local_gpu

    check_local_gpu(1, 2)
    expected = r"needs GPU 2, but only 2 GPU\(s\) are visible: use torchrun --nproc_per_node 2"
    with pytest.raises(ValueError, match=expected):
        check_local_gpu(2, 2)


def test_mps_random_state_is_saved(monkeypatch):
    from gptmini.rng import get_rng_state, set_rng_state

    restored = []
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: torch.tensor([1, 2, 3], dtype=torch.uint8))
    monkeypatch.setattr(torch.mps, "set_rng_state", restored.append)
    state = get_rng_state(torch.device("mps"))
    assert state["mps"].tolist() == [1, 2, 3] and "cuda" not in state
    set_rng_state(state, torch.device("mps"))
    assert restored[0].tolist() == [1, 2, 3]
    assert set(get_rng_state("cpu")) == {"cpu"}


def test_bench_matches_gpu_names_exactly():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "bench" / "train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.peak_flops("NVIDIA H100 PCIe")[0] == 756e12  # not the SXM's 989e12
    assert bench.peak_flops("NVIDIA L40S")[0] == 362e12  # not the L4's 121e12
    assert bench.peak_flops("NVIDIA H100 80GB HBM3")[0] == 989e12
    assert bench.peak_flops("NVIDIA GeForce RTX 4090") == (None, "'NVIDIA GeForce RTX 4090' is not in the table")
    assert bench.peak_flops("NVIDIA GeForce RTX 4090", 165.2) == (165.2e12, "--peak-tflops")
