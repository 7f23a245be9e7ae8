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


def setup():
    """Model, data and config shared by the worker and the single-process reference."""
    from gptmini import GPT, GPTConfig
    from gptmini.train import TrainConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny"))
    data = (torch.arange(4000) * 7 % 13 + 3) % 64
    config = TrainConfig(
        batch_size=4, block_size=16, max_iters=STEPS, learning_rate=3e-3, min_lr=3e-4, warmup_iters=2,
        grad_accum_steps=2, eval_interval=3, eval_iters=2, log_interval=1, progress=False, device="cpu",
    )
    return model, data[:3000], data[3000:], config


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


@pytest.mark.slow  # three Python processes start (the launcher and two workers)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_gloo_processes_match_one_process(tmp_path):
    from gptmini.checkpoint import load_checkpoint
    from gptmini.train import Trainer

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()), __file__, str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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
    worker(sys.argv[1])
