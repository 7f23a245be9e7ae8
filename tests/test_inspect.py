"""gptmini.inspect: captured values equal the model's own, scores on hand-built heads, ablation, logit lens."""

from __future__ import annotations

import math

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.inspect import (
    ablate,
    ablation_effect,
    attention_maps,
    attention_only,
    capture,
    duplicate_token_score,
    first_token_score,
    head_means,
    head_scores,
    induction_score,
    lens_top_tokens,
    logit_lens,
    previous_token_score,
    repeated_losses,
    repeated_tokens,
    run_with_cache,
    token_losses,
)


def random_model(norm: str, n_layer: int = 2, seed: int = 0, attn_only: bool = False) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=40, block_size=24, n_layer=n_layer, n_head=4, n_embd=32, dropout=0.1, norm=norm)
    model = GPT(cfg).double()
    with torch.no_grad():  # non-zero biases and larger weights, so every term of the sums below matters
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    if attn_only:
        attention_only(model)
    return model.eval()


IDS = torch.randint(0, 40, (3, 20), generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------------- capture
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_capture_equals_the_models_own_values(norm):
    model = random_model(norm)
    with capture(model) as cache:
        logits, _ = model(IDS)
    assert len(cache.resid) == len(cache.patterns) == len(cache.z) == model.config.n_layer
    hidden = model.hidden_states(IDS)
    last = model.transformer.ln_f(cache.resid[-1]) if norm == "pre" else cache.resid[-1]  # ln_f: pre-LN only
    torch.testing.assert_close(last, hidden, rtol=0, atol=1e-12)
    torch.testing.assert_close(model.lm_head(last), logits, rtol=0, atol=1e-12)
    for mine, theirs in zip(cache.patterns, attention_maps(model, IDS), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-14)
    wte, wpe = model.transformer.wte(IDS), model.transformer.wpe(torch.arange(IDS.size(1)))
    torch.testing.assert_close(cache.embed, wte + wpe, rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_head_outputs_plus_bias_are_the_attention_output(norm):
    model = random_model(norm)
    _, cache = run_with_cache(model, IDS)
    for layer in range(model.config.n_layer):
        heads = cache.head_outputs(layer)
        assert heads.shape == (3, 4, 20, 32)
        total = heads.sum(1) + cache.attn_bias(layer)
        torch.testing.assert_close(total, cache.attn_out[layer], rtol=0, atol=1e-12)
        assert (heads.abs().sum(dim=(0, 2, 3)) > 0).all()  # every head contributes: no trivially-zero test


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_capturing_changes_no_logits(norm):
    model = random_model(norm)
    plain, _ = model(IDS)
    with capture(model, patterns=False):  # the fused kernel still runs: bit-for-bit the same
        assert torch.equal(model(IDS)[0], plain)
    model.set_attention("explicit")
    explicit, _ = model(IDS)
    with capture(model):  # a pattern hook takes the explicit path; on that path too, nothing changes
        assert torch.equal(model(IDS)[0], explicit)
    torch.testing.assert_close(explicit, plain, rtol=0, atol=1e-12)  # the two paths agree to rounding
    assert not any(m._forward_hooks for m in model.modules())  # every hook is gone afterwards


def test_capture_keeps_the_last_forward_pass_and_the_mode():
    model = random_model("pre").train()
    with capture(model) as cache:
        model(IDS[:1, :5])
        model(IDS[:2])
    assert len(cache.resid) == 2 and cache.resid[0].shape == (2, 20, 32)
    run_with_cache(model, IDS)
    assert model.training  # run_with_cache works in eval mode and gives the mode back


# -------------------------------------------------------------------------------- hand-built heads
T = 16


def hand_built() -> GPT:
    """Head 0 attends to the previous token (by position), head 1 attends uniformly.

    Post-LN, so attention reads the embedding itself: token embeddings are 0, position i is the unit vector e_i.
    Head 0's query is beta * e_i and its key for position j is e_{j+1}: only key j = i - 1 matches.
    Head 1's queries are zero, so all its scores tie and softmax spreads evenly over the allowed keys.
    """
    cfg = GPTConfig(vocab_size=40, block_size=T, n_layer=1, n_head=2, n_embd=2 * T, dropout=0.0, norm="post")
    model = GPT(cfg).double().eval()
    c, hs, beta = cfg.n_embd, cfg.head_size, 200.0
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
        model.transformer.wpe.weight.copy_(torch.eye(T, c, dtype=torch.float64))
        w = torch.zeros(3 * c, c, dtype=torch.float64)
        w[:hs, :T] = beta * torch.eye(T)  # head 0 query
        w[c : c + hs, :T] = torch.eye(T).roll(1, dims=0)  # head 0 key: e_j -> e_{j+1}
        w[2 * c :, :] = torch.randn(c, c, dtype=torch.float64)  # values: anything
        model.transformer.h[0].attn.c_attn.weight.copy_(w)
        model.transformer.h[0].attn.c_attn.bias.zero_()
    return model


def uniform_mean(queries) -> float:
    return sum(1 / (i + 1) for i in queries) / len(queries)


def test_scores_of_a_previous_token_head_and_a_uniform_head():
    model = hand_built()
    n = T // 2
    ids = torch.arange(n).repeat(2)[None]  # no token next to a copy of itself
    _, cache = run_with_cache(model, ids)
    pattern = cache.patterns[0][0]  # (heads, T, T)
    prev, unif = pattern[0], pattern[1]
    torch.testing.assert_close(torch.diagonal(prev, -1), torch.ones(T - 1, dtype=torch.float64), atol=1e-6, rtol=0)

    assert previous_token_score(prev) == pytest.approx(1.0, abs=1e-6)
    assert first_token_score(prev) == pytest.approx(1 / (T - 1), abs=1e-6)  # only query 1's previous is token 0
    assert duplicate_token_score(prev, ids[0]) == pytest.approx(0.0, abs=1e-6)
    assert induction_score(prev, n) == pytest.approx(0.0, abs=1e-6)

    # a uniform head puts 1/(i+1) on every key of query i: each score is the mean of that over its queries
    assert previous_token_score(unif) == pytest.approx(uniform_mean(range(1, T)), abs=1e-12)
    assert first_token_score(unif) == pytest.approx(uniform_mean(range(1, T)), abs=1e-12)
    assert duplicate_token_score(unif, ids[0]) == pytest.approx(uniform_mean(range(n, T)), abs=1e-12)
    assert induction_score(unif, n) == pytest.approx(uniform_mean(range(n, T)), abs=1e-12)
    assert 1 / T < induction_score(unif, n) < 2 / T  # about 1/T: nothing special

    scores = head_scores(model, ids[0], n=n)
    assert scores["previous-token"].shape == (1, 2)
    assert scores["previous-token"][0, 0] == pytest.approx(1.0, abs=1e-5)
    assert scores["induction"][0, 0] == pytest.approx(0.0, abs=1e-5)
    assert scores["induction"][0, 1] == pytest.approx(uniform_mean(range(n, T)), abs=1e-6)


def test_an_induction_pattern_scores_one_and_its_neighbours_do_not():
    n = 6
    size = 2 * n
    induction = torch.zeros(size, size, dtype=torch.float64)
    induction[:, 0] = 1.0  # queries of the first copy rest on token 0
    for i in range(n, size):
        induction[i] = 0.0
        induction[i, i - n + 1] = 1.0
    assert induction_score(induction, n) == pytest.approx(1.0)
    duplicate = torch.zeros_like(induction)
    duplicate[:, 0] = 1.0
    for i in range(n, size):
        duplicate[i] = 0.0
        duplicate[i, i - n] = 1.0
    assert induction_score(duplicate, n) == pytest.approx(0.0)  # one to the left: the duplicate token
    ids = torch.arange(n).repeat(2)
    assert duplicate_token_score(duplicate, ids) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="prefix"):
        induction_score(induction, n + 1)
    prefixed = torch.zeros(size + 1, size + 1, dtype=torch.float64)
    prefixed[1:, 1:] = induction
    assert induction_score(prefixed, n, prefix=1) == pytest.approx(1.0)


def test_repeated_tokens_and_losses():
    seq = repeated_tokens(40, 7, batch=3, seed=5, prefix=[0])
    assert seq.shape == (3, 15) and torch.equal(seq[:, 1:8], seq[:, 8:]) and (seq[:, 0] == 0).all()
    assert torch.equal(seq, repeated_tokens(40, 7, batch=3, seed=5, prefix=[0]))
    letters = repeated_tokens(40, 50, batch=2, tokens=[3, 5, 7])
    assert set(letters.unique().tolist()) == {3, 5, 7} and torch.equal(letters[:, :50], letters[:, 50:])
    model = random_model("pre")
    idx = repeated_tokens(40, 10, batch=2, seed=0)
    losses = token_losses(model, idx)
    with torch.no_grad():
        _, ref = model(idx[:, :-1], idx[:, 1:])
    assert losses.shape == (2, 19) and float(losses.mean()) == pytest.approx(ref.item(), rel=1e-9)
    first, second = repeated_losses(model, idx, 10)
    assert first == pytest.approx(float(losses[:, 0:9].mean()), rel=1e-12)
    assert second == pytest.approx(float(losses[:, 10:19].mean()), rel=1e-12)


# --------------------------------------------------------------------------------------------- ablation
def test_ablating_a_head_removes_exactly_its_contribution():
    model = random_model("pre", n_layer=2, attn_only=True)  # no MLP: the stream is a sum of head outputs
    _, before = run_with_cache(model, IDS)
    for layer, head in [(1, 2), (0, 3)]:
        with ablate(model, [(layer, head)]):
            _, after = run_with_cache(model, IDS)
        contribution = before.head_outputs(layer)[:, head]
        torch.testing.assert_close(after.resid[layer], before.resid[layer] - contribution, rtol=0, atol=1e-12)
        assert contribution.abs().max() > 0.1
    means = head_means(model, IDS)
    with ablate(model, [(1, 0)], mode="mean", means=means):
        _, after = run_with_cache(model, IDS)
    w_o = model.transformer.h[1].attn.c_proj.weight[:, :8]  # head 0's slice of c_proj
    expected = before.resid[1] + (means[1][0] - before.z[1][:, 0]) @ w_o.T
    torch.testing.assert_close(after.resid[1], expected, rtol=0, atol=1e-12)
    assert not any(m._forward_hooks for m in model.modules())


def test_ablation_effect_reports_loss_and_prediction():
    model = random_model("post")
    result = ablation_effect(model, IDS[:1], [(0, 1), (1, 1)])
    with torch.no_grad():
        _, loss = model(IDS[:1, :-1], IDS[:1, 1:])
    assert result.loss_before == pytest.approx(float(loss), rel=1e-9)
    with ablate(model, [(0, 1), (1, 1)]), torch.no_grad():
        logits, loss_after = model(IDS[:1, :-1], IDS[:1, 1:])
        next_probs = model(IDS[:1])[0][0, -1].softmax(-1)
    assert result.loss_after == pytest.approx(float(loss_after), rel=1e-9)
    torch.testing.assert_close(result.probs_after.double(), next_probs, rtol=0, atol=1e-6)
    assert result.loss_change != 0 and result.top(3)[0][0] == int(next_probs.argmax())
    nothing = ablation_effect(model, IDS[:1], [])
    assert nothing.loss_change == 0
    mean = ablation_effect(model, IDS[:1], [(0, 1)], mode="mean")
    assert mean.loss_after != result.loss_after
    with pytest.raises(ValueError, match="does not exist"):
        ablation_effect(model, IDS[:1], [(2, 0)])
    with pytest.raises(ValueError, match="mode"):
        ablation_effect(model, IDS[:1], [(0, 0)], mode="half")


# ------------------------------------------------------------------------------------------- logit lens
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_logit_lens_ends_at_the_models_logits(norm):
    model = random_model(norm)
    lens = logit_lens(model, IDS)
    logits, _ = model(IDS)
    assert lens.shape == (3, 3, 20, 40)  # h0 and two blocks
    torch.testing.assert_close(lens[-1], logits, rtol=0, atol=1e-12)
    h0 = model.transformer.wte(IDS) + model.transformer.wpe(torch.arange(20))
    first = model.lm_head(model.transformer.ln_f(h0)) if norm == "pre" else model.lm_head(h0)
    torch.testing.assert_close(lens[0], first, rtol=0, atol=1e-12)
    ids, probs = lens_top_tokens(model, IDS[0], k=2)
    assert ids.shape == probs.shape == (3, 20, 2)
    assert torch.equal(ids[-1, :, 0], logits[0].argmax(-1)) and (probs[..., 0] >= probs[..., 1]).all()
    assert math.isclose(float(probs[-1, 0, 0]), float(logits[0, 0].detach().softmax(-1).max()), rel_tol=1e-6)
