"""DistributedDataParallel: two CPU processes on gloo (started by torchrun, loopback only) train like one.

``grad_accum_steps`` counts micro-batches over all processes, so 2 processes x 1 micro-batch must make the
same steps as 1 process x 2 micro-batches: equal loss at step 1 (the same weights on the same batches)
and, up to float summation order, the same losses after it.

Run as a script (``torchrun ... tests/test_ddp.py OUT``) this file is the worker.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

STEPS = 6


def setup(dropout: float = 0.0):
    """Model, data and config shared by the worker and the single-process reference."""
    from gptmini import GPT, GPTConfig
    from gptmini.train import TrainConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", dropout=dropout))
    data = (torch.arange(4000) * 7 % 13 + 3) % 64
    config = TrainConfig(
        batch_size=4,
        block_size=16,
        max_iters=STEPS,
        learning_rate=3e-3,
        min_lr=3e-4,
        warmup_iters=2,
        grad_accum_steps=2,
        eval_interval=3,
        eval_iters=2,
        log_interval=1,
        progress=False,
        device="cpu",
    )
    return model, data[:3000], data[3000:], config


def resume_worker(out: str) -> None:
    """With dropout: 2N steps in one go, and N steps + resume + N steps, in the same two processes."""
    from gptmini.distributed import cleanup_distributed
    from gptmini.train import Trainer

    model, train_ids, val_ids, config = setup(dropout=0.2)
    config = config.replace(max_iters=2 * STEPS, lr_decay_iters=2 * STEPS, eval_interval=0)
    straight = Trainer(model, train_ids, val_ids, config).fit()
    model, train_ids, val_ids, config = setup(dropout=0.2)
    half = config.replace(max_iters=STEPS, lr_decay_iters=2 * STEPS, eval_interval=0, out_dir=str(Path(out) / "half"))
    first = Trainer(model, train_ids, val_ids, half).fit()
    torch.manual_seed(12345)  # whatever happens between the runs must not matter
    resumed = Trainer.resume(Path(out) / "half", train_ids, val_ids, max_iters=2 * STEPS)
    assert resumed.step == STEPS
    assert [r["train_loss"] for r in first.records] == [r["train_loss"] for r in resumed.history.records]
    history = resumed.fit()
    if resumed.dist.is_main:
        both = {"straight": straight.to_list(), "resumed": history.to_list()}
        (Path(out) / "resume.json").write_text(json.dumps(both))
    cleanup_distributed()


def worker(out: str) -> None:
    from gptmini.distributed import cleanup_distributed
    from gptmini.train import Trainer

    model, train_ids, val_ids, config = setup()
    trainer = Trainer(model, train_ids, val_ids, config.replace(out_dir=str(Path(out) / "ckpt")))
    assert trainer.dist.world_size == 2
    history = trainer.fit()
    if trainer.dist.is_main:
        (Path(out) / "history.json").write_text(json.dumps(history.to_list()))
    cleanup_distributed()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(out: Path, mode: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()), __file__, str(out), mode,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow  # three Python processes start (the launcher and two workers)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_gloo_processes_resume_exactly_with_dropout(tmp_path):
    """Each process's dropout stream is saved and taken back: N + resume + N steps equal 2N steps, bit for bit."""
    run_two_processes(tmp_path, "resume")
    both = json.loads((tmp_path / "resume.json").read_text())
    straight = [r["train_loss"] for r in both["straight"] if r["kind"] == "train"]
    resumed = [r["train_loss"] for r in both["resumed"] if r["kind"] == "train"]
    assert len(straight) == len(resumed) == 2 * STEPS
    assert resumed == straight


@pytest.mark.slow  # three Python processes start (the launcher and two workers)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_gloo_processes_match_one_process(tmp_path):
    from gptmini.checkpoint import load_checkpoint
    from gptmini.train import Trainer

    run_two_processes(tmp_path, "train")
    ddp = json.loads((tmp_path / "history.json").read_text())

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, train_ids, val_ids, config = setup()
        single = Trainer(model, train_ids, val_ids, config).fit().to_list()
    finally:
        torch.set_num_threads(before)

    assert [(r["kind"], r["step"]) for r in ddp] == [(r["kind"], r["step"]) for r in single]
    ddp_train = [r["train_loss"] for r in ddp if r["kind"] == "train"]
    one_train = [r["train_loss"] for r in single if r["kind"] == "train"]
    assert ddp_train[0] == pytest.approx(one_train[0], rel=1e-6)  # step 1: same weights, same batches
    assert ddp_train == pytest.approx(one_train, rel=1e-4)  # then: same updates up to summation order
    assert ddp_train[-1] < ddp_train[0] - 0.3  # and it did learn
    ddp_val = [r["val_loss"] for r in ddp if r["kind"] == "eval"]
    assert ddp_val == pytest.approx([r["val_loss"] for r in single if r["kind"] == "eval"], rel=1e-4)
    saved, _ = load_checkpoint(tmp_path / "ckpt")  # rank 0 wrote the checkpoint
    for (name, a), b in zip(model.state_dict().items(), saved.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


if __name__ == "__main__":
    (resume_worker if sys.argv[2] == "resume" else worker)(sys.argv[1])
