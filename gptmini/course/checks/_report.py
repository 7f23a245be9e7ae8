"""Shared machinery of the ``check_…`` helpers: compare a learner's answer with gptmini's and say so kindly.

A check never raises because an answer is wrong: the notebook must keep going, so it prints one line
("✅ … matches gptmini" or "❌ … differs: …") and returns a falsy :class:`CheckResult`. An exercise not
written yet (a stub of the student edition: a ``None`` answer, or a body that raises NotImplementedError)
is not a mistake: its check prints one "⏳ not yet: …" line, returns a falsy result marked ``pending``,
and the notebook goes on with the package's version. It raises only
when it is *used* wrongly (e.g. given a string where a function was expected), because that is a bug in
the cell that calls it, not in the learner's idea.
"""

from __future__ import annotations

import math
import os
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

__all__ = [
    "CheckResult",
    "passed",
    "failed",
    "not_yet",
    "compare_tensors",
    "compare_values",
    "combine",
    "call_learner",
    "raised",
    "learner_frame",
    "require_callable",
]

PASS, FAIL, PENDING = "✅", "❌", "⏳"
NONE_MESSAGE = "is None: no answer yet (replace the None), or a function forgot to `return` its result"
STUB_MESSAGE = "is still a stub (it raises NotImplementedError): write its body; the rest of the notebook runs anyway"


class CheckResult:
    """The outcome of a check: truthy when it passed, with the friendly ``message`` that was printed.

    In a notebook the line is printed when the check runs; showing the result object again (as the last
    expression of a cell) does not repeat it, but a later ``result`` in another cell shows it once more.
    """

    def __init__(self, ok: bool, message: str, details: Sequence[CheckResult] = (), pending: bool = False) -> None:
        self.passed = bool(ok)
        self.message = message
        self.details = list(details)
        self.pending = pending  # True: the exercise is not written yet (not a wrong answer)
        self._just_printed = False

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed}, message={self.message!r})"

    def __str__(self) -> str:
        return self.message

    def show(self) -> CheckResult:
        """Print the message (checks call this themselves); returns ``self`` so it can end a function.

        While nbgrader grades (``NBGRADER_EXECUTION`` is set), a line that is not a pass goes to stderr: nbgrader
        gives a check cell that writes to stderr 0 points, and the line, with its hint, shows in the feedback.
        """
        graded = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")
        print(self.message, file=sys.stderr if graded and not self.passed else sys.stdout)
        self._just_printed = True
        return self

    def _ipython_display_(self) -> None:  # IPython hook: do not print the same line twice in a row
        if not self._just_printed:
            self.show()
        self._just_printed = False


def passed(what: str, note: str = "", show: bool = True) -> CheckResult:
    """A passing result: "✅ <what>", where ``what`` is the whole sentence (e.g. "h0 matches gptmini")."""
    message = f"{PASS} {what}" + (f" {note}" if note else "")
    result = CheckResult(True, message)
    return result.show() if show else result


def failed(what: str, detail: str, hint: str | None = None, show: bool = True) -> CheckResult:
    """A failing result: "❌ <what> <detail>" plus an optional hint on what to look at."""
    message = f"{FAIL} {what} {detail}"
    if hint:
        message += f" (hint: {hint})"
    result = CheckResult(False, message)
    return result.show() if show else result


def not_yet(what: str, detail: str = NONE_MESSAGE, hint: str | None = None, show: bool = True) -> CheckResult:
    """An unwritten exercise: one "⏳ not yet: <what> <detail>" line, a falsy result with ``pending`` set.

    Falsy, so ``if not check_…(…)`` switches to the package's version and the notebook runs on.
    """
    message = f"{PENDING} not yet: {what} {detail}"
    if hint:
        message += f" (hint: {hint})"
    result = CheckResult(False, message, pending=True)
    return result.show() if show else result


def _fmt(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def _as_tensor(value: Any, name: str) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def compare_tensors(
    name: str,
    got: Any,
    expected: Any,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    hint: str | None = None,
    show: bool = True,
    against: str = "gptmini",
) -> CheckResult:
    """Compare a learner's tensor with gptmini's, element by element, and name the first difference.

    ``got`` may be a tensor, a NumPy array or nested lists; ``expected`` is what gptmini computed. Shapes
    must match exactly (a shape mismatch is reported as such, with both shapes); values must agree within
    ``atol + rtol * |expected|``. NaNs never match. ``against`` names the reference in the passing line
    ("✅ vectorised scores matches the loop" rather than "... gptmini") when a notebook compares two of its
    own versions.
    """
    if not isinstance(name, str):
        raise TypeError(f"compare_tensors(name, got, expected): name must be a string, got {type(name).__name__}")
    exp = _as_tensor(expected, "expected")
    if exp is None:
        raise TypeError(f"compare_tensors: expected must be tensor-like, got {type(expected).__name__}")
    if got is None:
        return not_yet(name, NONE_MESSAGE, hint, show)
    tensor = _as_tensor(got, name)
    if tensor is None:
        return failed(name, f"should be a tensor of shape {tuple(exp.shape)}, got a {type(got).__name__}", hint, show)
    if tuple(tensor.shape) != tuple(exp.shape):
        return failed(
            name,
            f"has the wrong shape: got {tuple(tensor.shape)}, expected {tuple(exp.shape)}",
            hint,
            show,
        )
    a = tensor.to(device="cpu", dtype=torch.float64)
    b = exp.to(device="cpu", dtype=torch.float64)
    close = torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=False)
    both_inf = torch.isinf(a) & torch.isinf(b) & (torch.sign(a) == torch.sign(b))
    close = close | both_inf
    if bool(close.all()):
        return passed(f"{name} matches {against}", show=show)
    if a.dim() == 0:  # a single number: no index to name
        return failed(name, f"differs: got {_fmt(float(a))}, expected {_fmt(float(b))}", hint, show)
    bad = (~close).nonzero()
    first = tuple(int(i) for i in bad[0])
    where = first if len(first) != 1 else f"({first[0]})"
    finite = torch.isfinite(a) & torch.isfinite(b)
    broken = ~torch.isfinite(a) & torch.isfinite(b)  # nan or inf where the answer is a number: an overflow, a 0/0
    if bool(broken.any()):  # the gaps between finite values say nothing then: name the nan/inf instead
        gap = (a - b).abs()[finite & ~close]
        largest = f"; largest gap between finite values {_fmt(float(gap.max()))}" if gap.numel() else ""
        n_nan = int(broken.sum())
        largest = f"; {n_nan} are nan or inf where gptmini's are finite: an overflow or a 0/0{largest}"
        if against != "gptmini":
            largest = largest.replace("gptmini's are", "the expected ones are")
    else:
        gap = (a - b).abs()[finite]
        largest = f"; largest gap {_fmt(float(gap.max()))}" if gap.numel() and float(gap.max()) > 0 else ""
    n_bad, n_all = bad.size(0), close.numel()
    detail = (
        f"differs: first difference at index {where}: got {_fmt(float(a[first]))}, "
        f"expected {_fmt(float(b[first]))} ({n_bad} of {n_all} values differ{largest})"
    )
    return failed(name, detail, hint, show)


def _first_difference(got: Sequence, expected: Sequence) -> int | None:
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):
        if g != e:
            return i
    if len(got) != len(expected):
        return min(len(got), len(expected))
    return None


def compare_values(
    name: str, got: Any, expected: Any, hint: str | None = None, show: bool = True, against: str = "gptmini"
) -> CheckResult:
    """Compare plain Python values (numbers, strings, lists, dicts); for sequences name the first difference.

    Floats are compared with a small tolerance (1e-6 relative); everything else must be equal. ``against``
    names the reference in the passing line, as in :func:`compare_tensors`.
    """
    if not isinstance(name, str):
        raise TypeError(f"compare_values(name, got, expected): name must be a string, got {type(name).__name__}")
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not isinstance(expected, torch.Tensor):
        got = got.item()
    if got is None and expected is not None:
        return not_yet(name, NONE_MESSAGE, hint, show)
    if isinstance(expected, float) or isinstance(got, float):
        if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
            if math.isclose(float(got), float(expected), rel_tol=1e-6, abs_tol=1e-9):
                return passed(f"{name} matches {against}", show=show)
            return failed(name, f"differs: got {_fmt(float(got))}, expected {_fmt(float(expected))}", hint, show)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return failed(name, f"should be a dict, got a {type(got).__name__}", hint, show)
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        wrong = [k for k in expected if k in got and got[k] != expected[k]]
        if not (missing or extra or wrong):
            return passed(f"{name} matches {against}", show=show)
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]!r}")
        if extra:
            parts.append(f"unexpected keys {extra[:5]!r}")
        if wrong:
            k = wrong[0]
            parts.append(f"at key {k!r}: got {got[k]!r}, expected {expected[k]!r}")
        return failed(name, "differs: " + "; ".join(parts), hint, show)
    if isinstance(expected, (str, list, tuple)):
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (str, list, tuple)):
            kind = "string" if isinstance(expected, str) else "list"
            return failed(name, f"should be a {kind}, got a {type(got).__name__}", hint, show)
        if type(got) is not type(expected) and (isinstance(got, str) or isinstance(expected, str)):
            return failed(name, f"should be a {type(expected).__name__}, got a {type(got).__name__}", hint, show)
        i = _first_difference(got, expected)
        if i is None:
            return passed(f"{name} matches {against}", show=show)
        if i >= len(got):
            detail = f"is too short: got {len(got)} items, expected {len(expected)} (next expected {expected[i]!r})"
        elif i >= len(expected):
            detail = f"is too long: got {len(got)} items, expected {len(expected)} (extra item {got[i]!r})"
        else:
            detail = f"differs: first difference at index {i}: got {got[i]!r}, expected {expected[i]!r}"
        return failed(name, detail, hint, show)
    if got == expected:
        return passed(f"{name} matches {against}", show=show)
    return failed(name, f"differs: got {got!r}, expected {expected!r}", hint, show)


def combine(what: str, results: Iterable[CheckResult], show: bool = True) -> CheckResult:
    """One verdict for several sub-checks (which have printed their own lines already)."""
    results = list(results)
    pending = next((r for r in results if r.pending), None)
    if pending is not None:  # an unwritten exercise: its one "not yet" line has been printed already
        return pending
    ok = all(results)
    n_ok = sum(bool(r) for r in results)
    if ok:
        message = f"{PASS} {what}: all {len(results)} checks passed"
    else:
        message = f"{FAIL} {what}: {n_ok} of {len(results)} checks passed; fix the first ❌ line above first"
    result = CheckResult(ok, message, details=results)
    return result.show() if show else result


def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the learner's: gptmini, the standard library and installed packages."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the gptmini package
    dirs = {here}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.abspath(path))
    for name in ("torch", "numpy"):  # wherever they are installed (a venv, a Colab image, a user site)
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.add(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d.rstrip(os.sep) + os.sep for d in dirs)


def learner_frame(err: BaseException) -> traceback.FrameSummary | None:
    """The last frame of ``err``'s traceback in the learner's code: not gptmini's, torch's, numpy's or Python's.

    An error raised deep inside torch (``cross_entropy``) or gptmini (the KV cache's ``update``) was caused by
    the learner's call; the line to fix is the learner's. None when no frame is the learner's.
    """
    library = _library_dirs()
    frames = traceback.extract_tb(err.__traceback__)
    for frame in reversed(frames):
        name = frame.filename
        if name.startswith("<frozen ") or (os.path.isabs(name) and os.path.abspath(name).startswith(library)):
            continue
        return frame
    return None


_OLD_CELL = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")


def _place(filename: str) -> str:
    """Where code lives, as a learner knows it: "cell In[5]" for a notebook cell, else the file's name."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # plain Python: no notebook cells
        shell = None
    if shell is not None:
        named = getattr(getattr(shell, "compile", None), "format_code_name", lambda _name: None)(filename)
        if named:
            return f"cell {named[1]}"
    old = _OLD_CELL.fullmatch(filename)
    if old:
        return f"cell In[{old.group(1)}]"
    if re.search(r"ipykernel_\d+", filename):
        return "your notebook cell"
    return os.path.basename(filename) or filename


def raised(what: str, err: BaseException, hint: str | None = None, show: bool = True) -> CheckResult:
    """The one line for an exception in the learner's code: its type, message, and the learner's own line."""
    text = str(err).strip().splitlines()
    message = text[0][:200] if text else ""
    frame = learner_frame(err)
    where = ""
    if frame is not None:
        code = (frame.line or "").strip()[:80]
        where = f" (in {frame.name}, {_place(frame.filename)}, line {frame.lineno}" + (f": {code})" if code else ")")
    return failed(what, f"raised {type(err).__name__}: {message}{where}", hint, show)


def call_learner(
    what: str, fn: Callable[..., Any], *args: Any, may_return_none: bool = False, **kwargs: Any
) -> tuple[Any, CheckResult | None]:
    """Run the learner's function; an exception becomes a failing result (at the learner's line), not a crash.

    Returns ``(value, None)`` on success and ``(None, failing result)`` when ``fn`` raised. A
    NotImplementedError is a stub of the student edition: a "not yet" result, not a failure, and so is a
    ``None`` back (a forgotten ``return``), unless ``may_return_none`` (e.g. a method like ``add`` that
    returns nothing, or a check that says itself what a ``None`` means).
    """
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError:
        return None, not_yet(what, STUB_MESSAGE)
    except Exception as err:  # the learner's code may fail in any way; report it and keep the notebook alive
        return None, raised(what, err)
    if value is None and not may_return_none:
        return None, not_yet(what)
    return value, None


def require_callable(value: Any, argument: str, check: str) -> None:
    """Misuse guard: a check that needs a function raises TypeError when given something else."""
    if not callable(value):
        raise TypeError(
            f"{check}() expects {argument} to be a function (pass its name without calling it), "
            f"got a {type(value).__name__}"
        )
