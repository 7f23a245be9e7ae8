"""Keep a notebook's prose and its own run from drifting apart: ``expect(value, low, high, what)``.

A notebook's text quotes ranges it measured ("the pre-LN model ends between 4.3 and 4.6"). A cell that prints
the number calls ``expect`` with the same range. Inside the range it prints nothing; outside it prints one
line that says so, so a student never reads a sentence that their own output contradicts without being told:

    >>> expect(5.12, 4.3, 4.6, "the pre-LN model's final validation loss (nats per token)")
    this run: 5.12; the text says 4.3–4.6 for the pre-LN model's final validation loss (nats per token); ...

``mode="classroom"`` says which speed the range was measured in; in another mode (``GPTMINI_MODE=fast`` in
the tests) the value is not judged, and one line says the text's range is for that other mode. Classroom
mode on a CUDA GPU trains other sizes (:func:`gptmini.course.scale` is ``"gpu"`` there), so a ``"classroom"``
range, measured on a CPU, is not judged on a GPU either; ``mode="gpu"`` marks a range measured there.

When ``$GPTMINI_RECORD`` names a file, every call also appends one JSON line there (what, value, range, mode,
whether it was inside): ``bench/course.py`` collects a notebook's key numbers that way, without the notebook
printing them twice.
"""

from __future__ import annotations

import json
import math
import os
from numbers import Real

from .modes import SCALES
from .modes import mode as current_mode
from .modes import scale as current_scale


def _format(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.4g}"


def _record(entry: dict) -> None:
    path = os.environ.get("GPTMINI_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def expect(value: Real, low: Real, high: Real, what: str, *, mode: str | None = None) -> None:
    """Print nothing if ``low <= value <= high``; otherwise one line naming this run's value and the text's range.

    ``what`` completes "the text says low–high for ...", e.g. "the post-LN model's final validation loss".
    ``mode`` (e.g. ``"classroom"``): the speed the range was measured in; in any other mode the value is
    not judged (a fast run is too short to match), and one line says so. Returns None, so that a call at
    the end of a cell shows nothing extra.
    """
    if not isinstance(value, Real) or isinstance(value, bool):
        value = float(value)  # a 0-d tensor or numpy scalar; raises for things that are not numbers
    if low > high:
        raise ValueError(f"expect: low ({low}) is above high ({high}) for {what!r}")
    if not what or not what.strip():
        raise ValueError("expect: say what the number is (what=...), so that the line it prints reads as a sentence")
    now, run = current_mode(), current_scale()
    judged = mode is None or mode == run
    inside = bool(low <= value <= high) and not math.isnan(value)
    _record(
        {"what": what, "value": float(value), "low": float(low), "high": float(high), "mode": mode,
         "run_mode": now, "run_scale": run, "inside": inside if judged else None}
    )  # fmt: skip
    span = f"{_format(low)}–{_format(high)}" if low != high else _format(low)
    if not judged:
        measured = "classroom mode on a CPU" if run == "gpu" and mode == "classroom" else SCALES.get(mode, mode)
        print(f"this run ({SCALES[run]}): {_format(value)}; the text's {span} for {what} was measured in {measured}")
    elif not inside:
        side = "below" if value < low else "above" if value > high else "not a number, outside"
        print(
            f"this run: {_format(value)}; the text says {span} for {what}; this run is {side} that range, "
            f"so read the text with this run's number in mind"
        )
