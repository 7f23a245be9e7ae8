"""gptmini.course.recipes: one name gives the tokenizer, the model's shape, the data and the training config."""

import pytest

from gptmini.course.recipes import RECIPES, VAL_FRACTION, model_config, prepare, recipe_text, train_config
from gptmini.train import TrainConfig


def test_tiny_recipe_end_to_end():
    data = prepare("tiny", max_iters=7)
    text = recipe_text("tiny")
    assert len(text) == 200_000
    assert data.tokenizer.vocab_size == data.model_config.vocab_size == len(set(text))
    assert len(data.train_ids) == int(len(text) * (1 - VAL_FRACTION)) and len(data.val_ids) == 20_000
    assert data.tokenizer.decode(data.val_ids[:50].tolist()) == text[180_000:180_050]  # the split is the end
    assert (data.model_config.n_layer, data.model_config.n_embd, data.model_config.name) == (2, 32, "tiny")
    assert (data.train_config.max_iters, data.train_config.batch_size, data.train_config.warmup_iters) == (7, 8, 1)


def test_presets_that_train_the_same_way_share_the_defaults():
    default = TrainConfig()
    # nanoGPT's CPU recipe re-tuned: half the steps, a higher learning rate, beta2 0.95 (gentler for post-LN)
    retuned = dict(max_iters=1000, learning_rate=6e-3, min_lr=6e-4, betas=(0.9, 0.95), warmup_iters=50)
    assert train_config("shakespeare-char") == default.replace(**retuned)  # the command line's default
    retuned_post_ln = dict(max_iters=1000, learning_rate=3e-3, min_lr=3e-4, betas=(0.9, 0.95))
    assert train_config("gpt1-shakespeare") == default.replace(**retuned_post_ln)  # notebook 05
    full = train_config("gpt1-shakespeare", "full")  # the GPU-sized full run keeps nanoGPT's GPU settings
    assert (full.learning_rate, full.min_lr, full.betas, full.max_iters) == (1e-3, 1e-4, (0.9, 0.99), 5000)
    assert train_config("shakespeare-bpe") == default.replace(max_iters=1500)
    assert model_config("gpt1-shakespeare", 71).norm == "post" and model_config("shakespeare-char", 71).norm == "pre"
    for name in RECIPES:
        assert TrainConfig.from_dict(train_config(name).to_dict()) == train_config(name)


def test_a_short_run_keeps_its_warm_up_short():
    assert train_config("gpt1-shakespeare", max_iters=60).warmup_iters == 6  # a tenth, not the recipe's 100
    assert train_config("gpt1-shakespeare", max_iters=5000).warmup_iters == 100
    assert train_config("gpt1-shakespeare", max_iters=60, warmup_iters=30).warmup_iters == 30  # asked for: kept


def test_fallback_and_finetune_base_recipes_say_what_they_are():
    small = model_config("gpt1-char-2x64", 71)
    assert (small.n_layer, small.n_embd, small.norm, small.name) == (2, 64, "post", "gpt1-char-2x64")
    base = model_config("gpt1-bpe-train-plays", 1024)
    assert (base.n_layer, base.n_embd, base.n_head, base.block_size, base.norm) == (4, 128, 4, 64, "post")
    from gptmini.data import shakespeare_plays
    from gptmini.tasks import split_plays

    train_plays, test_plays = split_plays(shakespeare_plays())
    text = recipe_text("gpt1-bpe-train-plays")
    assert text == "\n\n".join(p.text for p in train_plays)  # the plays the fine-tuning tasks test on stay unseen
    assert all(p.text[:300] not in text and p.text[:300] in recipe_text("shakespeare-char") for p in test_plays)


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown training preset 'nope'. Valid presets: shakespeare-char"):
        train_config("nope")
