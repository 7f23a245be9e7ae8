"""GPT-1 fine-tuning: special tokens, the four input layouts, truncation, the heads, L3 and the loop."""

import copy

import pytest
import torch
import torch.nn.functional as F

from gptmini import GPT, GPTConfig
from gptmini.finetune import (
    IGNORE,
    FineTuneConfig,
    GPT1Classifier,
    SpecialTokens,
    add_special_tokens,
    classification_input,
    collate,
    combined_loss,
    encode_examples,
    entailment_input,
    evaluate,
    finetune,
    finetune_task,
    multiple_choice_inputs,
    newline_id,
    prepare_classifier,
    similarity_inputs,
    transfer_layers,
    transform,
)
from gptmini.tasks import Example, Task

SP = SpecialTokens.for_vocab(64)  # <s> = 64, $ = 65, <e> = 66
S, D, E = 64, 65, 66


@pytest.fixture
def grown(tiny_model):
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model)
    return model, special


# ------------------------------------------------------------------------------- special tokens
def test_special_ids_follow_the_vocabulary():
    assert (SP.start, SP.delimiter, SP.extract) == (64, 65, 66)
    assert SP.vocab_size == 67 and SP.base_vocab_size == 64
    assert [SP.name(i) for i in (64, 65, 66, 3)] == ["<s>", "$", "<e>", None]
    with pytest.raises(ValueError):
        SpecialTokens.for_vocab(0)


def test_add_special_tokens_grows_the_model_and_keeps_old_rows(tiny_model):
    old = tiny_model.transformer.wte.weight.detach().clone()
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model)
    assert special == SP
    assert model.config.vocab_size == 67
    assert model.transformer.wte.weight.shape == (67, 32)
    assert torch.equal(model.transformer.wte.weight[:64], old)
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    new_rows = model.transformer.wte.weight[64:]
    assert 0.0 < new_rows.std().item() < 0.05  # N(0, 0.02), not zeros and not huge
    logits, _ = model(torch.tensor([[S, 1, 2, D, 3, E]]))
    assert logits.shape == (1, 6, 67)


def test_special_tokens_can_start_from_an_existing_row(tiny_model):
    old = tiny_model.transformer.wte.weight.detach().clone()
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model, init_from=10)  # all three copy row 10
    rows = model.transformer.wte.weight
    assert all(torch.equal(rows[i], old[10]) for i in (special.start, special.delimiter, special.extract))
    assert torch.equal(rows[:64], old)
    model = copy.deepcopy(tiny_model)
    add_special_tokens(model, init_from=[1, 2, 3])  # one each
    assert [torch.equal(model.transformer.wte.weight[64 + k], old[k + 1]) for k in range(3)] == [True] * 3
    with pytest.raises(ValueError, match="one token id or three"):
        add_special_tokens(copy.deepcopy(tiny_model), init_from=[1, 2])
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        add_special_tokens(copy.deepcopy(tiny_model), init_from=64)


def test_newline_id_and_finetune_task_use_it(tiny_model):
    from gptmini.tokenizers import CharTokenizer

    tok = CharTokenizer("ab\n ")
    assert newline_id(tok) == tok.encode("\n")[0]
    assert newline_id(CharTokenizer("ab ")) is None  # no newline in the vocabulary
    clf, special = prepare_classifier(tiny_model, "classification", 2, init_from=newline_id(tok))
    rows = clf.gpt.transformer.wte.weight
    assert torch.equal(rows[special.delimiter], tiny_model.transformer.wte.weight[newline_id(tok)])
    gpt = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    examples = [Example(("ab",), 0), Example(("ba",), 1)]
    task = Task("toy", "classification", ("a", "b"), examples, examples)
    for init, same in (("newline", True), ("random", False)):
        clf, _ = finetune_task(gpt, tok, task, FineTuneConfig(epochs=1, learning_rate=1e-12, special_init=init))
        start = clf.gpt.transformer.wte.weight[tok.vocab_size]  # <s>, barely moved by a tiny lr
        nl = gpt.transformer.wte.weight[newline_id(tok)]
        assert torch.allclose(start, nl, atol=1e-6) == same
    with pytest.raises(ValueError, match="special_init"):
        FineTuneConfig(special_init="zeros")


def test_special_token_strings():
    from gptmini.tokenizers import CharTokenizer

    tok = CharTokenizer("abc")
    sp = SpecialTokens.for_vocab(tok.vocab_size)
    enc = classification_input(tok.encode("ab"), sp)
    assert sp.token_strings(enc.ids, tok) == ["<s>", "a", "b", "<e>"]


# ------------------------------------------------------------------------------- layouts
def test_classification_layout():
    enc = classification_input([1, 2, 3], SP)
    assert enc.ids == [S, 1, 2, 3, E] and enc.extract == 4 and enc.truncated == 0


def test_entailment_layout():
    enc = entailment_input([1, 2], [3], SP)
    assert enc.ids == [S, 1, 2, D, 3, E] and enc.extract == 5


def test_similarity_layout_has_both_orders():
    ab, ba = similarity_inputs([1, 2], [3], SP)
    assert ab.ids == [S, 1, 2, D, 3, E] and ab.extract == 5
    assert ba.ids == [S, 3, D, 1, 2, E] and ba.extract == 5


def test_multiple_choice_layout():
    encs = multiple_choice_inputs([1, 2], [[3], [4, 5]], SP)
    assert [e.ids for e in encs] == [[S, 1, 2, D, 3, E], [S, 1, 2, D, 4, 5, E]]
    assert [e.extract for e in encs] == [5, 6]


def test_transform_dispatches_and_checks_arity():
    assert [e.ids for e in transform("entailment", [[1], [2]], SP)] == [[S, 1, D, 2, E]]
    assert len(transform("similarity", [[1], [2]], SP)) == 2
    assert len(transform("multiple_choice", [[1], [2], [3], [4]], SP)) == 3
    with pytest.raises(ValueError, match="2 text"):
        transform("entailment", [[1]], SP)
    with pytest.raises(ValueError, match="unknown"):
        transform("regression", [[1]], SP)


# ------------------------------------------------------------------------------- truncation
def test_classification_keeps_the_end():
    enc = classification_input(list(range(1, 11)), SP, max_len=6)
    assert enc.ids == [S, 7, 8, 9, 10, E] and enc.truncated == 6


def test_entailment_keeps_the_whole_hypothesis_and_the_end_of_the_premise():
    enc = entailment_input(list(range(1, 11)), [20, 21], SP, max_len=8)
    assert enc.ids == [S, 8, 9, 10, D, 20, 21, E] and enc.truncated == 7
    assert len(enc.ids) == 8
    with pytest.raises(ValueError, match="hypothesis"):
        entailment_input([1], list(range(20, 26)), SP, max_len=8)  # 6 + 3 > 8


def test_multiple_choice_keeps_answers_and_the_same_context_end():
    encs = multiple_choice_inputs(list(range(1, 11)), [[20], [21, 22, 23]], SP, max_len=8)
    assert [e.ids for e in encs] == [[S, 9, 10, D, 20, E], [S, 9, 10, D, 21, 22, 23, E]]
    with pytest.raises(ValueError, match="answer"):
        multiple_choice_inputs([1], [[1], list(range(6))], SP, max_len=8)


def test_similarity_truncation_shortens_the_longer_text_and_is_symmetric():
    a, b = list(range(1, 11)), [20, 21]
    ab, ba = similarity_inputs(a, b, SP, max_len=10)  # 7 slots: b whole, a keeps its last 5
    assert ab.ids == [S, 6, 7, 8, 9, 10, D, 20, 21, E]
    assert ba.ids == [S, 20, 21, D, 6, 7, 8, 9, 10, E]
    # equal lengths: both capped alike, and swapping the inputs swaps the outputs
    x, y = list(range(1, 7)), list(range(11, 17))
    xy, yx = similarity_inputs(x, y, SP, max_len=10)
    assert xy.ids == [S, 4, 5, 6, D, 14, 15, 16, E]
    assert (yx.ids, xy.ids) == tuple(e.ids for e in similarity_inputs(y, x, SP, max_len=10))
    assert all(len(e.ids) <= 10 for e in (ab, ba, xy, yx))


# ------------------------------------------------------------------------------- batches
def test_collate_pads_right_and_shifts_targets():
    batch = collate([[classification_input([1, 2, 3], SP)], [classification_input([4], SP)]], [1, 0])
    assert batch.idx.shape == (2, 1, 5)
    assert batch.idx[1, 0].tolist() == [S, 4, E, 0, 0]
    assert batch.lm_targets[0, 0].tolist() == [1, 2, 3, E, IGNORE]
    assert batch.lm_targets[1, 0].tolist() == [4, E, IGNORE, IGNORE, IGNORE]
    assert batch.extract.tolist() == [[4], [2]]
    assert batch.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="same number"):
        collate([[classification_input([1], SP)], list(similarity_inputs([1], [2], SP))], [0, 1])


# ------------------------------------------------------------------------------- heads
def test_classifier_reads_the_extract_state(grown):
    model, special = grown
    clf = GPT1Classifier(model, "classification", n_classes=3).eval()
    batch = collate([[classification_input([1, 2, 3], special)], [classification_input([4], special)]], [0, 1])
    out = clf(batch.idx, batch.extract)
    for row, ids in enumerate(([S, 1, 2, 3, E], [S, 4, E])):
        x = model.hidden_states(torch.tensor([ids]))  # unpadded, on its own
        expected = x[0, -1] @ clf.head.weight.T + clf.head.bias
        torch.testing.assert_close(out.logits[row], expected, rtol=1e-5, atol=1e-6)


def test_similarity_head_is_order_symmetric(grown):
    model, special = grown
    clf = GPT1Classifier(model, "similarity").eval()
    a, b = [1, 2, 3, 4], [5, 6]
    one = collate([list(similarity_inputs(a, b, special))], [1])
    other = collate([list(similarity_inputs(b, a, special))], [1])
    torch.testing.assert_close(clf(one.idx, one.extract).logits, clf(other.idx, other.extract).logits)
    # and it is the sum of the two orders' states that the head reads
    h, _ = clf.extract_states(one.idx, one.extract)
    expected = (h[:, 0] + h[:, 1]) @ clf.head.weight.T + clf.head.bias
    torch.testing.assert_close(clf(one.idx, one.extract).logits, expected)


def test_multiple_choice_scores_each_choice(grown):
    model, special = grown
    clf = GPT1Classifier(model, "multiple_choice").eval()
    encs = multiple_choice_inputs([1, 2], [[3], [4, 5], [6]], special)
    batch = collate([encs], [2])
    logits = clf(batch.idx, batch.extract).logits
    assert logits.shape == (1, 3)
    for k, enc in enumerate(encs):
        x = model.hidden_states(torch.tensor([enc.ids]))
        expected = x[0, -1] @ clf.head.weight[0] + clf.head.bias[0]
        torch.testing.assert_close(logits[0, k], expected, rtol=1e-5, atol=1e-6)


def test_lm_loss_equals_the_models_own_loss(grown):
    model, special = grown
    clf = GPT1Classifier(model, "classification").eval()
    enc = classification_input([1, 2, 3, 4], special)
    batch = collate([[enc]], [1])
    out = clf(batch.idx, batch.extract, batch.lm_targets)
    ids = torch.tensor([enc.ids])
    targets = torch.tensor([enc.ids[1:] + [IGNORE]])
    _, expected = model(ids, targets)
    torch.testing.assert_close(out.lm_loss, expected)


def test_l3_is_l2_plus_lambda_l1():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([0, 1])
    l1 = torch.tensor(1.7)
    l2 = F.cross_entropy(logits, labels)
    total, clf = combined_loss(logits, labels, l1, 0.0)
    assert torch.equal(total, l2) and torch.equal(clf, l2)
    total, _ = combined_loss(logits, labels, l1, 0.5)
    torch.testing.assert_close(total, l2 + 0.5 * 1.7)


def test_classifier_rejects_bad_settings(tiny_model):
    with pytest.raises(ValueError, match="kind"):
        GPT1Classifier(tiny_model, "regression")
    with pytest.raises(ValueError, match="n_classes"):
        GPT1Classifier(tiny_model, "classification", n_classes=1)


# ------------------------------------------------------------------------------- layer transfer
def test_transfer_layers_keeps_embeddings_and_first_blocks(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    part = transfer_layers(tiny_model, 1, seed=123)  # tiny_model itself was made with seed 0
    new, old = part.state_dict(), tiny_model.state_dict()
    for key in new:
        same = torch.equal(new[key], old[key])
        if key.startswith(("transformer.wte", "transformer.wpe", "transformer.h.0.", "lm_head")):
            assert same, key
        elif key.endswith("weight") and ("h.1." in key and "ln" not in key):
            assert not same, key  # freshly initialised
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())  # source untouched
    assert part.lm_head.weight is part.transformer.wte.weight
    full = transfer_layers(tiny_model, 2)
    assert all(torch.equal(v, old[k]) for k, v in full.state_dict().items())
    none = transfer_layers(tiny_model, 0, seed=123)
    assert not torch.equal(none.transformer.h[0].attn.c_attn.weight, tiny_model.transformer.h[0].attn.c_attn.weight)
    with pytest.raises(ValueError, match="between 0 and 2"):
        transfer_layers(tiny_model, 3)


# ------------------------------------------------------------------------------- the loop
def test_finetune_follows_gpt1s_linear_schedule_and_calls_back_with_records(tiny_model):
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model)
    train = _toy_task_tensors(special, 40, 0)
    config = FineTuneConfig(learning_rate=1.0, batch_size=4, max_iters=20, warmup_iters=4, eval_train=False)
    records = []
    result = finetune(GPT1Classifier(model, "classification"), train, None, config, callbacks=[records.append])
    assert result.steps == 20 and [r["step"] for r in records] == list(range(1, 21))  # max_iters beats epochs
    # warm-up 0.25, 0.5, 0.75, 1.0, then a straight line from 1.0 (step 4) to 0 (step 20)
    assert [r["lr"] for r in records] == pytest.approx([0.25, 0.5, 0.75, 1.0] + [1 - k / 16 for k in range(16)])
    assert [r["train_loss"] for r in records] == result.losses and records[0]["kind"] == "train"
    assert FineTuneConfig(batch_size=32, epochs=3).schedule(100) == (12, 1)  # 4 batches x 3 epochs, 10 % warm-up


def test_classifier_head_follows_a_bfloat16_model(tiny_model):
    model = copy.deepcopy(tiny_model).to(torch.bfloat16)
    special = add_special_tokens(model)
    clf = GPT1Classifier(model, "classification", clf_dropout=0.0)
    assert clf.head.weight.dtype == torch.bfloat16 and clf.head.weight.device == model.device
    data = _toy_task_tensors(special, 4, 0)
    out = clf(data.idx, data.extract, data.lm_targets)
    assert out.logits.shape == (4, 2) and out.logits.dtype == torch.bfloat16
    assert torch.isfinite(out.logits.float()).all() and torch.isfinite(out.lm_loss)


def test_finetuning_leaves_the_callers_cpu_and_gpu_random_states_alone(tiny_model, monkeypatch):
    """It seeds its own dropout; every global generator it touched is put back, a GPU's included."""
    gpu_state = [torch.zeros(3, dtype=torch.uint8)]  # a fake GPU generator: its state is the last seed
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [t.clone() for t in gpu_state])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)

    def fake_seed(seed):
        gpu_state[0] = torch.full((3,), seed % 256, dtype=torch.uint8)

    monkeypatch.setattr(torch.cuda, "manual_seed_all", fake_seed)
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model)
    clf, data = GPT1Classifier(model, "classification"), _toy_task_tensors(special, 8, 0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    finetune(clf, data, None, FineTuneConfig(batch_size=4, epochs=1, eval_train=False))
    assert torch.equal(torch.rand(3), expected)  # the CPU stream continues as if nothing had run
    assert len(restored) == 1 and restored[0][0].tolist() == [123] * 3  # the caller's seed, not fine-tuning's


def _toy_task_tensors(special, n, seed):
    """Label 1 iff token 5 occurs in the text: learnable by attention in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    examples, labels = [], []
    for i in range(n):
        ids = torch.randint(6, 60, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
        label = i % 2
        if label:
            ids[int(torch.randint(len(ids), (1,), generator=g))] = 5
        examples.append([classification_input(ids, special)])
        labels.append(label)
    return collate(examples, labels)


@pytest.mark.parametrize("lm_coef", [0.0, 0.5])
def test_finetune_learns_a_toy_task_and_is_repeatable(tiny_model, lm_coef):
    model = copy.deepcopy(tiny_model)
    special = add_special_tokens(model)
    train, test = _toy_task_tensors(special, 256, 0), _toy_task_tensors(special, 128, 1)
    config = FineTuneConfig(learning_rate=3e-3, epochs=6, batch_size=32, lm_coef=lm_coef, clf_dropout=0.0)
    torch.manual_seed(0)
    clf = GPT1Classifier(model, "classification", clf_dropout=0.0)
    start = copy.deepcopy(clf)
    result = finetune(clf, train, test, config)
    assert result.steps == 6 * 8 and len(result.losses) == 48 and len(result.test_accuracy) == 6
    assert result.final_test_accuracy > 0.9
    assert evaluate(clf, test) == pytest.approx(result.final_test_accuracy)
    if lm_coef == 0:
        assert result.losses == result.clf_losses
    else:
        assert all(total > clf_loss for total, clf_loss in zip(result.losses, result.clf_losses, strict=True))
    again = finetune(start, train, test, config)
    assert again.losses == pytest.approx(result.losses, rel=1e-5)


def test_finetune_task_end_to_end_leaves_the_model_alone(tiny_model):
    from gptmini.tokenizers import CharTokenizer

    tok = CharTokenizer("abcdefgh ")
    gpt = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    train = [Example(("abc d", "ab"), i % 2) for i in range(8)] + [Example(("h" * 40, "g" * 5), 0)]
    task = Task("toy", "entailment", ("no", "yes"), train, [Example(("abc", "ab"), 1)] * 4)
    clf, result = finetune_task(gpt, tok, task, FineTuneConfig(epochs=1, batch_size=4))
    assert gpt.config.vocab_size == tok.vocab_size  # the original was copied, not grown
    assert clf.gpt.config.vocab_size == tok.vocab_size + 3
    assert result.steps == 3 and 0.0 <= result.final_test_accuracy <= 1.0
    # the long example was truncated to the 32-token window, the hypothesis kept
    special = SpecialTokens.for_vocab(tok.vocab_size)
    data = encode_examples(task.train, "entailment", tok, special, max_len=32)
    assert data.truncated == 1 and data.idx.shape[-1] == 32
    assert data.idx[-1, 0, -7:].tolist() == [special.delimiter, *tok.encode("ggggg"), special.extract]


def test_config_validation():
    with pytest.raises(ValueError, match="lm_coef"):
        FineTuneConfig(lm_coef=-1)
    paper = FineTuneConfig.gpt1()
    fields = (paper.learning_rate, paper.batch_size, paper.epochs, paper.warmup_frac, paper.lm_coef)
    assert fields == (6.25e-5, 32, 3, 0.002, 0.5)


def test_special_tokenizer_wraps_any_tokenizer():
    from gptmini.finetune import FineTuneTokenizer
    from gptmini.tokenizers import CharTokenizer

    tok = CharTokenizer("abc ")
    sp = SpecialTokens.for_vocab(6)  # a model table larger than the tokenizer's 4 symbols
    stok = FineTuneTokenizer(tok, sp)
    assert stok.vocab_size == 9 and stok.encode("ab c") == tok.encode("ab c")
    [enc] = stok.transform("entailment", ["ab", "c"])
    assert enc.ids == [6, *tok.encode("ab"), 7, *tok.encode("c"), 8]
    assert stok.decode(enc.ids) == "<s>ab$c<e>"
    assert stok.token_strings(enc.ids) == ["<s>", "a", "b", "$", "c", "<e>"]
    with pytest.raises(ValueError, match="inside this tokenizer"):
        FineTuneTokenizer(tok, SpecialTokens.for_vocab(2))


def test_a_compiled_model_is_fine_tuned_and_transferred_unwrapped(tiny_model):
    compiled = torch.compile(tiny_model, backend="eager")
    clf, special = prepare_classifier(compiled, "classification")
    assert clf.gpt is not tiny_model and type(clf.gpt) is GPT
    assert not any("_orig_mod" in name for name in clf.state_dict())
    assert torch.equal(clf.gpt.transformer.h[0].mlp.c_fc.weight, tiny_model.transformer.h[0].mlp.c_fc.weight)
    part = transfer_layers(compiled, 1, seed=0)
    assert type(part) is GPT and torch.equal(
        part.transformer.h[0].attn.c_attn.weight, tiny_model.transformer.h[0].attn.c_attn.weight
    )
    assert torch.equal(part.transformer.wte.weight, tiny_model.transformer.wte.weight)
