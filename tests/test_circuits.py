"""Inside the model, part 2: the attention-only config, logit attribution, activation patching, QK/OV circuits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.inspect import (
    attention_only,
    composition_score,
    copying_score,
    full_ov_circuit,
    full_qk_circuit,
    k_composition,
    lens_top_tokens,
    logit_attribution,
    logit_diff_metric,
    negative_loss_metric,
    ov_matrix,
    ov_on_stream,
    patch_everything,
    patch_heads,
    patch_residual,
    q_composition,
    qk_matrix,
    repeated_tokens,
    run_with_cache,
    top1_diagonal,
)
from gptmini.sizes import count_params


def random_model(norm: str = "pre", attn_only: bool = False, seed: int = 0, vocab: int = 40) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=vocab, block_size=24, n_layer=2, n_head=4, n_embd=32, dropout=0.1, norm=norm, attn_only=attn_only
    )
    model = GPT(cfg).double()
    with torch.no_grad():  # non-zero biases and LayerNorm weights, so every term of the sums matters
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


IDS = torch.randint(0, 40, (3, 20), generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------- attention-only config
def test_attn_only_config_builds_blocks_without_mlp_and_round_trips(tmp_path):
    model = random_model(attn_only=True)
    assert not any(".mlp." in k or ".ln_2." in k for k in model.state_dict())
    assert model.num_params(non_embedding=False) == count_params(model.config)
    x = model.transformer.wte(IDS) + model.transformer.wpe(torch.arange(20))
    for block in model.transformer.h:  # the block is x + attn(ln_1(x)), nothing more
        x = x + block.attn(block.ln_1(x))
    torch.testing.assert_close(model(IDS)[0], model.lm_head(model.transformer.ln_f(x)), rtol=0, atol=1e-12)
    model.save_pretrained(tmp_path)
    loaded = GPT.from_pretrained(tmp_path, dtype=torch.float64)
    assert loaded.config.attn_only and loaded.config == model.config
    torch.testing.assert_close(loaded(IDS)[0], model(IDS)[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="attn_only must be True or False"):
        GPTConfig(attn_only="yes")


def test_attention_only_turns_a_model_into_the_config_form():
    full = random_model()
    state = {k: v for k, v in full.state_dict().items() if ".mlp." not in k and ".ln_2." not in k}
    patched = attention_only(full)
    built = random_model(attn_only=True)
    built.load_state_dict(state)
    assert patched.config == built.config and patched.config.attn_only
    torch.testing.assert_close(patched(IDS)[0], built(IDS)[0], rtol=0, atol=0)


def test_attn_only_post_ln_block_is_one_layernorm():
    model = random_model("post", attn_only=True)
    x = model.transformer.wte(IDS) + model.transformer.wpe(torch.arange(20))
    for block in model.transformer.h:
        x = block.ln_1(x + block.attn(x))
    torch.testing.assert_close(model(IDS)[0], model.lm_head(x), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------- lens batch defect
def test_lens_top_tokens_reads_one_sequence_and_refuses_a_batch():
    model = random_model()
    one, _ = lens_top_tokens(model, IDS[0], k=1)
    same, _ = lens_top_tokens(model, IDS[:1], k=1)
    assert torch.equal(one, same) and one.shape == (3, 20, 1)
    with pytest.raises(ValueError, match=r"one sequence, \(T,\) or \(1, T\), got shape \(3, 20\)"):
        lens_top_tokens(model, IDS, k=1)


# ------------------------------------------------------------------------------------------ attribution
@pytest.mark.parametrize("attn_only", [False, True])
def test_logit_attribution_sums_to_the_logit_difference(attn_only):
    model = random_model(attn_only=attn_only)
    right, wrong = torch.tensor([3, 7, 11]), torch.tensor([5, 2, 30])
    for pos in (-1, 6):
        a = logit_attribution(model, IDS, right, wrong, pos=pos)
        logits, _ = model(IDS)
        expected = logits[torch.arange(3), pos, right] - logits[torch.arange(3), pos, wrong]
        torch.testing.assert_close(a.logit_diff, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(a.total(), expected, rtol=0, atol=1e-9)
        assert a.heads.shape == (3, 2, 4) and a.mlps.shape == (3, 2)
        assert (a.mlps == 0).all() if attn_only else (a.mlps.abs() > 1e-6).all()


def test_one_heads_attribution_is_its_output_through_frozen_ln_f_and_the_unembedding():
    model = random_model(attn_only=True)
    a = logit_attribution(model, IDS[:1], 4, 9)
    _, cache = run_with_cache(model, IDS[:1])
    final = cache.resid[-1][0, -1]
    ln = model.transformer.ln_f.requires_grad_(False)
    sigma = (final.var(unbiased=False) + ln.eps).sqrt()  # the scale of the real pass, frozen
    head = cache.head_outputs(1)[0, 2, -1]
    d = (model.lm_head.weight[4] - model.lm_head.weight[9]).detach()
    expected = ((head - head.mean()) / sigma * ln.weight) @ d
    assert float(a.heads[0, 1, 2]) == pytest.approx(float(expected), abs=1e-12)
    # an attention-only model with one head switched off moves the logit difference by (nearly) its part
    assert abs(float(a.heads[0, 1, 2])) > 1e-3


def test_attribution_and_circuits_without_biases():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=12, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=False, attn_only=True)
    model = GPT(cfg).double().eval()
    ids = torch.randint(0, 12, (2, 6), generator=torch.Generator().manual_seed(0))
    a = logit_attribution(model, ids, 1, 2)
    torch.testing.assert_close(a.total(), a.logit_diff, rtol=0, atol=1e-12)
    x = model.transformer.h[0].ln_1(model.transformer.wte.weight)
    q, k, _ = model.transformer.h[0].attn.c_attn(x).split(8, dim=-1)
    torch.testing.assert_close(full_qk_circuit(model, 1), q[:, 4:] @ k[:, 4:].T / 2.0, rtol=0, atol=1e-12)


def test_attribution_refuses_a_post_ln_model():
    with pytest.raises(ValueError, match="needs a pre-LN model .* post-LN model \\(GPT-1\\)"):
        logit_attribution(random_model("post"), IDS, 1, 2)


# ------------------------------------------------------------------------------------------- patching
def corrupted_pair(n: int = 8):
    clean = repeated_tokens(40, n, batch=2, seed=3)
    corrupted = clean.clone()
    corrupted[:, :n] = repeated_tokens(40, n, batch=2, seed=4)[:, :n]  # the first copy changed
    return clean, corrupted


@pytest.mark.parametrize("attn_only", [False, True])
def test_patching_everything_recovers_the_clean_run(attn_only):
    model = random_model(attn_only=attn_only)
    clean, corrupted = corrupted_pair()
    clean_logits, _ = model(clean)
    for depth in range(3):
        torch.testing.assert_close(patch_everything(model, clean, corrupted, depth), clean_logits, rtol=0, atol=1e-12)
    metric = negative_loss_metric(clean, start=8)
    every = patch_residual(model, clean, corrupted, metric, positions=[list(range(16))])
    torch.testing.assert_close(every.recovered, torch.ones(3, 1, dtype=torch.float64), rtol=0, atol=1e-12)


def test_residual_patching_at_one_position():
    model = random_model()
    clean, corrupted = corrupted_pair()
    metric = logit_diff_metric(3, 5, pos=-1)
    result = patch_residual(model, clean, corrupted, metric)
    assert result.recovered.shape == (3, 16)
    # after the last block, the last position alone fixes the last position's logits; the others do nothing
    assert float(result.recovered[-1, -1]) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(result.recovered[-1, :-1], torch.zeros(15, dtype=torch.float64), rtol=0, atol=1e-12)
    # positions where clean and corrupted agree are no-ops at depth 0
    same = (clean == corrupted).all(0)
    torch.testing.assert_close(result.recovered[0, same], torch.zeros(int(same.sum()), dtype=torch.float64),
                               rtol=0, atol=1e-12)  # fmt: skip
    with torch.no_grad():
        m_clean, m_corrupt = float(metric(model(clean)[0])), float(metric(model(corrupted)[0]))
    assert (result.clean, result.corrupted) == (pytest.approx(m_clean, abs=1e-12), pytest.approx(m_corrupt, abs=1e-12))


def test_head_patching_equals_a_hand_written_swap():
    model = random_model(attn_only=True)
    clean, corrupted = corrupted_pair()
    metric = negative_loss_metric(clean, start=8)
    result = patch_heads(model, clean, corrupted, metric)
    assert result.recovered.shape == (2, 4)
    _, cache = run_with_cache(model, clean)
    layer, head = 1, 3
    swap = model.transformer.h[layer].attn.hook_z.register_forward_hook(
        lambda _m, _i, z: torch.cat([z[:, :head], cache.z[layer][:, head : head + 1], z[:, head + 1 :]], 1)
    )
    try:
        with torch.no_grad():
            logits, _ = model(corrupted)
    finally:
        swap.remove()
    loss = F.cross_entropy(logits[:, 8:-1].transpose(1, 2), clean[:, 9:])
    assert float(result.patched[layer, head]) == pytest.approx(-float(loss), abs=1e-12)
    gap = result.clean - result.corrupted
    assert float(result.recovered[layer, head]) == pytest.approx((-float(loss) - result.corrupted) / gap, abs=1e-12)
    assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="same shape"):
        patch_heads(model, clean, corrupted[:, :-1], metric)


# ------------------------------------------------------------------------------------------- circuits
def test_full_circuits_equal_an_explicit_forward_on_one_hot_inputs():
    model = random_model(attn_only=True)
    vocab, hs = model.config.vocab_size, model.config.head_size
    one_hot = torch.eye(vocab, dtype=torch.float64)
    block = model.transformer.h[0]
    with torch.no_grad():
        x = block.ln_1(one_hot @ model.transformer.wte.weight)  # each token alone in the stream, through ln_1
        q, k, v = block.attn.c_attn(x).split(model.config.n_embd, dim=-1)
        for head in (0, 3):
            cols = slice(head * hs, (head + 1) * hs)
            scores = q[:, cols] @ k[:, cols].T / math.sqrt(hs)
            torch.testing.assert_close(full_qk_circuit(model, head), scores, rtol=0, atol=1e-12)
            written = v[:, cols] @ block.attn.c_proj.weight[:, cols].T  # the head's slice of c_proj, no bias
            torch.testing.assert_close(full_ov_circuit(model, head), model.lm_head(written), rtol=0, atol=1e-12)
    # a layer-1 head on the real stream entering layer 1: the same steps on that stream
    _, cache = run_with_cache(model, IDS)
    block = model.transformer.h[1]
    with torch.no_grad():
        v = block.attn.c_attn(block.ln_1(cache.resid[0]))[..., 2 * 32 + 8 : 2 * 32 + 16]  # head 1's values
        expected = model.lm_head(v @ block.attn.c_proj.weight[:, 8:16].T)
    torch.testing.assert_close(ov_on_stream(model, 1, 1, cache.resid[0]), expected, rtol=0, atol=1e-12)


def test_copying_score_uses_the_small_eigenproblem_and_top1_diagonal():
    model = random_model(attn_only=True, vocab=20)
    for head in range(4):
        full = full_ov_circuit(model, head)
        eig = torch.linalg.eigvals(full)
        assert copying_score(model, head) == pytest.approx(float(eig.real.sum() / eig.abs().sum()), abs=1e-9)
    assert top1_diagonal(torch.eye(5) * 2 - 1) == 1.0
    assert top1_diagonal(torch.eye(4).roll(1, 0)) == 0.0
    offset = torch.tensor([0.0, 0.0, 9.0, 0.0])  # a logit raised whatever the head attends to: not copying
    assert top1_diagonal(torch.eye(4) + offset) == 1.0 and top1_diagonal(torch.eye(4).roll(1, 0) + offset) == 0.0
    # a head whose OV circuit is the unembedding's inverse copies perfectly: make W_OV map e_t to u_t
    torch.manual_seed(0)
    copy = GPT(GPTConfig(vocab_size=8, block_size=4, n_layer=1, n_head=1, n_embd=8, dropout=0.0, attn_only=True))
    with torch.no_grad():
        copy.transformer.wte.weight.copy_(torch.eye(8))
        copy.transformer.h[0].ln_1.weight.fill_(1.0)
        copy.transformer.h[0].attn.c_attn.weight[16:].copy_(torch.eye(8))
        copy.transformer.h[0].attn.c_attn.bias.zero_()
        copy.transformer.h[0].attn.c_proj.weight.copy_(torch.eye(8))
    # ln_1 centres each one-hot row: e_t - 1/8, whose logits still put token t on top
    assert top1_diagonal(full_ov_circuit(copy, 0)) == 1.0 and copying_score(copy, 0) == pytest.approx(1.0, abs=1e-6)


def hand_built_pair() -> GPT:
    """Layer 0 head 0 writes direction v (reads u); layer 1 head 0's key reads r = v, head 1's key reads r ⟂ v."""
    cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, attn_only=True)
    model = GPT(cfg).double()
    e = torch.eye(8, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for block in model.transformer.h:
            block.ln_1.weight.fill_(1.0)
        a0, a1 = model.transformer.h[0].attn, model.transformer.h[1].attn
        # previous-token head (L0H0): W_V reads u = e0 into its first slot, W_O writes v = e1 from it
        a0.c_attn.weight[16 + 0, 0] = 1.0
        a0.c_proj.weight[1, 0] = 2.0
        # induction head (L1H0): query reads p = e2, key reads r = e1 (what L0H0 writes): W_QK = p rᵀ
        a1.c_attn.weight[0, 2] = 1.0
        a1.c_attn.weight[8 + 0, 1] = 3.0
        # a decoy (L1H1): key reads e3, orthogonal to v; its query reads v = e1 (Q-composition instead)
        a1.c_attn.weight[4, 1] = 1.0
        a1.c_attn.weight[8 + 4, 3] = 1.0
        # a half-aligned head would need a third slot: L1H0 keys also read (e1 + e5)/√2 in a later check
    assert torch.equal(ov_matrix(model, 0, 0), 2.0 * torch.outer(e[0], e[1]))
    return model


def test_hand_built_previous_token_and_induction_pair_compose():
    model = hand_built_pair()
    assert float(k_composition(model, (0, 0), (1, 0))) == pytest.approx(1.0, abs=1e-12)  # key reads what L0H0 writes
    assert float(k_composition(model, (0, 0), (1, 1))) == pytest.approx(0.0, abs=1e-12)  # the decoy's key does not
    assert float(q_composition(model, (0, 0), (1, 1))) == pytest.approx(1.0, abs=1e-12)  # its query does
    assert float(q_composition(model, (0, 0), (1, 0))) == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():  # turn the key's direction 45° away from v: |cos| = 1/√2
        model.transformer.h[1].attn.c_attn.weight[8 + 0, 5] = 3.0
    assert float(k_composition(model, (0, 0), (1, 0))) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    with pytest.raises(ValueError, match="lower layer"):
        k_composition(model, (1, 0), (0, 0))


def test_qk_matrix_gives_the_scores_on_any_stream_when_biases_are_zero():
    model = random_model(attn_only=True)
    with torch.no_grad():
        model.transformer.h[1].attn.c_attn.bias.zero_()
        model.transformer.h[1].ln_1.bias.zero_()
    x = torch.randn(5, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    block = model.transformer.h[1]
    normed = F.layer_norm(x, (32,), eps=block.ln_1.eps)  # centre and scale; the weight is folded into W_QK
    q, k, _ = block.attn.c_attn(block.ln_1(x)).split(32, dim=-1)
    for head in range(4):
        cols = slice(head * 8, (head + 1) * 8)
        torch.testing.assert_close(normed @ qk_matrix(model, 1, head) @ normed.T, q[:, cols] @ k[:, cols].T,
                                   rtol=0, atol=1e-12)  # fmt: skip
    assert float(composition_score(torch.eye(3), torch.eye(3))) == pytest.approx(1 / math.sqrt(3))
    with pytest.raises(ValueError, match="pre-LN"):
        qk_matrix(random_model("post"), 0, 0)


# ------------------------------------------------------------------------ the GPT-2 path, offline
def test_induction_circuit_on_a_random_gpt2_folder_in_the_hub_layout(tmp_path):
    """What notebook 11 runs on real GPT-2 when online, here on random weights stored as the hub stores them."""
    import json

    from safetensors.torch import save_file

    from gptmini.inspect import head_scores, induction_circuit

    torch.manual_seed(0)
    source = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=3, n_head=2, n_embd=16, dropout=0.0))
    state = {}
    for key, value in source.state_dict().items():
        if key == "lm_head.weight":
            continue
        key = key.removeprefix("transformer.")  # the hub's keys carry no prefix; Conv1D stores (in, out)
        state[key] = (
            value.t().contiguous() if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else value
        )
    save_file(state, tmp_path / "model.safetensors")
    hub = dict(model_type="gpt2", vocab_size=50, n_positions=32, n_embd=16, n_layer=3, n_head=2)
    (tmp_path / "config.json").write_text(json.dumps(hub))
    model = GPT.from_pretrained(tmp_path).eval()
    report = induction_circuit(model, n=8, batch=2, seed=0)
    clean = repeated_tokens(50, 8, 2, 0)
    corrupted = clean.clone()
    corrupted[:, :8] = repeated_tokens(50, 8, 2, 1)[:, :8]
    expected = patch_heads(model, clean, corrupted, negative_loss_metric(clean, start=8))
    torch.testing.assert_close(report.recovered, expected.recovered, rtol=0, atol=1e-9)
    scores = head_scores(model, clean[0], n=8, batch=2, seed=0)
    torch.testing.assert_close(report.scores["induction"], scores["induction"])
    best = divmod(int(scores["induction"].argmax()), 2)
    assert report.induction_heads[0] == best and len(report.induction_heads) == 3
    layer, head = report.previous_token_head
    assert layer < max(1, best[0]) or best[0] == 0
    for h, value in zip(report.induction_heads, report.k_composition, strict=True):
        if layer < h[0]:
            assert value == pytest.approx(float(k_composition(model, (layer, head), h)), abs=1e-9)
        else:
            assert math.isnan(value)
    assert report.clean_loss == pytest.approx(-expected.clean) and report.corrupted_loss == pytest.approx(
        -expected.corrupted
    )
    with pytest.raises(ValueError, match="post-LN"):
        induction_circuit(random_model("post"), n=4)
