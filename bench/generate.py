"""Tokens per second of generate() for the GPT-2 124M shape (random weights) against the machine's limit.

Decoding one token reads every weight once (the tied ``wte`` included: it is the output layer), plus the KV
cache so far, so tokens/s <= read bandwidth / bytes read per step (times the batch: one read serves every
row). The script measures the read bandwidth (the best time to sum a 512 MiB float32 tensor), prints that
limit, then each path: gptmini without the cache, with the cache in float32 (row-major weights as ``nn.Linear``
keeps them, and stored column by column with ``gptmini.layout.for_decoding``) and bfloat16, and Hugging Face
transformers' generate() on the same weights, at batch 1 and batch 8.

    python bench/generate.py [--new-tokens 256] [--batch-sizes 1 8] [--device cpu] [--threads N] [--skip-hf]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from gptmini import GPT, GPTConfig
from gptmini.layout import for_decoding


def timed(fn, repeats: int = 1) -> float:
    """Best of ``repeats`` runs: the least disturbed by whatever else the machine is doing."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def read_bandwidth(device: str, mib: int = 512, repeats: int = 10) -> float:
    """Bytes per second that ``tensor.sum()`` reads: a pure read of a tensor far larger than any cache."""
    x = torch.ones(mib * 2**20 // 4, device=device)
    x.sum()
    seconds = timed(lambda: x.sum(), repeats)
    return x.numel() * x.element_size() / seconds


def weight_bytes(model: GPT) -> int:
    """Bytes of weights one decoding step reads: every parameter once (``parameters()`` skips the tied copy)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def cache_bytes(model: GPT, batch: int, prompt: int, new: int) -> float:
    """Keys and values read per step, on average over the run: 2 x layers x positions so far x n_embd."""
    c = model.config
    element = model.transformer.wte.weight.element_size()
    return 2 * c.n_layer * (prompt + new / 2) * c.n_embd * element * batch


def hf_copy(model: GPT, device: str):
    """transformers' GPT2LMHeadModel with our weights (same key names; its Conv1D stores (in, out))."""
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = GPT2LMHeadModel(GPT2Config()).to(device).eval()
    state = {
        k: v.t() if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v
        for k, v in model.state_dict().items()
    }
    hf.load_state_dict(state)
    return hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-no-cache", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (the no-cache run: once)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt2", dropout=0.0)).to(args.device).eval()
    low = GPT(model.config).to(args.device).eval()
    low.load_state_dict(model.state_dict())
    low.to(torch.bfloat16)
    columns = for_decoding(copy.deepcopy(model))  # the same weights, stored column by column (gptmini.layout)
    hf = None if args.skip_hf else hf_copy(model, args.device)
    n, p = args.new_tokens, args.prompt_tokens
    bandwidth = read_bandwidth(args.device)
    print(
        f"GPT-2 124M shape, random weights, device={args.device}, threads={torch.get_num_threads()}, "
        f"prompt {p} tokens, {n} new tokens, greedy, best of {args.repeats}"
    )
    print(f"read bandwidth (sum of a 512 MiB float32 tensor): {bandwidth / 1e9:.1f} GB/s")
    fp32, bf16 = weight_bytes(model) / 1e6, weight_bytes(low) / 1e6
    print(f"weights read per token: {fp32:.1f} MB in float32, {bf16:.1f} MB in bfloat16")
    print(f"\n{'path':33s} {'batch':>5s} {'tokens/s':>9s} {'limit':>9s} {'of limit':>9s}")
    results = {}
    for batch in args.batch_sizes:
        prompt = torch.randint(0, 50257, (batch, p), device=args.device)

        def decode(m: GPT, use_cache: bool = True, prompt: torch.Tensor = prompt) -> None:
            m.generate(prompt, n, temperature=0, use_cache=use_cache)

        runs = [
            ("gptmini, KV cache, fp32", model, lambda: decode(model), args.repeats),
            ("gptmini, KV cache, fp32, columns", columns, lambda: decode(columns), args.repeats),
            ("gptmini, KV cache, bf16", low, lambda: decode(low), args.repeats),
        ]
        if not args.skip_no_cache and batch == 1:
            runs.append(("gptmini, no cache, fp32", model, lambda: decode(model, use_cache=False), 1))
        if hf is not None:

            def run_hf(prompt=prompt):
                with torch.inference_mode():
                    hf.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

            runs.append(("transformers, KV cache, fp32", model, run_hf, args.repeats))
        for label, m, fn, repeats in runs:
            fn() if repeats > 1 else None  # warm-up (the no-cache run is long enough to warm itself)
            tps = batch * n / timed(fn, repeats)
            limit = batch * bandwidth / (weight_bytes(m) + cache_bytes(m, batch, p, n))
            results[label, batch] = tps
            print(f"{label:33s} {batch:5d} {tps:9.1f} {limit:9.1f} {tps / limit:9.0%}")
    for batch in args.batch_sizes:
        ours = max(results["gptmini, KV cache, fp32", batch], results["gptmini, KV cache, fp32, columns", batch])
        if ("gptmini, no cache, fp32", batch) in results:
            print(f"batch {batch}: cache speed-up {ours / results['gptmini, no cache, fp32', batch]:.1f}x")
        if ("transformers, KV cache, fp32", batch) in results:
            print(f"batch {batch}: gptmini / transformers {ours / results['transformers, KV cache, fp32', batch]:.2f}x")


if __name__ == "__main__":
    main()
