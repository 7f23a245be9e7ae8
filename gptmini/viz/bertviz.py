"""Show our attention maps in bertviz's head view or model view, when the page can load bertviz's scripts.

bertviz draws with d3 and loads require.js, d3 and jQuery from cdnjs.cloudflare.com. With no network the
notebook shows an empty box and no error, so we check the CDN first (one quick socket connect, cached) and
otherwise print one line pointing to :func:`gptmini.viz.attention_explorer`, which needs no network.

``GPTMINI_BERTVIZ=online`` or ``offline`` skips the check (e.g. behind a proxy the socket test would fail).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from dataclasses import dataclass

import torch

from ..inspect.capture import attention_maps
from ._inputs import encode_text

CDN_HOST = "cdnjs.cloudflare.com"
ENV_VAR = "GPTMINI_BERTVIZ"
VIEWS = ("head", "model")
DEFAULT_MAX_TOKENS = {"head": 64, "model": 32}  # the model view draws layers x heads panels of T x T lines
MAX_MODEL_VIEW_LAYERS = 12
OFFLINE_MESSAGE = (
    "bertviz needs {host} (require.js, d3, jQuery), which cannot be reached, so its view would stay blank; "
    "use gptmini.viz.attention_explorer(model, tokenizer, text) instead: it works offline."
)

MISSING_MESSAGE = (
    "bertviz is not installed: pip install bertviz (or gptmini[bertviz]); "
    "gptmini.viz.attention_explorer(model, tokenizer, text) needs nothing more."
)

_reachable: dict[str, bool] = {}


def cdn_reachable(timeout: float = 1.0, host: str = CDN_HOST) -> bool:
    """Can we open a TCP connection to bertviz's CDN? Asked once per session; ``$GPTMINI_BERTVIZ`` overrides.

    The lookup and connect run in a thread we stop waiting for after ``timeout``: a missing DNS server
    can otherwise block far longer than the socket timeout.
    """
    forced = os.environ.get(ENV_VAR, "auto").strip().lower()
    if forced in ("online", "1", "on"):
        return True
    if forced in ("offline", "0", "off"):
        return False
    if forced not in ("auto", ""):
        raise ValueError(f"{ENV_VAR}={forced!r}: use 'online', 'offline' or 'auto'")
    if host not in _reachable:
        result: list[bool] = []

        def probe() -> None:
            try:
                with socket.create_connection((host, 443), timeout=timeout):
                    result.append(True)
            except OSError:
                result.append(False)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        thread.join(timeout + 0.5)
        _reachable[host] = bool(result and result[0])
    return _reachable[host]


def bertviz_installed() -> bool:
    """Is bertviz importable? An optional dependency (``gptmini[bertviz]``), looked up without importing it."""
    try:
        return importlib.util.find_spec("bertviz") is not None
    except (ImportError, ValueError):  # ValueError: a module entry of None (import blocked)
        return False


@dataclass
class BertvizInputs:
    """What bertviz takes: one (1, heads, T, T) tensor per layer, token strings, the layers to draw."""

    attention: tuple[torch.Tensor, ...]
    tokens: list[str]
    layers: list[int]
    total_tokens: int

    @property
    def truncated(self) -> bool:
        return self.total_tokens > len(self.tokens)


def bertviz_inputs(
    model, tokenizer, text: str, view: str = "head", max_tokens: int | None = None, layers: list[int] | None = None
) -> BertvizInputs:
    """Convert :func:`gptmini.inspect.attention_maps` on ``text`` into bertviz's format, with limits for long inputs.

    Tokens are cut to ``max_tokens`` (default 64 for the head view, 32 for the model view). The model
    view gets at most 12 layers, spread evenly over the depth, unless ``layers`` names them.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be 'head' or 'model', got {view!r}")
    limit = DEFAULT_MAX_TOKENS[view] if max_tokens is None else max_tokens
    ids, total = encode_text(model, tokenizer, text, limit)
    n_layer = model.config.n_layer
    if layers is None:
        layers = list(range(n_layer))
        if view == "model" and n_layer > MAX_MODEL_VIEW_LAYERS:
            step = n_layer / MAX_MODEL_VIEW_LAYERS
            layers = sorted({int(i * step) for i in range(MAX_MODEL_VIEW_LAYERS)})
    else:
        layers = [int(i) for i in layers]
        bad = [i for i in layers if not 0 <= i < n_layer]
        if bad or not layers:
            raise ValueError(f"layers must be a non-empty list of layer numbers in [0, {n_layer}), got {layers}")
    maps = attention_maps(model, torch.tensor([ids], dtype=torch.long, device=model.device))
    attention = tuple(m.detach().to("cpu", torch.float32) for m in maps)
    return BertvizInputs(attention, list(tokenizer.token_strings(ids)), layers, total)


def show_bertviz(
    model,
    tokenizer,
    text: str,
    view: str = "head",
    max_tokens: int | None = None,
    layers: list[int] | None = None,
) -> BertvizInputs | None:
    """Draw bertviz's ``head_view`` or ``model_view`` of ``model``'s attention on ``text``.

    Without bertviz installed, or without a network, it prints one line (what to install, or the offline
    explorer to use) and returns None; otherwise it displays the view and returns the inputs it used.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be 'head' or 'model', got {view!r}")
    if not bertviz_installed():
        print(MISSING_MESSAGE)
        return None
    if not cdn_reachable():
        print(OFFLINE_MESSAGE.format(host=CDN_HOST))
        return None
    inputs = bertviz_inputs(model, tokenizer, text, view, max_tokens, layers)
    if inputs.truncated:
        print(f"showing the first {len(inputs.tokens)} of {inputs.total_tokens} tokens (max_tokens) to keep it fast")
    import bertviz  # imported late: it takes seconds and only this function needs it

    if view == "head":
        bertviz.head_view(inputs.attention, inputs.tokens, include_layers=inputs.layers)
    else:
        bertviz.model_view(inputs.attention, inputs.tokens, include_layers=inputs.layers)
    return inputs
