"""Notebook 12's scale ladder as a table: every rung trained (or loaded), its loss, compute and abilities.

    GPTMINI_MODE=classroom python bench/ladder.py              # the CPU ladder (trains the missing rungs)
    GPTMINI_MODE=fast python bench/ladder.py --n 40            # seconds: a look at the columns, not a result
    python bench/ladder.py --home /tmp/fresh --threads 1       # from an empty GPTMINI_HOME: the wall times too

For each rung (:data:`gptmini.course.recipes.LADDER`, or its GPU variant on a CUDA GPU in classroom mode): non-embedding
parameters N, training tokens D, compute 6·N·D, the wall time of its training (when this run or an earlier one
of :func:`gptmini.course.ladder_model` trained it: a teacher's checkpoint has none), the validation loss on 256
fixed windows (nats per character), and the accuracy ± one standard error of each task of
:mod:`gptmini.abilities`. Then the power laws of loss against N and against compute, with 95 % intervals.
Wall times depend on the machine and its load: the script prints ``nproc`` and the load average beside them.
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="items per task (default 200)")
    parser.add_argument("--home", help="GPTMINI_HOME (default: the course's)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.home:
        os.environ["GPTMINI_HOME"] = args.home
    if args.threads:
        torch.set_num_threads(args.threads)

    from gptmini.abilities import ability_items, score_abilities
    from gptmini.course import ladder_model, mode, setup
    from gptmini.course.recipes import LADDER
    from gptmini.data import shakespeare, train_val_split
    from gptmini.scaling import fit_power_law, window_loss
    from gptmini.sizes import flops, non_embedding_params

    setup()
    print(f"nproc {os.cpu_count()}, torch threads {torch.get_num_threads()}, load before {os.getloadavg()}")
    _, val_text = train_val_split(shakespeare())
    items = ability_items(args.n)
    rows = []
    started = time.perf_counter()
    for rung in LADDER:
        model, tok, run = ladder_model(rung)
        n = non_embedding_params(model.config)
        loss = window_loss(model, torch.tensor(tok.encode(val_text)), n_windows=256)
        scores = score_abilities(model, tok, items)
        rows.append(dict(run, n=n, flops=flops(n, run["tokens"]), loss=loss, scores=scores))
    print(f"ladder ready and scored in {time.perf_counter() - started:.0f} s; load after {os.getloadavg()}")

    tasks = list(items)
    head = f"| rung | N (non-emb.) | tokens D | 6·N·D | train s | val loss | {' | '.join(tasks)} |"
    print(f"\n{mode()} mode, {len(LADDER)} rungs, {args.n} items a task\n")
    print(head)
    print("|" + "---|" * (6 + len(tasks)))
    for r in rows:
        secs = "not measured" if r["seconds"] is None else f"{r['seconds']:.0f}"
        accs = " | ".join(f"{s.accuracy:.0%} ± {s.se:.0%}" for s in r["scores"].values())
        print(
            f"| {r['recipe']} | {r['n'] / 1e3:.0f}K | {r['tokens'] / 1e6:.2f}M | {r['flops']:.2e} | {secs} | "
            f"{r['loss']:.3f} | {accs} |"
        )
    chance = " | ".join(f"{s.chance:.0%}" for s in rows[0]["scores"].values())
    print(f"| chance | | | | | | {chance} |")
    by_n = fit_power_law([r["n"] for r in rows], [r["loss"] for r in rows])
    by_c = fit_power_law([r["flops"] for r in rows], [r["loss"] for r in rows])
    print(f"\nloss against N:       exponent {by_n.exponent:.3f} (95 % interval {by_n.low:.3f} … {by_n.high:.3f})")
    print(f"loss against compute: exponent {by_c.exponent:.3f} (95 % interval {by_c.low:.3f} … {by_c.high:.3f})")
    small, big = rows[0]["scores"], rows[-1]["scores"]
    for task in tasks:
        gap = big[task].accuracy - small[task].accuracy
        se = (big[task].se ** 2 + small[task].se ** 2) ** 0.5
        print(f"{task:14} biggest - smallest rung: {gap:+.1%} ({gap / se if se else float('nan'):+.1f} SE)")


if __name__ == "__main__":
    main()
