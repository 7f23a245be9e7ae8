"""The logit-attribution view: how much each head and each MLP pushes the right next token over a rival.

Type a text and two candidate next tokens (by default the model's two favourites after the last position):
a bar per head, layer by layer, and one per MLP, each its direct contribution to ``logit[right] -
logit[wrong]`` through the final LayerNorm with its scale frozen (:mod:`gptmini.inspect.attribution`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import torch

from ..inspect.attribution import Attribution, logit_attribution, require_pre_ln
from ._render import FONT, error_html, image_widget, new_figure, show_labels, to_png
from ._text import TextInput


class AttributionView(TextInput, widgets.VBox):
    """A text box, two token boxes (right, wrong) and a bar chart of every head's and MLP's contribution.

    Public state: ``text_box``, ``right_box``, ``wrong_box``, ``swap_button``; ``attribution`` (the latest
    :class:`~gptmini.inspect.attribution.Attribution`), ``right`` and ``wrong`` (token ids).
    """

    _quiet = False  # True while the widget sets its own token boxes (one redraw, not two)

    def __init__(self, model, tokenizer, text: str, right: str | None = None, wrong: str | None = None) -> None:
        require_pre_ln(model, "the logit-attribution view")
        self.model, self.tokenizer = model, tokenizer
        self.ids: list[int] = []
        self.right = self.wrong = 0
        self.attribution: Attribution | None = None
        self.text_box = widgets.Text(value=text, description="text", continuous_update=False,
                                     layout=widgets.Layout(width="95%"))  # fmt: skip
        self.right_box = widgets.Text(value=right or "", description="right", continuous_update=False)
        self.wrong_box = widgets.Text(value=wrong or "", description="wrong", continuous_update=False)
        self.swap_button = widgets.Button(description="swap")
        self.status = widgets.HTML()
        self.image = image_widget()
        super().__init__([self.text_box, widgets.HBox([self.right_box, self.wrong_box, self.swap_button]),
                          self.status, self.image])  # fmt: skip
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        for box in (self.right_box, self.wrong_box):
            box.observe(lambda _change: self.update(), names="value")
        self.swap_button.on_click(lambda _button: self.swap())
        self.set_text(text)
        self._require_first_text("logit_attribution_view", text)

    def set_text(self, text: str) -> None:
        """Use a new text; empty token boxes are filled with the model's two favourite next tokens."""
        encoded = self._encode(text, None, min_tokens=1)
        if encoded is None:
            return
        self.ids = encoded[0]
        if self.text_box.value != text:
            self.text_box.value = text
        if not self.right_box.value or not self.wrong_box.value:
            with torch.no_grad():
                top = self.model(self._idx())[0][0, -1].topk(2).indices.tolist()
            labels = self.tokenizer.token_strings(top)
            self._quiet = True
            self.right_box.value, self.wrong_box.value = labels[0], labels[1]
            self._quiet = False
        self.update()

    def swap(self) -> None:
        self._quiet = True
        self.right_box.value, self.wrong_box.value = self.wrong_box.value, self.right_box.value
        self._quiet = False
        self.update()

    def _token(self, text: str, which: str) -> int | None:
        ids = list(self.tokenizer.encode(text)) if text else []
        if len(ids) != 1 or not 0 <= ids[0] < self.model.config.vocab_size:
            self.status.value = error_html(
                f"the {which} token {text!r} is {len(ids)} tokens for this tokenizer: give exactly one token"
            )
            return None
        return ids[0]

    def _idx(self) -> torch.Tensor:
        return torch.tensor([self.ids], dtype=torch.long, device=self.model.device)

    def update(self) -> None:
        if self._quiet or not self.ids:
            return
        right, wrong = self._token(self.right_box.value, "right"), self._token(self.wrong_box.value, "wrong")
        if right is None or wrong is None:
            return
        self.right, self.wrong = right, wrong
        self.attribution = logit_attribution(self.model, self._idx(), right, wrong)
        a = self.attribution
        self.image.value = to_png(self.figure())
        r, w = (html.escape(show_labels([s])[0]) for s in (self.right_box.value, self.wrong_box.value))
        layer, head = divmod(int(a.heads[0].abs().argmax()), a.heads.shape[2])
        self.status.value = (
            f"{len(self.ids)} tokens · logit[{r}] − logit[{w}] after the last token = "
            f"<b>{float(a.logit_diff[0]):.3f}</b>"
            f" = heads {float(a.heads[0].sum()):.3f} + MLPs {float(a.mlps[0].sum()):.3f} + embedding "
            f"{float(a.embed[0]):.3f} + biases {float(a.rest[0]):.3f} · largest head: L{layer}H{head} "
            f"{float(a.heads[0, layer, head]):+.3f}"
        )

    def figure(self):
        a = self.attribution
        heads = a.heads[0].cpu().double().numpy()  # (layers, heads)
        n_layer, n_head = heads.shape
        labels, values, colors = [], [], []
        for layer in range(n_layer):
            for head in range(n_head):
                labels.append(f"L{layer}H{head}")
                values.append(heads[layer, head])
                colors.append(f"C{layer % 10}")
            if not self.model.transformer.h[layer].attn_only:
                labels.append(f"MLP {layer}")
                values.append(float(a.mlps[0, layer]))
                colors.append("#777777")
        labels += ["embedding", "biases"]
        values += [float(a.embed[0]), float(a.rest[0])]
        colors += ["#bbbbbb", "#bbbbbb"]
        fig = new_figure(min(16.0, 3.0 + 0.28 * len(values)), 4.0)
        ax = fig.add_subplot()
        ax.bar(np.arange(len(values)), values, color=colors)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(values)), labels, rotation=90, fontsize=max(6, FONT - 4))
        ax.set_ylabel("direct contribution to the logit difference", fontsize=FONT - 2)
        r, w = (show_labels([s])[0] for s in (self.right_box.value, self.wrong_box.value))
        ax.set_title(f"logit[{r}] − logit[{w}] = {float(a.logit_diff[0]):.2f}, split by part (ln_f scale frozen)",
                     fontsize=FONT - 1)  # fmt: skip
        return fig


def logit_attribution_view(model, tokenizer, text: str, right: str | None = None, wrong: str | None = None):
    """Each head's and MLP's direct contribution to ``logit[right] - logit[wrong]`` after ``text``."""
    return AttributionView(model, tokenizer, text, right=right, wrong=wrong)
