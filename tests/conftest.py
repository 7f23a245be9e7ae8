"""Shared test settings: never touch the network, keep torch small and deterministic."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GPTMINI_MODE", "fast")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# One thread: tiny models gain nothing from two, and pytest-xdist or the notebook kernels use the other core.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """Keep one thread per test even if the code under test changes it (course.setup() does, in fast mode)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config():
    from gptmini import GPTConfig

    return GPTConfig.preset("tiny")


@pytest.fixture
def tiny_model(tiny_config):
    from gptmini import GPT

    torch.manual_seed(0)
    return GPT(tiny_config).eval()


@pytest.fixture(scope="module")
def char_tok(request):
    """A character tokenizer of the test module's ``TEXT``."""
    from gptmini.tokenizers import CharTokenizer

    return CharTokenizer.from_text(request.module.TEXT)


@pytest.fixture(scope="module")
def char_model(char_tok):
    """The ``tiny`` preset sized for :func:`char_tok`, seeded, in eval mode."""
    from gptmini import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig.preset("tiny", vocab_size=char_tok.vocab_size)).eval()
