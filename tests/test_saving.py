"""Files on disk: symlinked checkpoint folders stay links, saved files follow the umask, and wrapped models
(torch.compile, DataParallel, DDP) save like the model inside them."""

import os
import stat

import pytest
import torch

from gptmini import GPT, GPTConfig
from gptmini.checkpoint import load_checkpoint, load_train_state, save_checkpoint
from gptmini.pretrained import save_pretrained
from gptmini.tokenizers import CharTokenizer
from gptmini.utils import unwrap

IDX = torch.tensor([[1, 5, 9, 2, 7]])


def tiny(seed):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("tiny")).eval()


def logits(model):
    with torch.no_grad():
        return model(IDX)[0]


@pytest.mark.skipif(os.name != "posix", reason="symlinks and umask are POSIX")
@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlinked_checkpoint_folder_stays_a_link(tmp_path, target_exists):
    big = tmp_path / "bigdisk"
    big.mkdir()
    target = big / "run"
    if target_exists:
        target.mkdir()
    link = tmp_path / "ck"
    link.symlink_to(target, target_is_directory=True)
    for step in (1, 2, 3):
        assert save_checkpoint(link, tiny(step), state={"step": step}) == link
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert load_train_state(link)["step"] == step
        model, _ = load_checkpoint(link)
        assert torch.equal(logits(model), logits(tiny(step)))
    assert sorted(p.name for p in big.iterdir()) == ["run"]  # no .run.saving / .run.previous left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bigdisk", "ck"]


@pytest.mark.skipif(os.name != "posix", reason="symlinks and umask are POSIX")
def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "ck", tiny(0), tokenizer=CharTokenizer("abc"), state={"t": torch.ones(2)})
        tiny(0).save_pretrained(tmp_path / "plain")
        os.umask(0o027)
        tiny(1).save_pretrained(tmp_path / "group")
    finally:
        os.umask(old)
    folder = tmp_path / "ck"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "trainer_state.json",
        "trainer_state.safetensors",
    ]
    for path in [*folder.iterdir(), *(tmp_path / "plain").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for path in (tmp_path / "group").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path.name


def check_wrapped_save(wrapped, inner, directory):
    assert unwrap(wrapped) is inner
    save_pretrained(wrapped, directory)
    loaded = GPT.from_pretrained(directory)
    assert torch.equal(logits(loaded), logits(inner))
    assert loaded.lm_head.weight is loaded.transformer.wte.weight


def test_save_unwraps_torch_compile(tmp_path):
    inner = tiny(0)
    compiled = torch.compile(inner, backend="eager")
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())
    check_wrapped_save(compiled, inner, tmp_path)


def test_save_unwraps_data_parallel(tmp_path):
    inner = tiny(0)
    check_wrapped_save(torch.nn.DataParallel(inner), inner, tmp_path)


def test_save_unwraps_ddp_inside_compile(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        inner = tiny(0)
        ddp = torch.nn.parallel.DistributedDataParallel(inner)
        check_wrapped_save(torch.compile(ddp, backend="eager"), inner, tmp_path / "out")
    finally:
        dist.destroy_process_group()
