"""The text box the notebook-11 widgets share: a bad text is reported on the status line, never raised.

A widget keeps showing its last good text when the learner types something the model cannot read; only the
*first* text, given in code, raises, because then there is nothing to show.
"""

from __future__ import annotations

from ._inputs import encode_text
from ._render import error_html


class TextInput:
    """Mixin for widgets with ``model``, ``tokenizer``, a ``status`` HTML line and a ``text_box``."""

    _last_error = ""

    def _encode(self, text: str, max_tokens: int | None, min_tokens: int = 1) -> tuple[list[int], int] | None:
        """``(ids, total)`` as :func:`encode_text` gives them, or None after saying on the status line why not."""
        try:
            ids, total = encode_text(self.model, self.tokenizer, text, max_tokens)
            if len(ids) < min_tokens:
                raise ValueError(f"Give at least {min_tokens} tokens: the loss needs a token to predict.")
        except ValueError as err:
            self._last_error = str(err)
            self.status.value = error_html(str(err))
            return None
        return ids, total

    def _require_first_text(self, widget: str, text: str) -> None:
        if not self.ids:
            raise ValueError(f"{widget} could not use the text {text!r}: {self._last_error}")
