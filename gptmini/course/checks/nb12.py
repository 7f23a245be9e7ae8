"""Check helpers for notebook 12: training compute from a model's shape, and a power law fitted in log space.

* ``run_flops(n_layer, n_embd, n_tokens)``: N ≈ 12 · n_layer · n_embd² non-embedding parameters (Kaplan et
  al. 2020's count: 4C² in attention, 8C² in the MLP, per layer), and training compute ≈ 6 · N · D. GPT-3
  (96 × 12288, 300B tokens) must come out near its paper's 3.14e23.
* ``fit_loglog(x, y)``: the least-squares line through (log10 x, log10 y), as (slope, intercept).
* ``extrapolate(slope, intercept, x)``: the loss that line gives at a new size x, 10^(intercept + slope · log10 x).

Each check names the usual slip when the answer matches it: 2·N·D (the forward pass only), attention or MLP
weights alone, n_embd not squared; natural log on one axis and log10 on the other, natural log for both
(right slope, intercept in other units), loss fitted instead of log loss, the exponent returned for the slope;
the line's value left in log10, or taken back with exp, or the intercept used as the coefficient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._report import CheckResult, call_learner, combine, compare_values, failed, passed, require_callable

__all__ = ["check_run_flops", "check_fit_loglog", "check_extrapolate", "reference_run_flops"]


def reference_run_flops(n_layer: int, n_embd: int, n_tokens: float) -> float:
    """6 · (12 · n_layer · n_embd²) · n_tokens: the compute of a training run from its shape."""
    from ...sizes import flops

    return flops(12 * n_layer * n_embd**2, n_tokens)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def check_run_flops(flops_fn: Callable[[int, int, float], Any]) -> CheckResult:
    """``flops_fn(n_layer, n_embd, n_tokens)`` ≈ 6 · 12 · n_layer · n_embd² · n_tokens, for three shapes."""
    require_callable(flops_fn, "flops_fn", "check_run_flops")
    cases = ((96, 12288, 300e9, "GPT-3 175B on 300B tokens"), (12, 768, 300e9, "GPT-3 Small on 300B tokens"),
             (4, 64, 4e6, "the ladder's top rung (4 x 64) on 4M characters"))  # fmt: skip
    results = []
    for n_layer, n_embd, n_tokens, name in cases:
        what = f"training FLOPs of {name}"
        value, error = call_learner(what, flops_fn, n_layer, n_embd, n_tokens)
        if error is not None:
            return error
        expected = reference_run_flops(n_layer, n_embd, n_tokens)
        try:
            got = float(value)
        except (TypeError, ValueError):
            return failed(what, f"should be a number, got a {type(value).__name__}")
        n, d = 12 * n_layer * n_embd**2, n_tokens
        slips = {
            2 * n * d: "2·N·D is the forward pass only, the backward pass costs about twice the forward again "
            "(or the whole training compute of attention's 4·C² per layer alone: the MLP adds 8·C²)",
            n * d: "that is N·D, one operation per parameter and token: count a weight's multiplies and adds in the "
            "forward pass, and what the backward pass adds",
            6 * 8 * n_layer * n_embd**2 * d: "8·C² per layer is the MLP alone; attention adds 4·C² (N ≈ 12·L·C²)",
            6 * 12 * n_layer * n_embd * d: "the weights of a layer grow with n_embd squared: N ≈ 12 · L · C²",
        }
        hint = next((h for v, h in slips.items() if _close(got, v)), None)
        results.append(compare_values(what, got, expected, hint))
    gpt3 = reference_run_flops(96, 12288, 300e9)
    note = f"GPT-3: {gpt3:.3g} FLOPs from its shape, its paper reports 3.14e23"
    result = combine("check_run_flops", results)
    if result:
        print(f"   ({note})")
    return result


def _test_points() -> tuple[Any, Any]:
    """Seven sizes over two decades and losses on a power law with scatter (not exactly on a line)."""
    import numpy as np

    x = np.array([1.2e4, 3.0e4, 6.1e4, 1.3e5, 2.4e5, 5.5e5, 1.1e6])
    wiggle = np.array([1.02, 0.97, 1.01, 1.03, 0.98, 1.0, 0.99])
    return x, 9.0 * x**-0.12 * wiggle


def _slips(x: Any, y: Any) -> dict[str, tuple[float, float]]:
    """(slope, intercept) that the usual mistakes give, each with what to say."""
    import numpy as np

    def line(a: Any, b: Any) -> tuple[float, float]:
        slope, intercept = np.polyfit(a, b, 1)
        return float(slope), float(intercept)

    return {
        "natural log on both axes: the slope is right but the intercept is ln a, not log10 a; use np.log10": line(
            np.log(x), np.log(y)
        ),
        "log10 for x but natural log for y: the slope comes out ln(10) = 2.30 times too steep; one base for both": (
            line(np.log10(x), np.log(y))
        ),
        "natural log for x but log10 for y: the slope comes out 2.30 times too flat; one base for both": line(
            np.log(x), np.log10(y)
        ),
        "that fits the loss itself against log10 x; a power law is a line only for log10 of the loss": line(
            np.log10(x), y
        ),
        "that fits log10 of the loss against x itself; take log10 of the sizes too": line(x, np.log10(y)),
    }


def check_fit_loglog(fit_fn: Callable[[Any, Any], Any]) -> CheckResult:
    """``fit_fn(x, y)`` -> (slope, intercept) of the least-squares line through (log10 x, log10 y)."""
    from ...scaling import loglog_line

    require_callable(fit_fn, "fit_fn", "check_fit_loglog")
    x, y = _test_points()
    what = "fit_loglog on seven sizes with losses near 9 · x^-0.12"
    value, error = call_learner(what, fit_fn, x.copy(), y.copy())
    if error is not None:
        return error
    try:
        slope, intercept = (float(v) for v in value)
    except (TypeError, ValueError):
        return failed(what, f"should return the pair (slope, intercept), got {value!r}")
    exp_slope, exp_intercept = loglog_line(x, y)
    for hint, (s, i) in _slips(x, y).items():
        if _close(slope, s) and _close(intercept, i) and not (_close(s, exp_slope) and _close(i, exp_intercept)):
            return failed(what, f"gave slope {slope:.4g}, intercept {intercept:.4g}", hint)
    if _close(slope, -exp_slope):
        return failed(
            what,
            f"gave slope {slope:.4g}, expected {exp_slope:.4g}",
            "return the slope itself, negative when the loss falls; the exponent α is minus the slope",
        )
    if _close(slope, exp_slope) and _close(intercept, 10**exp_intercept):
        return failed(what, f"gave intercept {intercept:.4g}", "return the intercept in log10 units, not 10**intercept")
    results = [
        compare_values(
            "the slope",
            slope,
            exp_slope,
            "least squares: covariance of the logs over the variance of log x",
            show=False,
        ),
        compare_values("the intercept", intercept, exp_intercept, "the line's value at log10 x = 0", show=False),
    ]
    first_bad = next((r for r in results if not r), None)
    if first_bad is not None:
        return first_bad.show()
    return passed(f"check_fit_loglog: slope {slope:.4f} and intercept {intercept:.4f} match gptmini")


def check_extrapolate(extrapolate_fn: Callable[[float, float, float], Any]) -> CheckResult:
    """``extrapolate_fn(slope, intercept, x)`` = 10 ** (intercept + slope * log10(x)), for three lines and sizes."""
    require_callable(extrapolate_fn, "extrapolate_fn", "check_extrapolate")
    results = []
    for slope, intercept, x in ((-0.15, 0.9, 4e5), (-0.076, 1.2, 1e9), (-0.05, 0.4, 3e12)):
        what = f"extrapolate({slope}, {intercept}, {x:g})"
        value, error = call_learner(what, extrapolate_fn, slope, intercept, x)
        if error is not None:
            return error
        try:
            got = float(value)
        except (TypeError, ValueError):
            return failed(what, f"should be a number, got a {type(value).__name__}")
        line = intercept + slope * math.log10(x)
        slips = {
            line: "that is log10 of the loss, the line's value: take 10 to that power",
            math.exp(line): "the line is in log10, so go back with 10 ** value, not exp",
            10 ** (intercept + slope * math.log(x)): "the sizes were in log10 when you fitted: use log10(x), not ln",
            intercept * x**slope: "the intercept is log10 a: the coefficient is 10 ** intercept",
        }
        hint = next((h for v, h in slips.items() if _close(got, v)), None)
        results.append(compare_values(what, got, 10**line, hint))
    return combine("check_extrapolate", results)


def _extrapolate(slope: float, intercept: float, x: Any) -> Any:
    import numpy as np

    return 10 ** (intercept + slope * np.log10(x))  # x: a size, or an array of them (the notebook draws the line)


def _fit_loglog():
    from ...scaling import loglog_line

    return loglog_line  # fit_loglog(x, y) -> (slope, intercept) in log10 space


# The package's version of each exercise, for a learner who is not there yet (see package_version).
PACKAGE_VERSIONS: dict[str, Callable[..., Any]] = {
    "run_flops": lambda: reference_run_flops,
    "fit_loglog": _fit_loglog,
    "extrapolate": lambda: _extrapolate,
}
