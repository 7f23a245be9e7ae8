"""How long BPE training takes on the whole Shakespeare corpus (target: vocab 1,024 well under a minute, 1 core).

    python bench/bpe.py [--vocab-size 1024]

Prints the corpus size, the training time, the encoding speed and the compression (bytes per token).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # training is pure Python anyway: one core

from gptmini.data import shakespeare  # noqa: E402
from gptmini.tokenizers import BPETokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=1024)
    args = parser.parse_args()

    start = time.perf_counter()
    text = shakespeare()
    load_s = time.perf_counter() - start
    n_bytes = len(text.encode("utf-8"))
    print(f"corpus: {len(text):,} characters, {n_bytes:,} bytes (loaded in {load_s:.1f} s)")

    start = time.perf_counter()
    tok = BPETokenizer().train(text, vocab_size=args.vocab_size, progress=False)
    train_s = time.perf_counter() - start
    print(f"train: vocab {tok.vocab_size} ({tok.num_merges} merges) in {train_s:.1f} s")

    start = time.perf_counter()
    ids = tok.encode(text)
    encode_s = time.perf_counter() - start
    print(f"encode: {len(ids):,} tokens in {encode_s:.1f} s ({n_bytes / len(ids):.2f} bytes per token)")
    assert tok.decode(ids) == text, "round trip failed"
    first = ", ".join(repr(s) for s in tok.token_strings([new_id for _, new_id, _ in tok.history[:8]]))
    print(f"first merges: {first}")


if __name__ == "__main__":
    main()
