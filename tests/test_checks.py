"""The notebooks' check helpers: they pass gptmini's own implementation and fail a wrong one, saying why."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.course.checks import CheckResult, compare_tensors, compare_values, package_version
from gptmini.course.checks.nb01 import check_batch, check_char_tokenizer, check_pairs, check_tokenizer_builder
from gptmini.course.checks.nb02 import check_embedding, check_input_embedding, check_lm_loss
from gptmini.course.checks.nb03 import check_attention, check_causal_mask, check_softmax, check_window_mask
from gptmini.course.checks.nb04 import check_block, check_mlp, check_multihead, check_split_heads
from gptmini.course.checks.nb05 import check_gpt, check_gpt_loss
from gptmini.data import get_batch
from gptmini.model import MLP, Block, CausalSelfAttention, causal_mask
from gptmini.tokenizers import CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


# ------------------------------------------------------------------------------------------ the report
def test_compare_tensors_names_first_difference_and_shape(capsys):
    a = torch.zeros(2, 3)
    b = a.clone()
    b[1, 2] = 5.0
    assert compare_tensors("thing", a, a.clone())
    result = compare_tensors("thing", b, a)
    assert not result
    assert "first difference at index (1, 2): got 5, expected 0" in result.message
    assert "1 of 6 values differ" in result.message
    shape = compare_tensors("thing", torch.zeros(3, 2), a)
    assert not shape and "wrong shape: got (3, 2), expected (2, 3)" in shape.message
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✅ thing matches gptmini"
    assert out[1].startswith("❌ thing differs")


def test_compare_tensors_nan_never_matches_and_none_is_reported():
    assert not compare_tensors("x", torch.tensor([float("nan")]), torch.tensor([float("nan")]))
    scalar = compare_tensors("L1", torch.tensor(3.0), torch.tensor(-2.0))
    assert not scalar and scalar.message.startswith("❌ L1 differs: got 3, expected -2")
    none = compare_tensors("x", None, torch.zeros(1))
    assert not none and "forgot to `return`" in none.message


def test_compare_values_sequences_and_floats():
    assert compare_values("ids", [1, 2, 3], [1, 2, 3])
    diff = compare_values("ids", [1, 9, 3], [1, 2, 3])
    assert not diff and "first difference at index 1: got 9, expected 2" in diff.message
    short = compare_values("ids", [1, 2], [1, 2, 3])
    assert not short and "too short" in short.message
    assert compare_values("x", 0.1 + 0.2, 0.3)
    assert not compare_values("text", "abd", "abc")


def test_misuse_raises_but_a_wrong_answer_does_not():
    with pytest.raises(TypeError, match="function"):
        check_attention("not a function")
    with pytest.raises(TypeError, match="name must be a string"):
        compare_tensors(3, torch.zeros(1), torch.zeros(1))
    result = check_attention(lambda q, k, v: 1 / 0)  # the learner's crash is reported, not raised
    assert not result and "ZeroDivisionError" in result.message


def test_result_is_printed_once_in_a_notebook(capsys):
    result = compare_values("x", 1, 1)
    result._ipython_display_()  # IPython shows the cell's value right after the check printed it
    assert capsys.readouterr().out.count("matches gptmini") == 1
    result._ipython_display_()  # shown again later, on purpose
    assert capsys.readouterr().out.count("matches gptmini") == 1
    assert isinstance(result, CheckResult) and repr(result).startswith("CheckResult(passed=True")


# ------------------------------------------------------------------------------------------ notebook 01
def test_char_tokenizer_check():
    tok = CharTokenizer.from_text(TEXT)
    assert check_char_tokenizer(tok.encode, tok.decode, TEXT)
    unsorted = list(dict.fromkeys(TEXT))  # order of first appearance: a valid tokenizer, but not gptmini's ids
    stoi = {ch: i for i, ch in enumerate(unsorted)}
    result = check_char_tokenizer(lambda s: [stoi[c] for c in s], tok.decode, TEXT)
    assert not result
    assert "encode(text) differs: first difference at index 0" in result.details[0].message


def _builder(order=sorted, first_id=0, joined=True, vocabulary_of=None):
    """A character tokenizer builder with the slips check_tokenizer_builder names."""

    def build(text):
        chars = order(set(vocabulary_of or text)) if order is sorted else order(text)
        stoi = {ch: i + first_id for i, ch in enumerate(chars)}
        itos = {i: ch for ch, i in stoi.items()}
        decode = (lambda ids: "".join(itos[i] for i in ids)) if joined else (lambda ids: [itos[i] for i in ids])
        return (lambda s: [stoi[ch] for ch in s]), decode

    return build


def test_tokenizer_builder_check_passes_gptmini_and_a_builder(capsys):
    assert check_tokenizer_builder(_builder(), TEXT)
    encode, decode = package_version("char_tokenizer", TEXT)
    assert check_tokenizer_builder(lambda text: package_version("char_tokenizer", text), TEXT)
    assert decode(encode(TEXT)) == TEXT
    assert check_tokenizer_builder(lambda text: (_ for _ in ()).throw(NotImplementedError()), TEXT).pending
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (_builder(order=lambda text: list(dict.fromkeys(text))), "number the characters in sorted order"),
        (_builder(first_id=1), "the first place is 0"),
        (_builder(vocabulary_of=TEXT), "build the vocabulary from the text you are given"),
        (_builder(joined=False), "decode gives one string"),
        (lambda text: _builder()(text)[0], "should be the pair (encode, decode)"),
    ],
    ids=["unsorted", "from-1", "corpus-vocabulary", "list-not-string", "encode-only"],
)
def test_tokenizer_builder_slips_are_named(build, named, capsys):
    result = check_tokenizer_builder(build, TEXT)
    assert not result and not result.pending
    assert named in capsys.readouterr().out


def test_tokenizer_builder_names_the_corpus_vocabulary_used_for_another_text(capsys):
    corpus = TEXT + "abcdefghijklmnopqrstuvwxyz,:"  # every character of the check's own short text
    result = check_tokenizer_builder(_builder(vocabulary_of=corpus), corpus)
    assert not result and "those are the corpus's ids" in capsys.readouterr().out


def test_pairs_check():
    chunk = [5, 1, 4, 2, 7]
    good = [(chunk[: t + 1], chunk[t + 1]) for t in range(4)]
    assert check_pairs(good, chunk)
    off_by_one = [(chunk[:t], chunk[t]) for t in range(1, 5)]
    assert check_pairs(off_by_one, chunk)  # the same pairs, built another way
    wrong = [(chunk[: t + 1], chunk[t]) for t in range(4)]  # "next" is the last context token
    result = check_pairs(wrong, chunk)
    assert not result and "first difference at index 0" in result.message


def test_batch_check_accepts_get_batch_and_rejects_unshifted_targets():
    data = torch.arange(100) % 17
    x, y = get_batch(data, 4, 8, generator=torch.Generator().manual_seed(0))
    assert check_batch(x, y, data, block_size=8)
    same = check_batch(x, x.clone(), data)
    assert not same and "shifted" in same.message
    shifted_wrong = check_batch(x, torch.roll(x, 1, dims=1), data)
    assert not shifted_wrong and "row 0 of y" in shifted_wrong.message


# ------------------------------------------------------------------------------------------ notebook 02
def test_embedding_check():
    assert check_embedding(lambda idx, we, wp: we[idx] + wp[: idx.size(1)])
    one_hot = lambda idx, we, wp: F.one_hot(idx, we.size(0)).float() @ we + wp[torch.arange(idx.size(1))]
    assert check_embedding(one_hot)
    no_pos = check_embedding(lambda idx, we, wp: we[idx])
    assert not no_pos and "add the position embeddings" in no_pos.message
    by_token = check_embedding(lambda idx, we, wp: we[idx] + wp[idx])
    assert not by_token and "positions were looked up with the token ids" in by_token.message


def _input_layer(kind):
    """gptmini's input layer with one slip in its forward (see check_input_embedding)."""
    base = package_version("InputEmbedding")

    class Layer(base):
        def forward(self, idx):
            t = idx.size(1)
            if t > self.block_size and kind != "no refusal":
                raise ValueError("too long for the position table")
            pos = torch.arange(t)
            return {
                "no positions": lambda: self.drop(self.wte(idx)),
                "positions by id": lambda: self.drop(self.wte(idx) + self.wpe(idx)),
                "no dropout": lambda: self.wte(idx) + self.wpe(pos),
                "dropout on tokens": lambda: self.drop(self.wte(idx)) + self.wpe(pos),
            }.get(kind, lambda: self.drop(self.wte(idx) + self.wpe(pos)))()

    return Layer


def test_input_embedding_check_passes_gptmini_and_waits_for_a_stub(capsys):
    assert check_input_embedding(package_version("InputEmbedding"))
    assert check_input_embedding(None).pending
    assert check_input_embedding(_input_layer("stub")) and "❌" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("no positions", "add the position rows"),
        ("positions by id", "a position row belongs to the place"),
        ("no dropout", "applies dropout (0.1) to the embeddings while training"),
        ("dropout on tokens", "dropout acts once, on the sum h0"),
        ("no refusal", "refuse a longer sequence yourself"),
    ],
)
def test_input_embedding_slips_are_named(kind, named, capsys):
    result = check_input_embedding(_input_layer(kind))
    assert not result and not result.pending
    assert named in capsys.readouterr().out


def test_input_embedding_names_tables_of_the_wrong_shape(capsys):
    class Swapped(nn.Module):
        def __init__(self, vocab_size, block_size, n_embd, dropout=0.1):
            super().__init__()
            self.wte = nn.Embedding(block_size, n_embd)
            self.wpe = nn.Embedding(vocab_size, n_embd)

    result = check_input_embedding(Swapped)
    assert not result and "wte.weight of shape (11, 16)" in result.message


def test_lm_loss_check():
    def mine(logits, targets):
        logp = logits.log_softmax(-1)
        return -logp.gather(-1, targets.unsqueeze(-1)).mean()

    assert check_lm_loss(mine)
    summed = check_lm_loss(lambda lg, t: F.cross_entropy(lg.flatten(0, 1), t.flatten(), reduction="sum"))
    assert not summed and "sum over positions" in summed.message
    flipped = check_lm_loss(lambda lg, t: -F.cross_entropy(lg.flatten(0, 1), t.flatten()))
    assert not flipped and "sign is flipped" in flipped.message


# ------------------------------------------------------------------------------------------ notebook 03
def _masked_attention(q, k, v):
    t = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    weights = scores.masked_fill(~causal_mask(t, t), float("-inf")).softmax(-1)
    return weights @ v, weights


def test_attention_check_passes_the_package_path_and_names_the_future_when_unmasked():
    assert check_attention(_masked_attention)
    assert check_attention(_masked_attention, shape=(2, 3, 5, 4))

    def unmasked(q, k, v):
        weights = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
        return weights @ v, weights

    result = check_attention(unmasked)
    assert not result
    output_line, weights_line = result.details
    assert "WITHOUT the causal mask" in output_line.message
    assert "position 0 sees future position(s) 1, 2, 3, 4, 5" in output_line.message
    assert "query position 0 gives weight" in weights_line.message and "future position 1" in weights_line.message


def test_attention_check_spots_missing_scale():
    def unscaled(q, k, v):
        t = q.size(-2)
        return (q @ k.transpose(-2, -1)).masked_fill(~causal_mask(t, t), float("-inf")).softmax(-1) @ v

    result = check_attention(unscaled)
    assert not result and "not divided by √d" in result.message


def test_softmax_and_mask_checks():
    def stable(x):
        e = (x - x.max(-1, keepdim=True).values).exp()
        return e / e.sum(-1, keepdim=True)

    assert check_softmax(stable)
    naive = check_softmax(lambda x: x.exp() / x.exp().sum(-1, keepdim=True))
    assert not naive and "subtract each row's max" in naive.message
    assert check_causal_mask(torch.tril(torch.ones(5, 5, dtype=torch.bool)))
    additive = torch.zeros(5, 5).masked_fill(~torch.tril(torch.ones(5, 5, dtype=torch.bool)), float("-inf"))
    assert check_causal_mask(additive)
    inverted = check_causal_mask(~torch.tril(torch.ones(5, 5, dtype=torch.bool)))
    assert not inverted and "inverted" in inverted.message
    no_diag = check_causal_mask(torch.ones(4, 4, dtype=torch.bool).tril(-1))
    assert not no_diag and "diagonal is missing" in no_diag.message


def test_window_mask_check():
    def window(t, w):
        i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
        return (j <= i) & (j > i - w)

    assert check_window_mask(window)
    causal_only = check_window_mask(lambda t, w: torch.ones(t, t, dtype=torch.bool).tril())
    assert not causal_only and "query 2 allows key 0, but it should block it" in causal_only.message


def test_unanswered_exercises_fail_with_a_clear_message():
    for result in (
        check_pairs(None, [1, 2, 3]),
        check_gpt_loss(None, GPT(GPTConfig.preset("tiny")), torch.zeros(1, 2).long(), torch.zeros(1, 2).long()),
        check_causal_mask(None),
        check_window_mask(lambda t, w: None),
        compare_values("answer", None, 3),
    ):
        assert not result and "no answer yet" in result.message


# ------------------------------------------------------------------------------------------ notebook 04
def test_split_heads_check():
    def split(x, n):
        b, t, c = x.shape
        return x.view(b, t, n, c // n).transpose(1, 2)

    def merge(h):
        b, n, t, hs = h.shape
        return h.transpose(1, 2).reshape(b, t, n * hs)

    assert check_split_heads(split, merge)
    wrong = check_split_heads(lambda x, n: x.reshape(x.size(0), n, x.size(1), -1))
    assert not wrong and "scrambles tokens across heads" in wrong.message


class _NoMaskAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = (p.view(b, t, self.n_head, -1).transpose(1, 2) for p in self.c_attn(x).split(c, dim=2))
        w = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
        return self.c_proj((w @ v).transpose(1, 2).reshape(b, t, c))


def test_multihead_and_mlp_checks():
    config = GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=4, n_embd=32, dropout=0.0)
    assert check_multihead(CausalSelfAttention(config), config)
    result = check_multihead(_NoMaskAttention(config), config)
    assert not result and "every position sees the future" in result.message
    renamed = nn.Module()
    renamed.qkv = nn.Linear(32, 96)
    renamed.out = nn.Linear(32, 32)
    names = check_multihead(renamed, config)
    assert not names and "different parameter names" in names.message and "c_attn.weight" in names.message

    assert check_mlp(MLP(config), config)
    relu = MLP(config)
    relu.act = nn.ReLU()
    bad = check_mlp(relu, config)
    assert not bad and "ReLU" in bad.message


class _SlipAttention(nn.Module):
    """Multi-head attention written out, with one of the slips check_multihead names."""

    def __init__(self, config, slip):
        super().__init__()
        self.n_head, self.slip = config.n_head, slip
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        b, t, c = x.shape
        hs = c // self.n_head
        parts = self.c_attn(x).split(c, dim=2)
        if self.slip == "scrambled":
            q, k, v = (p.reshape(b, self.n_head, t, hs) for p in parts)
        else:
            q, k, v = (p.view(b, t, self.n_head, hs).transpose(1, 2) for p in parts)
        scores = q @ k.transpose(-2, -1) / math.sqrt(c if self.slip == "sqrt C" else hs)
        future = ~torch.tril(torch.ones(t, t, dtype=torch.bool))
        scores = scores.masked_fill(future, 0.0 if self.slip == "zero fill" else float("-inf"))
        weights = scores.softmax(dim=-2 if self.slip == "query softmax" else -1)
        y = (weights @ v).transpose(1, 2).reshape(b, t, c)
        return y if self.slip == "no c_proj" else self.c_proj(y)


@pytest.mark.parametrize(
    ("slip", "named"),
    [
        ("sqrt C", "scale by the square root of the head size, not of the model's width"),
        ("scrambled", "cut the channels into heads first"),
        ("zero fill", "the future must get weight exactly 0"),
        ("query softmax", "each query's weights over the keys must sum to 1"),
        ("no c_proj", "the output projection that mixes them"),
    ],
)
def test_multihead_slips_are_named(slip, named):
    config = GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=4, n_embd=32, dropout=0.0)
    assert check_multihead(_SlipAttention(config, "none"), config)
    result = check_multihead(_SlipAttention(config, slip), config)
    assert not result and named in result.message


def test_block_check_post_and_pre_and_names_the_wrong_order():
    post = GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=4, n_embd=32, dropout=0.0, norm="post")
    pre = post.replace(norm="pre")
    assert check_block(Block(post), post)
    assert check_block(Block(pre), pre)
    result = check_block(Block(pre), post)  # a GPT-2 block where GPT-1's is asked for
    assert not result and "pre-LN" in result.message and "config.norm='post'" in result.message

    class SwappedNorms(Block):
        def forward(self, x, cache=None):
            x = self.ln_2(x + self.attn(x, cache))
            return self.ln_1(x + self.mlp(x))

    assert not check_block(SwappedNorms(post), post)


# ------------------------------------------------------------------------------------------ notebook 05
def test_gpt_check_and_weight_tying():
    config = GPTConfig.preset("tiny", norm="post")
    assert check_gpt(GPT(config), config)
    untied = GPT(config)
    untied.lm_head.weight = nn.Parameter(untied.lm_head.weight.detach().clone())
    result = check_gpt(untied, config)
    assert not result and "weight tying" in result.details[0].message


def test_gpt_loss_check():
    config = GPTConfig.preset("tiny", norm="post")
    torch.manual_seed(0)
    model = GPT(config)
    x = torch.randint(config.vocab_size, (2, 8))
    y = torch.randint(config.vocab_size, (2, 8))
    logits, loss = model.eval()(x, y)
    L1 = logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).sum()
    assert check_gpt_loss(L1, model, x, y)
    mean = check_gpt_loss(loss, model, x, y)
    assert not mean and "SUM of log-probabilities" in mean.message
