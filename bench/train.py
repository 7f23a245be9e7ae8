"""Training throughput: tokens/s and peak memory of the real training step (``Trainer.train_step``).

    python bench/train.py                 # CPU: the shakespeare-char recipe (4 x 128, context 64, batch 12)
    python bench/train.py --gpu-only      # GPU (when CUDA is present): GPT-2 124M shape, bf16 + SDPA + compile, MFU
    python bench/train.py --gpu-only --amp off --no-compile   # the same in fp32 (TF32 matmuls), for comparison
    python bench/train.py --profile --threads 1                # where one CPU step's time goes (the phases, top ops)

Random token ids stand in for the corpus: throughput does not depend on which tokens are fed. The CPU
figure says how long ``python -m gptmini train --preset shakespeare-char`` (2,000 steps) takes on this
machine; the GPU figure is compared with the hardware's peak as MFU (model FLOPs utilisation), counting
6 FLOPs per parameter per token for the matmuls (forward 2, backward 4) plus the attention scores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from gptmini import GPT, GPTConfig
from gptmini.course.recipes import model_config as model_config_of
from gptmini.course.recipes import train_config
from gptmini.train import TrainConfig, Trainer

# Dense bf16/fp16 tensor-core peaks (no sparsity), FLOP/s, by the exact torch.cuda.get_device_name(): variants of
# one chip differ (an H100 PCIe has 3/4 of the SXM's peak), so a name that is not listed gets no MFU rather than a
# neighbour's peak. Pass --peak-tflops for another GPU.
PEAK_FLOPS = {
    "NVIDIA H200": 989e12,
    "NVIDIA H100 80GB HBM3": 989e12,  # SXM
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H100 NVL": 835e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
    "NVIDIA L40S": 362e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10": 125e12,
    "Tesla T4": 65e12,
    "Tesla V100-SXM2-16GB": 125e12,
    "Tesla V100-SXM2-32GB": 125e12,
    "Tesla V100-PCIE-16GB": 112e12,
    "Tesla V100-PCIE-32GB": 112e12,
}


def peak_flops(name: str, peak_tflops: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from): ``--peak-tflops`` first, else this exact GPU name in the table."""
    if peak_tflops is not None:
        return peak_tflops * 1e12, "--peak-tflops"
    if name in PEAK_FLOPS:
        return PEAK_FLOPS[name], f"the table's entry for {name!r}"
    return None, f"{name!r} is not in the table"


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def flops_per_token(config: GPTConfig, params: int, block_size: int) -> float:
    """Training FLOPs per token: 6 per weight (the position table is a lookup, not a matmul) + attention."""
    attention = 12 * config.n_layer * config.n_embd * block_size  # QK^T and AV, forward + backward
    return 6 * params + attention


def run(model: GPT, config: TrainConfig, steps: int, warmup: int) -> tuple[float, float, Trainer]:
    """(tokens/s, seconds per step) over ``steps`` steps after ``warmup`` untimed ones (compilation, caches)."""
    data = torch.randint(0, model.config.vocab_size, (1_000_000,), generator=torch.Generator().manual_seed(0))
    trainer = Trainer(model, data, None, config)
    trainer.model.train()
    for _ in range(warmup):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer.train_step()  # ends with .item() on the loss, so the GPU has finished each step
    elapsed = time.perf_counter() - started
    trainer.cpu_seconds_per_step = (time.process_time() - cpu_started) / steps
    return steps * trainer.tokens_per_step / elapsed, elapsed / steps, trainer


def cpu_bench(steps: int, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    print(f"== CPU: shakespeare-char recipe, {torch.get_num_threads()} threads, torch {torch.__version__}")
    torch.manual_seed(0)
    model_config = model_config_of("shakespeare-char", vocab_size=71)  # the corpus has 71 distinct characters
    model = GPT(model_config)
    base = peak_rss_mb()
    config = train_config("shakespeare-char", device="cpu", progress=False)
    tokens_per_sec, per_step, trainer = run(model, config, steps, warmup=5)
    params = model.num_params()
    print(f"model: {params / 1e6:.2f}M parameters (without positions); {trainer.tokens_per_step} tokens per step")
    print(f"throughput: {tokens_per_sec:,.0f} tokens/s, {per_step * 1000:.1f} ms per step")
    cpu = trainer.cpu_seconds_per_step
    print(  # with one thread, CPU time does not count the time other jobs on the machine took from us
        f"per CPU-second of this process: {trainer.tokens_per_step / cpu:,.0f} tokens/s, "
        f"{cpu * 1000:.1f} CPU-ms per step"
    )
    print(
        f"estimated time for {config.max_iters} steps: {per_step * config.max_iters / 60:.1f} min "
        f"(plus {config.max_iters // config.eval_interval + 1} evaluations of {2 * config.eval_iters} batches)"
    )
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB for the process, {peak_rss_mb() - base:.0f} MB above the model")


def _timed(fn, times: list[float]):
    started = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - started)
    return out


def profile_step(steps: int, threads: int | None, name: str = "shakespeare-char") -> None:
    """Where one CPU training step of a recipe goes: data, forward, backward, clipping, optimizer, the rest.

    The phases are timed one by one over ``steps`` steps of the same work as :func:`gptmini.train.train_step`
    (medians, milliseconds); "the rest" is the median whole ``Trainer.train_step`` minus their sum (Python
    between the phases, the learning-rate update, the loss read-out). Then torch's profiler lists the operators
    with the most CPU time, which says whether the time is matrix products or small element-wise kernels.
    """
    from statistics import median

    from torch.profiler import ProfilerActivity, profile

    from gptmini.data import get_batch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT(model_config_of(name, vocab_size=71))
    config = train_config(name, device="cpu", progress=False)
    data = torch.randint(0, 71, (1_000_000,), generator=torch.Generator().manual_seed(0))
    trainer = Trainer(model, data, None, config)
    model.train()
    for _ in range(5):
        trainer.train_step()
    whole = []
    for _ in range(steps):
        _timed(trainer.train_step, whole)
    phases: dict[str, list[float]] = {k: [] for k in ("data", "forward", "backward", "clip", "optimizer", "zero_grad")}
    for _ in range(steps):
        x, y = _timed(lambda: get_batch(data, config.batch_size, trainer.block_size), phases["data"])
        _, loss = _timed(lambda x=x, y=y: model(x, y), phases["forward"])
        _timed(loss.backward, phases["backward"])
        _timed(lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip), phases["clip"])
        _timed(trainer.optimizer.step, phases["optimizer"])
        _timed(lambda: trainer.optimizer.zero_grad(set_to_none=True), phases["zero_grad"])
    ms = {k: 1e3 * median(v) for k, v in phases.items()}
    total = 1e3 * median(whole)
    shape = f"batch {config.batch_size} x {trainer.block_size}, {model.num_params() / 1e6:.2f}M parameters"
    print(f"== one {name} step on the CPU: {torch.get_num_threads()} thread(s), {shape}, medians of {steps} steps")
    for key, value in ms.items():
        print(f"  {key:<10} {value:7.2f} ms  {100 * value / total:5.1f} %")
    rest = total - sum(ms.values())
    print(f"  {'the rest':<10} {rest:7.2f} ms  {100 * rest / total:5.1f} %")
    print(f"  {'step':<10} {total:7.2f} ms  ({trainer.tokens_per_step / total * 1e3:,.0f} tokens/s)")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            trainer.train_step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=36))


def gpu_bench(
    steps: int, batch_size: int, compile_model: bool, peak_tflops: float | None = None, amp: str = "auto"
) -> None:
    name = torch.cuda.get_device_name(0)
    print(f"== GPU: {name}, GPT-2 124M shape, torch {torch.__version__}")
    torch.set_float32_matmul_precision("high")
    torch.manual_seed(0)
    model_config = GPTConfig.preset("gpt2", dropout=0.0)
    model = GPT(model_config)
    config = TrainConfig(
        batch_size=batch_size,
        max_iters=10**6,
        learning_rate=6e-4,
        min_lr=6e-5,
        warmup_iters=100,
        betas=(0.9, 0.95),
        device="cuda",
        amp=amp,
        compile=compile_model,
        progress=False,
        eval_interval=0,
    )
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tokens_per_sec, per_step, trainer = run(model, config, steps, warmup=3)
    params = model.num_params()
    flops = flops_per_token(model_config, params, model_config.block_size) * tokens_per_sec
    peak, peak_source = peak_flops(name, peak_tflops)
    print(
        f"setup: batch {batch_size} x {model_config.block_size} tokens, autocast {trainer.amp_dtype}, "
        f"SDPA attention, compile={compile_model} (warm-up incl. compile: {time.perf_counter() - started:.0f} s in all)"
    )
    print(f"throughput: {tokens_per_sec:,.0f} tokens/s, {per_step * 1000:.1f} ms per step")
    if peak:
        print(
            f"MFU: {100 * flops / peak:.1f} % of a {peak / 1e12:.0f} TFLOP/s peak (from {peak_source}); "
            f"{flops / 1e12:.0f} TFLOP/s achieved"
        )
    else:
        print(f"achieved {flops / 1e12:.0f} TFLOP/s; no MFU: {peak_source} (pass --peak-tflops)")
    print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed CPU steps")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--gpu-steps", type=int, default=30)
    parser.add_argument("--gpu-batch", type=int, default=16)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--amp", default="auto", choices=["auto", "bf16", "fp16", "off"], help="GPU precision (off: fp32, TF32 matmuls)"
    )
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16/fp16 peak, for MFU (default: table)")
    parser.add_argument("--profile", action="store_true", help="only the CPU step profile (phases and top operators)")
    parser.add_argument("--preset", default="shakespeare-char", help="the recipe --profile times")
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--gpu-only", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile_step(args.steps, args.threads, args.preset)
        return
    if not args.gpu_only:
        cpu_bench(args.steps, args.threads)
    if not args.cpu_only:
        if torch.cuda.is_available():
            gpu_bench(args.gpu_steps, args.gpu_batch, not args.no_compile, args.peak_tflops, args.amp)
        else:
            print("== GPU: no CUDA device here; the GPT-2 124M bf16 + compile section is skipped")


if __name__ == "__main__":
    main()
