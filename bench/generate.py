"""Tokens per second of generate() for the GPT-2 124M shape (random weights), with and without the KV cache,
and Hugging Face transformers' generate() on the same shape and weights beside it.

    python bench/generate.py [--new-tokens 256] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from gptmini import GPT, GPTConfig


def timed(fn, repeats: int = 1) -> float:
    """Best of ``repeats`` runs: the least disturbed by whatever else the machine is doing."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (the no-cache run: once)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt2", dropout=0.0)).to(args.device).eval()
    prompt = torch.randint(0, 50257, (1, args.prompt_tokens), device=args.device)
    n = args.new_tokens
    print(
        f"GPT-2 124M shape, random weights, device={args.device}, threads={torch.get_num_threads()}, "
        f"prompt {args.prompt_tokens} tokens, {n} new tokens, greedy"
    )
    model.generate(prompt, 4, temperature=0)  # warm-up
    results = {}
    for label, cache in (("gptmini, KV cache", True), ("gptmini, no cache", False)):
        seconds = timed(
            lambda c=cache: model.generate(prompt, n, temperature=0, use_cache=c), args.repeats if cache else 1
        )
        results[label] = n / seconds
    if not args.skip_hf:
        from transformers import GPT2Config, GPT2LMHeadModel

        hf = GPT2LMHeadModel(GPT2Config()).to(args.device).eval()
        # Same key names (that is the point of naming modules like the checkpoints); HF's Conv1D wants (in, out).
        state = {
            k: v.t() if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v
            for k, v in model.state_dict().items()
        }
        hf.load_state_dict(state)
        hf.generate(prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
        with torch.no_grad():
            seconds = timed(
                lambda: hf.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0),
                args.repeats,
            )
        results["transformers, KV cache"] = n / seconds
    for label, tps in results.items():
        print(f"{label:26s} {tps:8.1f} tokens/s")
    speedup = results["gptmini, KV cache"] / results["gptmini, no cache"]
    print(f"cache speed-up: {speedup:.1f}x")
    if "transformers, KV cache" in results:
        print(f"gptmini / transformers: {results['gptmini, KV cache'] / results['transformers, KV cache']:.2f}x")


if __name__ == "__main__":
    main()
