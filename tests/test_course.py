"""course_model and finetune_base_model: a course checkpoint when one exists, else a model trained on the spot."""

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.course import checkpoint_dir, course_model, finetune_base_model
from gptmini.pretrained import save_pretrained
from gptmini.tokenizers import CharTokenizer


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTMINI_HOME", str(tmp_path))
    monkeypatch.setenv("GPTMINI_MODE", "fast")
    return tmp_path


def test_trains_a_named_stand_in_once_then_reuses_it(empty_home, capsys):
    torch.manual_seed(0)
    model, tok, source = course_model(("gpt2-shakespeare", "gpt1-shakespeare"), steps=3, unk=" ", device="cpu")
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1, printed  # one line: what is missing, what it trains, how long it took
    assert "no checkpoint gpt2-shakespeare or gpt1-shakespeare" in printed and "gpt1-char-2x64" in printed
    assert "python -m gptmini train --preset gpt1-shakespeare" in printed and "done in" in printed
    assert "gpt1-char-2x64 trained just now for 3 steps" in source
    assert not model.training and model.config.norm == "post"
    assert (model.config.n_layer, model.config.n_embd, model.config.name) == (2, 64, "gpt1-char-2x64")
    assert isinstance(tok, CharTokenizer) and tok.vocab_size == model.config.vocab_size
    assert tok.encode("€") == tok.encode(" ")  # unk: a character Shakespeare never wrote becomes a space
    out = model.generate(tok.encode("ROMEO:\n"), max_new_tokens=10, temperature=0)
    assert len(out) == len("ROMEO:\n") + 10
    assert tok.decode(out).startswith("ROMEO:\n")
    folder = checkpoint_dir("gpt1-char-2x64-3-steps")  # named after what it is, not after notebook 05's model
    assert [p.name for p in empty_home.glob("checkpoints/*")] == [folder.name]

    again, tok2, source2 = course_model("gpt1-shakespeare", steps=3, device="cpu")
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "using the quick stand-in gpt1-char-2x64" in printed
    assert "trained earlier for 3 steps" in source2 and str(folder) in source2 and tok2.itos == tok.itos
    ids = torch.tensor([tok.encode("ROMEO:\n")])
    with torch.no_grad():
        torch.testing.assert_close(again(ids)[0], model(ids)[0], rtol=0, atol=0)


def test_loads_first_existing_checkpoint(empty_home, capsys):
    tok = CharTokenizer.from_text("abcdefgh \n")
    torch.manual_seed(1)
    saved = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()
    folder = checkpoint_dir("gpt1-shakespeare")
    save_pretrained(saved, folder)
    tok.save(folder)

    model, loaded_tok, source = course_model(("gpt2-shakespeare", "gpt1-shakespeare"), device="cpu")
    assert capsys.readouterr().out == f"using {source}\n"  # one line, nothing trained
    assert "gpt1-shakespeare" in source and "notebook 05" in source and str(folder) in source
    assert loaded_tok.itos == tok.itos and loaded_tok.unk is None
    ids = torch.tensor([tok.encode("bad cafe\nhead")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], saved(ids)[0], rtol=0, atol=0)

    _, with_unk, _ = course_model("gpt1-shakespeare", unk=" ", device="cpu")  # one name as a plain string
    assert with_unk.encode("z") == tok.encode(" ")
    with pytest.raises(ValueError, match="unk"):
        course_model(unk="#", device="cpu")  # not one of the checkpoint's characters


def test_finetune_base_model_trains_on_the_training_plays_then_loads(empty_home, capsys):
    from gptmini.data import shakespeare_plays
    from gptmini.tasks import split_plays
    from gptmini.tokenizers import BPETokenizer

    torch.manual_seed(0)
    model, tok, source = finetune_base_model(steps=2, device="cpu")
    printed = capsys.readouterr().out
    assert "pretraining a post-LN GPT-1 on the 28 training plays: training gpt1-bpe-train-plays for 2 steps" in printed
    assert "2 steps" in source and not model.training
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == model.config.vocab_size == 1024
    assert (model.config.n_layer, model.config.n_embd, model.config.block_size) == (4, 128, 64)
    assert model.config.norm == "post"  # notebook 05's GPT-1, not GPT-2's pre-LN
    folder = checkpoint_dir("gpt1-bpe-train-plays-post-2")  # the norm in the name: an old pre-LN one is not reused
    assert (folder / "model.safetensors").exists()

    again, tok2, source2 = finetune_base_model(steps=2, device="cpu")
    assert capsys.readouterr().out == "" and "earlier run" in source2  # loaded, not retrained
    line = split_plays(shakespeare_plays())[1][0].lines[10][1]  # a test-play line
    assert tok2.encode(line) == tok.encode(line)
    ids = torch.tensor([tok.encode(line)])
    with torch.no_grad():
        torch.testing.assert_close(again(ids)[0], model(ids)[0], rtol=0, atol=0)


def test_finetune_base_model_uses_the_cli_checkpoint_only_when_it_is_post_ln(empty_home, capsys):
    """`python -m gptmini train --preset gpt1-bpe-train-plays` writes checkpoints/gpt1-bpe-train-plays: used if
    post-LN; a pre-LN one (an older course) is passed over and a post-LN model is trained instead."""
    from gptmini.tokenizers import BPETokenizer

    tok = BPETokenizer().train("To be, or not to be: that is the question.\n" * 20, vocab_size=280)
    cli = checkpoint_dir("gpt1-bpe-train-plays")
    for norm in ("post", "pre"):
        config = GPTConfig(vocab_size=280, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0, norm=norm)
        save_pretrained(GPT(config), cli)
        tok.save(cli)
        if norm == "post":
            model, _, source = finetune_base_model(steps=2, device="cpu")
            assert "python -m gptmini train --preset gpt1-bpe-train-plays" in source and str(cli) in source
            assert (model.config.n_embd, model.config.norm) == (16, "post")
            assert capsys.readouterr().out == ""  # loaded, nothing trained
    model, _, source = finetune_base_model(steps=2, device="cpu")
    assert "pretrained just now" in source and model.config.norm == "post" and model.config.n_embd == 128
