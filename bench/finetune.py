"""GPT-1's fine-tuning experiments in miniature, on the four Shakespeare tasks and the extra genre task.

1. Pretrain notebook 07's base model, the ``gpt1-bpe-train-plays`` recipe (a post-LN GPT-1, 4 x 128, on a
   1,024-token BPE of the *training plays only*), keeping snapshots along the way; or load a checkpoint
   (``--checkpoint course`` takes the one notebook 07 saved, training it first if it is missing).
2. Zero-shot task scores of each snapshot (no gradient step on the task): "as written or swapped" by
   the line's likelihood, "does B follow A" by pointwise mutual information, same speech by cosine of mean
   hidden states, next line by likelihood, genre by cosine to 16 labelled passages per genre.
3. Fine-tune the pretrained model and a randomly initialised one on every task (L3 with λ = 0.5, the
   same recipe for both); ablate λ (0 vs 0.5) and the number of transferred layers.

    python bench/finetune.py --quick --threads 1  # notebook 07's settings: about 10 min, 1 thread, checkpoint cached
    python bench/finetune.py --save /tmp/ft-model  # the longer run: 3,000 steps, 2,000 examples a task
    python bench/finetune.py --checkpoint /tmp/ft-model  # fine-tuning only, on a saved model
    python bench/finetune.py --pretrain-steps 10000 --device cuda  # a GPU

Accuracies are on examples from held-out plays; with n test examples one standard error is about
sqrt(p (1 - p) / n) (1.6 points at n = 1000 and p = 0.5, 2.5 at n = 400), so differences of 3 points
or less are noise.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from gptmini import GPT
from gptmini.bloom import build_filter, overlap
from gptmini.course import finetune_base_model
from gptmini.course.recipes import prepare, recipe_text, train_config
from gptmini.data import shakespeare_plays
from gptmini.finetune import FineTuneConfig, finetune_task, transfer_layers
from gptmini.tasks import EXTRA_TASKS, TASK_NAMES, shakespeare_tasks, split_plays
from gptmini.train import Trainer
from gptmini.zeroshot import classify_by_similarity, mean_hidden_states, score_texts

ZERO_SHOT_TASKS = (*TASK_NAMES, *EXTRA_TASKS)
RECIPE = "gpt1-bpe-train-plays"  # notebook 07's base model


# ------------------------------------------------------------------------------------- zero-shot
def zero_shot_scores(model: GPT, tok, tasks: dict, n: int) -> dict[str, float]:
    """One task-free score per task, from the language model alone (NaN for a task not built)."""
    out = {name: float("nan") for name in ZERO_SHOT_TASKS}
    if "acceptable" in tasks:  # mean log-prob per token of the line; "as written" for the upper half
        test = tasks["acceptable"].test[:n]
        scores = [s.mean_logprob for s in score_texts(model, tok, ["\n"] * len(test), [ex.texts[0] for ex in test])]
        out["acceptable"] = _median_split_accuracy(scores, [ex.label for ex in test])
    if "next_line" in tasks:
        out["next_line"] = _zero_shot_next_line(model, tok, tasks["next_line"].test[:n])
    if "follows" in tasks:
        out["follows"] = _zero_shot_follows(model, tok, tasks["follows"].test[:n])
    if "same_speech" in tasks:
        out["same_speech"] = _zero_shot_same_speech(model, tok, tasks["same_speech"].test[:n])
    if "genre" in tasks:
        out["genre"] = _zero_shot_genre(model, tok, tasks["genre"], n)
    return out


def _zero_shot_next_line(model: GPT, tok, test: list) -> float:
    ctx, cont, k = [], [], len(test[0].texts) - 1
    for ex in test:
        for choice in ex.texts[1:]:
            ctx.append(ex.texts[0] + "\n")
            cont.append(choice)
    scores = [s.mean_logprob for s in score_texts(model, tok, ctx, cont)]
    picks = [max(range(k), key=lambda j, i=i: scores[i * k + j]) for i in range(len(test))]
    return sum(p == ex.label for p, ex in zip(picks, test, strict=True)) / len(test)


def _zero_shot_follows(model: GPT, tok, test: list) -> float:
    """log P(B | A) - log P(B) per token; "yes" for the upper half (labels are balanced)."""
    cond = score_texts(model, tok, [ex.texts[0] + "\n" for ex in test], [ex.texts[1] for ex in test])
    prior = score_texts(model, tok, ["\n"] * len(test), [ex.texts[1] for ex in test])
    pmi = [c.mean_logprob - p.mean_logprob for c, p in zip(cond, prior, strict=True)]
    return _median_split_accuracy(pmi, [ex.label for ex in test])


def _zero_shot_same_speech(model: GPT, tok, test: list) -> float:
    """Cosine of the two stretches' mean hidden states; "yes" for the upper half."""
    a = mean_hidden_states(model, tok, [ex.texts[0] for ex in test])
    b = mean_hidden_states(model, tok, [ex.texts[1] for ex in test])
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).tolist()
    return _median_split_accuracy(cos, [ex.label for ex in test])


def _zero_shot_genre(model: GPT, tok, task, n: int) -> float:
    """Cosine to the mean representation of 16 training passages per genre."""
    protos = [[ex.texts[0] for ex in task.train if ex.label == g][:16] for g in range(task.n_classes)]
    test = task.test[:n]
    preds, _ = classify_by_similarity(model, tok, [ex.texts[0] for ex in test], protos)
    return sum(p == ex.label for p, ex in zip(preds, test, strict=True)) / len(test)


def _median_split_accuracy(values: list[float], labels: list[int]) -> float:
    cut = statistics.median(values)
    return sum((v > cut) == bool(y) for v, y in zip(values, labels, strict=True)) / len(labels)


# ------------------------------------------------------------------------------------- main
def pretrain(args) -> tuple[GPT, object, dict[int, GPT], dict[int, float], float]:
    """Notebook 07's base model: the ``gpt1-bpe-train-plays`` recipe (post-LN GPT-1, 4 x 128, a 1,024-token
    BPE of the training plays, context 64), trained for ``--pretrain-steps`` with a snapshot at every
    evaluation. Returns (model, tokenizer, snapshots, validation loss per snapshot, seconds)."""
    data = prepare(
        RECIPE,
        max_iters=args.pretrain_steps,
        eval_interval=max(1, args.pretrain_steps // args.snapshots),
        log_interval=50,
        device=args.device,
        progress=False,
        seed=args.seed,
    )
    torch.manual_seed(args.seed)
    model = GPT(data.model_config)
    c, t = data.model_config, data.train_config
    print(
        f"\nmodel: the {RECIPE} recipe, {c.norm}-LN, {c.n_layer} layers x {c.n_embd}, context {c.block_size} BPE "
        f"tokens ({data.tokenizer.vocab_size} in the vocabulary), {model.num_params() / 1e6:.2f}M parameters; "
        f"{t.max_iters} steps of {t.batch_size} x {c.block_size} tokens, lr {t.learning_rate:g}, "
        f"{t.warmup_iters} warm-up; pretraining text {len(data.train_ids):,} tokens; device {args.device}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    snapshots: dict[int, GPT] = {}
    val_loss: dict[int, float] = {}

    def keep(record: dict) -> None:
        if record["kind"] == "eval":
            snapshots[record["step"]] = copy.deepcopy(trainer.model).cpu().eval()
            val_loss[record["step"]] = record["val_loss"]

    trainer = Trainer(model, data.train_ids, data.val_ids, t, callbacks=[keep])
    t0 = time.perf_counter()
    trainer.fit()
    return trainer.model.eval(), data.tokenizer, snapshots, val_loss, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="notebook 07's settings: its checkpoint (--checkpoint course), the four tasks, 3,000 training "
        "examples for follows (1,000 for the others), 400 test examples; λ = 0 and layers on acceptable",
    )
    parser.add_argument("--pretrain-steps", type=int, default=3000)
    parser.add_argument("--checkpoint", default=None, help="a saved model folder, or 'course' for notebook 07's")
    parser.add_argument("--save", default=None, help="save the pretrained model and its tokenizer here")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument(
        "--train-caps", default="", help="fewer training examples for some tasks, e.g. acceptable=1000,next_line=1000"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--distractors", choices=("other_play", "same_play"), default="other_play")
    parser.add_argument("--tasks", default=",".join(ZERO_SHOT_TASKS), help="tasks to build and fine-tune on")
    parser.add_argument("--ablation-tasks", default=",".join(TASK_NAMES), help="tasks for the λ = 0 runs")
    parser.add_argument("--layers-task", default="acceptable", help="task for the layers-transferred ablation")
    parser.add_argument("--zero-shot-n", type=int, default=200)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.checkpoint = args.checkpoint or "course"
        args.n_train, args.n_test, args.tasks, args.ablation_tasks = 3000, 400, ",".join(TASK_NAMES), "acceptable"
        args.train_caps = args.train_caps or "acceptable=1000,same_speech=1000,next_line=1000"
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    plays = shakespeare_plays()
    train_plays, test_plays = split_plays(plays)
    pretrain_text = recipe_text(RECIPE)
    names = [t for t in args.tasks.split(",") if t]
    tasks = shakespeare_tasks(args.n_train, args.n_test, args.seed, plays, names, distractors=args.distractors)
    for cap in filter(None, args.train_caps.split(",")):
        name, _, n = cap.partition("=")
        if name not in tasks or not n.isdigit():
            raise SystemExit(f"--train-caps takes task=N pairs of the tasks built ({', '.join(tasks)}), got {cap!r}")
        tasks[name].train = tasks[name].train[: int(n)]
    test_texts = [t for task in tasks.values() for ex in task.test for t in ex.texts]
    print(
        f"corpus: {len(plays)} plays; pretraining text = the {len(train_plays)} training plays "
        f"({len(pretrain_text):,} characters); task test sets from the {len(test_plays)} held-out plays"
    )
    bloom = build_filter([pretrain_text], n=8)
    print(
        "8-gram overlap with the pretraining text (Bloom filter): task test sets "
        f"{overlap([], test_texts, bloom=bloom):.2%}, whole held-out plays "
        f"{overlap([], [p.text for p in test_plays], bloom=bloom):.2%}"
    )
    for task in tasks.values():
        print(f"  {task!r}")

    # ---------------------------------------------------------------- pretraining (or a checkpoint)
    if args.checkpoint == "course":
        pretrained, tok, source = finetune_base_model(train_config(RECIPE).max_iters, device=args.device)
        snapshots, val_loss = {0: pretrained}, {0: float("nan")}
        print(f"\nmodel: {source}")
    elif args.checkpoint:
        from gptmini.tokenizers import load_tokenizer

        pretrained = GPT.from_pretrained(args.checkpoint).to(args.device)
        tok = load_tokenizer(args.checkpoint)
        snapshots, val_loss = {0: pretrained}, {0: float("nan")}
        print(f"\nmodel: {args.checkpoint} (its pretraining text may include the held-out plays)")
    else:
        pretrained, tok, snapshots, val_loss, seconds = pretrain(args)
        c = pretrained.config
        tokens = args.pretrain_steps * train_config(RECIPE).batch_size * c.block_size
        print(
            f"pretrained {args.pretrain_steps} steps ({tokens:,} tokens) in {seconds:.0f} s; "
            f"val loss {val_loss[min(val_loss)]:.3f} -> {val_loss[max(val_loss)]:.3f}"
        )
        if args.save:
            pretrained.save_pretrained(args.save)
            tok.save(args.save)
            print(f"saved the pretrained model and its tokenizer to {args.save}")
    config = pretrained.config

    # ---------------------------------------------------------------- zero-shot along pretraining
    print("\nzero-shot task scores as pretraining proceeds (no task training):")
    print(f"{'step':>6} {'val loss':>9} " + " ".join(f"{n:>13}" for n in names))
    for step in sorted(snapshots):
        scores = zero_shot_scores(snapshots[step].to(args.device), tok, tasks, args.zero_shot_n)
        print(f"{step:>6} {val_loss[step]:>9.3f} " + " ".join(f"{scores[n]:>13.3f}" for n in names))
    print(f"{'chance':>16} " + " ".join(f"{tasks[n].chance:>13.3f}" for n in names))

    # ---------------------------------------------------------------- fine-tuning
    base = dict(
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=32,
        lm_coef=0.5,
        seed=args.seed,
        device=args.device,
        eval_train=False,
    )

    def run(gpt: GPT, name: str, **changes) -> float:
        _, result = finetune_task(gpt, tok, tasks[name], FineTuneConfig(**{**base, **changes}))
        return result.final_test_accuracy

    torch.manual_seed(args.seed + 1)
    scratch = GPT(config).to(args.device)
    ablate = [t for t in args.ablation_tasks.split(",") if t]
    print(
        f"\nfine-tuning: {args.n_train} train (capped: {args.train_caps or 'none'}) / {args.n_test} test examples, "
        f"{args.epochs} epochs, lr {args.lr}, "
        "batch 32, classifier dropout 0.1, λ = 0.5 unless stated; test accuracy"
    )
    print(
        f"{'task':>13} {'chance':>7} {'scratch':>8} {'pretrained':>11} {'gain':>6} {'± 2 SE':>7} "
        f"{'pre, λ=0':>9} {'seconds':>8}"
    )
    results = {}
    for name in names:
        t = time.perf_counter()
        acc_s = run(scratch, name)
        acc_p = run(pretrained, name)
        acc_0 = run(pretrained, name, lm_coef=0.0) if name in ablate else float("nan")
        results[name] = (acc_s, acc_p, acc_0)
        seconds = time.perf_counter() - t
        n = len(tasks[name].test)
        label = name + ("*" if name in EXTRA_TASKS else "")
        two_se = 2 * ((acc_p * (1 - acc_p) + acc_s * (1 - acc_s)) / n) ** 0.5  # of the difference
        print(
            f"{label:>13} {tasks[name].chance:>7.3f} {acc_s:>8.3f} {acc_p:>11.3f} {acc_p - acc_s:>+6.3f} "
            f"{two_se:>7.3f} {acc_0:>9.3f} {seconds:>8.0f}"
        )

    if any(n in EXTRA_TASKS for n in names):
        print("  * an extra task, not one of the four (one per transformation)")

    # ---------------------------------------------------------------- layers transferred
    name = args.layers_task
    if name:
        print(f"\nlayers transferred ({name}, λ = 0.5; 0 = embeddings only, the rest re-initialised):")
        for n_layers in range(config.n_layer + 1):
            if n_layers == config.n_layer and name in results:
                acc = results[name][1]
            else:
                acc = run(transfer_layers(pretrained, n_layers, seed=args.seed + 2), name)
            print(f"  {n_layers} of {config.n_layer}: {acc:.3f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
