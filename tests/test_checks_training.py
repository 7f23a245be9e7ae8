"""Notebook 05's checks (the schedule, one training step) and the ablation ladder (gptmini.course.ablation_ladder)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from gptmini.config import GPTConfig
from gptmini.course.ablation_ladder import LADDER_RUNGS, LadderModel, build_rung
from gptmini.course.checks import package_version
from gptmini.course.checks.nb05 import _SCHEDULE_MISTAKES, _schedule, check_lr_schedule, check_train_step
from gptmini.train import TrainConfig, Trainer, train_step


def _stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------------------------------------ schedule
def test_the_package_schedule_passes():
    assert check_lr_schedule(package_version("lr_schedule"))


@pytest.mark.parametrize("mistake", list(_SCHEDULE_MISTAKES), ids=[str(m) for m in _SCHEDULE_MISTAKES.values()])
def test_a_typical_schedule_mistake_is_named(mistake):
    result = check_lr_schedule(lambda step, **kw: _schedule(step, **_SCHEDULE_MISTAKES[mistake]))
    assert not result and not result.pending and mistake in result.message


def test_an_unwritten_schedule_is_not_yet_in_one_line(capsys):
    result = check_lr_schedule(_stub)
    assert not result and result.pending
    assert capsys.readouterr().out.count("not yet") == 1


def test_a_schedule_that_returns_nothing_is_not_yet():
    assert check_lr_schedule(lambda step, **kw: None).pending


# ------------------------------------------------------------------------------------------------ one step
def _step(mistake: str = ""):
    def step(model, optimizer, x, y, lr, grad_clip):
        if mistake != "lr":
            for group in optimizer.param_groups:
                group["lr"] = lr
        if mistake != "zero_grad":
            optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        if mistake not in ("no clip", "clip after"):
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if mistake == "clip after":
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        return loss.item()

    return step


def test_the_package_step_and_a_right_one_pass():
    assert check_train_step(package_version("train_step"))
    assert check_train_step(_step())


@pytest.mark.parametrize(
    "mistake, named",
    [
        ("zero_grad", "gradients accumulate"),
        ("clip after", "after optimizer.step()"),
        ("no clip", "not clipped"),
        ("lr", "learning rate is not applied"),
    ],
)
def test_a_typical_step_mistake_is_named(mistake, named):
    result = check_train_step(_step(mistake))
    assert not result and not result.pending and named in result.message


def test_a_step_that_forgets_the_loss_or_is_a_stub_is_not_yet():
    assert check_train_step(_stub).pending
    right = _step()
    assert check_train_step(lambda *a: right(*a) and None).pending  # forgot `return`


def test_a_wrong_loss_is_reported():
    right = _step()
    result = check_train_step(lambda *a: 2 * right(*a))
    assert not result and "returns" in result.message


def test_checks_raise_only_on_misuse():
    with pytest.raises(TypeError):
        check_lr_schedule(0.1)
    with pytest.raises(TypeError):
        check_train_step("train_step")


# ------------------------------------------------------------------------------------------------ ladder
CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=4, n_embd=16, dropout=0.1, norm="post")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_rung_maps_idx_and_targets_to_logits_and_loss():
    idx = torch.randint(13, (2, 8))
    for name in LADDER_RUNGS:
        logits, loss = build_rung(name, CONFIG)(idx, idx)
        assert logits.shape == (2, 8, 13) and loss.dim() == 0, name


def test_each_rung_has_the_structure_it_claims():
    rungs = {name: build_rung(name, CONFIG) for name in LADDER_RUNGS}
    assert not any(isinstance(m, nn.Linear) for m in rungs["bigram"].modules())  # a table and nothing else
    assert rungs["one head"].layers[0].attn.n_head == 1
    assert rungs["several heads"].layers[0].attn.n_head == CONFIG.n_head
    assert rungs["several heads"].layers[0].mlp is None and rungs["+ feed-forward"].layers[0].mlp is not None
    assert not any(isinstance(m, nn.LayerNorm) for n in list(LADDER_RUNGS)[:5] for m in rungs[n].modules())
    assert sum(isinstance(m, nn.LayerNorm) for m in rungs["+ LayerNorm"].modules()) == 2
    assert len(rungs["+ 2nd layer"].layers) == 2 and rungs["+ dropout"].config.dropout == 0.1
    assert all(r.config.dropout == 0.0 for n, r in rungs.items() if n != "+ dropout")
    counts = [_params(r) for r in rungs.values()]
    assert counts == sorted(counts)  # never fewer parameters going up (several heads share one head's matrices,
    assert counts[0] < counts[1] and counts[2] < counts[3] < counts[5] < counts[6]  # dropout adds none)


def _layer_output(model: LadderModel, x: torch.Tensor, zero_branches: bool) -> torch.Tensor:
    layer = model.layers[0]
    if zero_branches:  # attention and feed-forward now output 0: what is left is the residual path
        for module in (layer.attn.c_proj, layer.mlp.c_proj):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    return layer(x)


def test_only_the_residual_rungs_carry_x_through():
    x = torch.randn(2, 8, 16)
    without = build_rung("+ feed-forward", CONFIG).eval()
    with_residual = build_rung("+ residual", CONFIG).eval()
    with torch.no_grad():
        assert torch.equal(_layer_output(without, x, zero_branches=True), torch.zeros_like(x))
        assert torch.allclose(_layer_output(with_residual, x, zero_branches=True), x)


def test_the_layernorm_rung_normalises_its_output():
    x = 5 * torch.randn(2, 8, 16) + 3
    with torch.no_grad():
        y = build_rung("+ LayerNorm", CONFIG).eval().layers[0](x)
    assert torch.allclose(y.mean(-1), torch.zeros(2, 8), atol=1e-5)  # post-LN: LN(x + f(x)) ends each layer


def test_the_trainer_and_train_step_train_a_rung():
    torch.manual_seed(0)
    model = build_rung("+ residual", CONFIG)
    data = torch.randint(13, (400,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    assert train_step(model, opt, [(data[:8].view(1, 8), data[1:9].view(1, 8))], lr=1e-2).updated
    config = TrainConfig(max_iters=4, eval_interval=2, eval_iters=1, batch_size=2, progress=False, device="cpu")
    history = Trainer(model, data[:300], data[300:], config).fit()
    assert history.final_val_loss is not None


def test_an_unknown_rung_is_named():
    with pytest.raises(ValueError, match="bigram"):
        build_rung("two heads", CONFIG)


def test_the_package_gpt1_module_passes_check_gpt_and_a_stub_is_not_yet():
    from gptmini.course.checks.nb05 import check_gpt
    from gptmini.model import GPT

    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0, norm="post")
    assert check_gpt(package_version("MyGPT1")(config), config)

    class Stub(GPT):
        def forward(self, idx, targets=None):
            raise NotImplementedError

    assert check_gpt(Stub(config), config).pending


def _gpt1(mistake: str):
    from gptmini.model import GPT

    class Mine(GPT):
        def forward(self, idx, targets=None):
            t = self.transformer
            h = t.wte(idx) + (0 if mistake == "no positions" else t.wpe(torch.arange(idx.size(1))))
            for block in t.h:
                h = block(h)
            logits = self.lm_head(h)
            if mistake == "softmax":
                logits = logits.softmax(-1)
            loss = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), reduction="sum" if mistake == "sum" else "mean"
            )
            return logits, loss

    return Mine


@pytest.mark.parametrize(
    "mistake, named", [("no positions", "position"), ("softmax", "probabilities"), ("sum", "sum over all")]
)
def test_check_gpt1_forward_names_typical_mistakes(mistake, named):
    from gptmini.course.checks.nb05 import check_gpt1_forward

    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0, norm="post")
    assert check_gpt1_forward(_gpt1("")(config), config)
    assert check_gpt1_forward(package_version("MyGPT1")(config), config)
    result = check_gpt1_forward(_gpt1(mistake)(config), config)
    assert not result and not result.pending and named in result.message


def test_check_gpt1_forward_says_not_yet_once_for_a_stub(capsys):
    from gptmini.course.checks.nb05 import check_gpt1_forward
    from gptmini.model import GPT

    class Stub(GPT):
        def forward(self, idx, targets=None):
            raise NotImplementedError

    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0, norm="post")
    capsys.readouterr()
    assert check_gpt1_forward(Stub(config), config).pending
    assert capsys.readouterr().out.count("not yet") == 1
