"""Notebook 12's scale ladder: the recipes, 6·N·D, the log-log fit, the checks, the abilities and the online path."""

import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.course.recipes import LADDER, LADDER_TOKENS_PER_PARAM, RECIPES, model_config, train_config
from gptmini.scaling import fit_power_law, loglog_line, t_quantile_95, window_loss
from gptmini.sizes import count_params, flops, non_embedding_params

VOCAB = 71  # the characters of the course's Shakespeare


# ------------------------------------------------------------------------------------------ recipes
def _tokens(name: str) -> int:
    tc, cfg = train_config(name), model_config(name, VOCAB)
    return tc.max_iters * tc.batch_size * tc.grad_accum_steps * cfg.block_size


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_the_rungs_are_valid_models_each_about_twice_the_one_below(variant):
    names = list(LADDER) if variant == "cpu" else [RECIPES[r].gpu for r in LADDER]
    assert 5 <= len(names) <= 7 and all(n in RECIPES for n in names)
    sizes = []
    for name in names:
        cfg = model_config(name, VOCAB)
        model = GPT(cfg)
        assert model(torch.zeros(1, cfg.block_size, dtype=torch.long))[0].shape == (1, cfg.block_size, VOCAB)
        assert cfg.norm == "pre" and cfg.block_size == 128 and cfg.name == name
        assert sum(p.numel() for p in model.parameters()) == count_params(cfg)
        sizes.append(non_embedding_params(cfg))
    ratios = [b / a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert all(1.7 <= r <= 2.6 for r in ratios), ratios


def test_one_rule_trains_every_rung_on_twenty_tokens_per_parameter():
    schedules = set()
    for name in LADDER:
        tc, cfg = train_config(name), model_config(name, VOCAB)
        n, per_step = non_embedding_params(cfg), tc.batch_size * cfg.block_size
        assert LADDER_TOKENS_PER_PARAM * n <= _tokens(name) < LADDER_TOKENS_PER_PARAM * n + per_step
        assert tc.warmup_iters == max(1, tc.max_iters // 20) and tc.eval_interval == tc.max_iters
        schedules.add((tc.batch_size, tc.learning_rate, tc.min_lr))
        gpu = RECIPES[name].gpu
        assert non_embedding_params(model_config(gpu, VOCAB)) > n and RECIPES[gpu].gpu is None
    assert schedules == {(16, 2e-3, 2e-4)}


def test_the_cli_knows_every_rung():
    from gptmini.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--preset", LADDER[-1]])
    assert args.preset == LADDER[-1]


# --------------------------------------------------------------------------------------- 6·N·D
@pytest.mark.parametrize("n_layer, n_embd, n_head", [(1, 32, 2), (4, 64, 4)])
def test_non_embedding_params_and_flops_equal_a_hand_count(n_layer, n_embd, n_head):
    cfg = GPTConfig(vocab_size=VOCAB, block_size=128, n_layer=n_layer, n_head=n_head, n_embd=n_embd, norm="pre")
    c = n_embd
    attention = (3 * c * c + 3 * c) + (c * c + c)  # c_attn and c_proj, weights and biases
    mlp = (c * 4 * c + 4 * c) + (4 * c * c + c)
    norms = 2 * 2 * c  # two LayerNorms per block, scale and shift
    hand = n_layer * (attention + mlp + norms) + 2 * c  # + the final LayerNorm
    assert non_embedding_params(cfg) == hand
    model = GPT(cfg)
    tables = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    assert sum(p.numel() for p in model.parameters()) - tables == hand
    assert flops(hand, 1_000_000) == 6 * hand * 1_000_000


def test_gpt3_from_its_shape_is_near_its_papers_compute():
    from gptmini.course.checks.nb12 import reference_run_flops

    assert reference_run_flops(96, 12288, 300e9) == 6 * 12 * 96 * 12288**2 * 300e9
    assert math.isclose(reference_run_flops(96, 12288, 300e9), 3.14e23, rel_tol=0.01)


# ------------------------------------------------------------------------------------------- the fit
def test_the_fit_recovers_an_exact_power_law():
    x = [1e3, 1e4, 3e4, 1e5, 1e6]
    law = fit_power_law(x, [3.0 * v**-0.25 for v in x])
    assert law.exponent == pytest.approx(0.25, abs=1e-12) and law.coefficient == pytest.approx(3.0, rel=1e-12)
    assert law.high - law.low < 1e-9 and law(1e7) == pytest.approx(3.0 * 1e7**-0.25, rel=1e-12)


def test_the_interval_is_the_least_squares_slope_plus_minus_t_standard_errors():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e4, 2e5, 5)
    y = 20.0 * x**-0.15 * np.exp(rng.normal(0, 0.02, 5))
    law = fit_power_law(x, y)
    lx, ly = np.log10(x), np.log10(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    se = math.sqrt(resid @ resid / 3 / ((lx - lx.mean()) @ (lx - lx.mean())))
    assert law.exponent == pytest.approx(-slope, abs=1e-12)
    assert (law.low, law.high) == pytest.approx((-slope - 3.182 * se, -slope + 3.182 * se), abs=1e-12)
    assert law.low < 0.15 < law.high  # the exponent the points were made with is inside
    assert loglog_line(x, y) == pytest.approx((slope, intercept), abs=1e-12)


def test_t_quantiles_and_bad_input():
    assert t_quantile_95(3) == 3.182 and t_quantile_95(1) == 12.706 and t_quantile_95(100) == 1.96
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2, 3], [1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_power_law([1, 2], [1.0, 0.5])
    with pytest.raises(ValueError, match="in pairs"):
        loglog_line([1, 2, 3], [1.0, 0.5])
    with pytest.raises(ValueError, match="two different sizes"):
        loglog_line([2, 2], [1.0, 0.5])


def test_window_loss_is_the_mean_cross_entropy_on_evenly_spaced_windows():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=11)).double()
    ids = torch.randint(0, 11, (500,))
    got = window_loss(model, ids, n_windows=5, batch_size=2)
    t = model.config.block_size
    starts = [round(i * (500 - t - 1) / 4) for i in range(5)]
    rows = torch.stack([ids[s : s + t + 1] for s in starts])
    with torch.no_grad():
        logits, _ = model(rows[:, :-1])
    expected = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten()).item()
    assert starts[0] == 0 and starts[-1] == 500 - t - 1
    assert got == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="fewer than one window"):
        window_loss(model, ids[:10])


# ------------------------------------------------------------------------------------------- checks
def _printed(capsys) -> str:
    return capsys.readouterr().out


def test_check_run_flops_passes_the_answer_and_names_the_slips(capsys):
    from gptmini.course.checks import package_version
    from gptmini.course.checks.nb12 import check_run_flops

    assert check_run_flops(lambda n_layer, c, d: 6 * 12 * n_layer * c**2 * d)
    assert check_run_flops(package_version("run_flops"))
    assert "3.14e23" in _printed(capsys)
    for wrong, words in [
        (lambda n_layer, c, d: 2 * 12 * n_layer * c**2 * d, "forward pass only"),
        (lambda n_layer, c, d: 12 * n_layer * c**2 * d, "N·D"),
        (lambda n_layer, c, d: 6 * 12 * n_layer * c * d, "squared"),
        (lambda n_layer, c, d: 6 * 8 * n_layer * c**2 * d, "MLP alone"),
    ]:
        assert not check_run_flops(wrong)
        assert words in _printed(capsys)

    def stub(n_layer, c, d):
        raise NotImplementedError

    result = check_run_flops(stub)
    assert not result and result.pending and "not yet" in _printed(capsys)


def test_check_fit_loglog_passes_the_answer_and_names_the_slips(capsys):
    from gptmini.course.checks import package_version
    from gptmini.course.checks.nb12 import check_fit_loglog

    assert check_fit_loglog(lambda x, y: tuple(np.polyfit(np.log10(x), np.log10(y), 1)))
    assert check_fit_loglog(package_version("fit_loglog"))
    _printed(capsys)
    for wrong, words in [
        (lambda x, y: tuple(np.polyfit(np.log10(x), np.log(y), 1)), "too steep"),
        (lambda x, y: tuple(np.polyfit(np.log(x), np.log10(y), 1)), "too flat"),
        (lambda x, y: tuple(np.polyfit(np.log(x), np.log(y), 1)), "natural log on both axes"),
        (lambda x, y: tuple(np.polyfit(np.log10(x), y, 1)), "log10 of the loss"),
        (lambda x, y: tuple(np.polyfit(x, np.log10(y), 1)), "sizes too"),
        (lambda x, y: (-np.polyfit(np.log10(x), np.log10(y), 1)[0], 0.0), "exponent α is minus the slope"),
        (lambda x, y: 0.5, "pair (slope, intercept)"),
    ]:
        assert not check_fit_loglog(wrong)
        assert words in _printed(capsys)
    result = check_fit_loglog(lambda x, y: None)
    assert not result and result.pending


def test_check_extrapolate_passes_the_answer_and_names_the_slips(capsys):
    from gptmini.course.checks import package_version
    from gptmini.course.checks.nb12 import check_extrapolate

    assert check_extrapolate(lambda slope, intercept, x: 10 ** (intercept + slope * math.log10(x)))
    assert check_extrapolate(package_version("extrapolate"))
    assert package_version("extrapolate")(-0.5, 1.0, 100.0) == pytest.approx(1.0, abs=1e-12)
    assert package_version("extrapolate")(-0.5, 1.0, np.array([1.0, 100.0])) == pytest.approx([10.0, 1.0])
    _printed(capsys)
    for wrong, words in [
        (lambda slope, intercept, x: intercept + slope * math.log10(x), "take 10 to that power"),
        (lambda slope, intercept, x: math.exp(intercept + slope * math.log10(x)), "not exp"),
        (lambda slope, intercept, x: 10 ** (intercept + slope * math.log(x)), "not ln"),
        (lambda slope, intercept, x: intercept * x**slope, "coefficient is 10 ** intercept"),
    ]:
        assert not check_extrapolate(wrong)
        assert words in _printed(capsys)


def test_check_misuse_raises():
    from gptmini.course.checks.nb12 import check_fit_loglog, check_run_flops

    with pytest.raises(TypeError, match="expects flops_fn to be a function"):
        check_run_flops(3.14e23)
    with pytest.raises(TypeError, match="expects fit_fn to be a function"):
        check_fit_loglog((1, 2))


# ---------------------------------------------------------------------------------------- abilities
def test_ability_items_are_fixed_balanced_and_from_unseen_plays():
    from gptmini.abilities import ability_items, validation_plays
    from gptmini.data import shakespeare, train_val_split

    train_text, _ = train_val_split(shakespeare())
    plays = validation_plays()
    assert len(plays) >= 2 and all(p.text[:500] not in train_text for p in plays)
    a, b = ability_items(40), ability_items(40)
    assert a == b and set(a) == {"next_line", "swapped", "next_speaker", *(f"name_tag k={k}" for k in (0, 1, 2, 4))}
    for name, items in a.items():
        n_choices = len(items[0].choices)
        assert len(items) == 40 and all(len(it.choices) == n_choices for it in items)
        counts = [sum(it.label == j for it in items) for j in range(n_choices)]
        assert max(counts) - min(counts) <= 1, (name, counts)  # the right answer in every place equally often
        assert all(len(set(it.choices)) == n_choices for it in items), name
    for it in a["swapped"]:
        assert sorted(it.choices[0]) == sorted(it.choices[1])  # the same characters, two words swapped
    shots = a["name_tag k=2"][0].context.split("\n")
    assert len(shots) == 3 and shots[0].split(" - ")[0].upper() == shots[0].split(" - ")[1]


def test_score_items_picks_what_the_zeroshot_scorer_prefers():
    from gptmini.abilities import Item, score_items
    from gptmini.tokenizers import CharTokenizer
    from gptmini.zeroshot import choose

    torch.manual_seed(0)
    tok = CharTokenizer.from_text("abcdefgh \n")
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()
    rng = random.Random(0)
    items = [
        Item("".join(rng.choices("abcdefgh ", k=6)), tuple("".join(rng.choices("abcdefgh", k=3)) for _ in range(3)), 0)
        for _ in range(30)
    ]
    for per_token in (True, False):
        picks = [choose(model, tok, it.context, it.choices, normalize=per_token)[0] for it in items]
        score = score_items(model, tok, items, per_token=per_token)
        assert score.right == sum(p == 0 for p in picks) and score.n == 30 and score.chance == pytest.approx(1 / 3)
        assert score.se == pytest.approx(math.sqrt(score.accuracy * (1 - score.accuracy) / 30))


# ------------------------------------------------------------------------------------ the online path
def _hub_folder(path, n_layer: int, n_embd: int, seed: int):
    """A random-weight GPT-2 in the hub's layout (no prefix, Conv1D weights (in, out)), GPT-2's vocabulary."""
    from safetensors.torch import save_file

    from gptmini.course.checks.nb09 import to_hf_layout

    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=50257, block_size=128, n_layer=n_layer, n_head=2, n_embd=n_embd, norm="pre")
    path.mkdir()
    save_file(to_hf_layout(GPT(cfg)), path / "model.safetensors")
    config = dict(model_type="gpt2", vocab_size=50257, n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=2)
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def test_the_online_path_scores_hub_layout_folders_like_the_rungs(tmp_path):
    from gptmini.abilities import ability_items, hub_abilities, score_abilities
    from gptmini.tokenizers import GPT2Tokenizer

    folders = [_hub_folder(tmp_path / "small", 1, 16, 0), _hub_folder(tmp_path / "big", 2, 32, 1)]
    items = {k: v[:8] for k, v in ability_items(8).items()}
    real, offline = hub_abilities(folders, items)
    assert offline is None and list(real) == folders
    for folder in folders:
        model = GPT.from_pretrained(folder)
        n, scores = real[folder]
        assert n == non_embedding_params(model.config)
        assert scores == score_abilities(model, GPT2Tokenizer(fast=True), items)
    assert real[folders[0]][0] < real[folders[1]][0]


def test_offline_the_online_path_says_so_in_one_line(tmp_path, monkeypatch):
    import gptmini.pretrained as pretrained
    from gptmini import DownloadError
    from gptmini.abilities import ability_items, hub_abilities

    def no_network(repo_id):
        raise DownloadError(f"Could not download {repo_id}")

    monkeypatch.setattr(pretrained, "_download", no_network)
    folder = _hub_folder(tmp_path / "local", 1, 16, 0)
    items = {"swapped": ability_items(4)["swapped"]}
    real, offline = hub_abilities([folder, "gpt2-medium", "gpt2-large"], items)
    assert list(real) == [folder]
    assert offline == "offline: gpt2-medium, gpt2-large could not be downloaded, so the ladder's rungs stand alone"
    assert "\n" not in offline


# ------------------------------------------------------------------------------- training a rung
def test_ladder_model_trains_a_missing_rung_once_and_reuses_it(tmp_path, monkeypatch, capsys):
    from gptmini.course import LADDER_RUN_FILE, checkpoint_dir, ladder_model

    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    monkeypatch.setenv("GPTMINI_MODE", "fast")
    model, tok, run = ladder_model(LADDER[0], device="cpu")
    folder = checkpoint_dir(f"{LADDER[0]}-4-steps")  # fast mode: a folder of its own, never the recipe's
    assert run["trained_now"] and run["folder"] == str(folder) and (folder / "model.safetensors").exists()
    assert run["steps"] == 4 and run["tokens"] == 4 * 16 * 128 and run["seconds"] > 0
    assert json.loads((folder / LADDER_RUN_FILE).read_text())["seconds"] == run["seconds"]
    assert tok.vocab_size == VOCAB and model.config.n_layer == 1 and not model.training
    again, _, run2 = ladder_model(LADDER[0], device="cpu")
    assert not run2["trained_now"] and run2["seconds"] == run["seconds"]
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    _, _, full = ladder_model(LADDER[0], steps=train_config(LADDER[0]).max_iters, device="cpu")
    assert full["folder"] == str(checkpoint_dir(LADDER[0])) and full["trained_now"]  # what `train --preset` writes
