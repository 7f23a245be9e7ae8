"""``check_…`` helpers, one module per notebook: each compares what a notebook built inline with gptmini's own version.

Every check prints one friendly line per comparison ("✅ … matches gptmini" / "❌ … differs: first
difference at …") and returns a :class:`CheckResult` that is truthy when it passed. A wrong answer never
raises, so the notebook keeps going; only misuse (wrong kind of argument) raises. An exercise not written
yet says "⏳ not yet: …" instead, and ``package_version(name)`` gives the package's version to go on with::

    from gptmini.course.checks import package_version
    from gptmini.course.checks.nb03 import check_softmax

    if not check_softmax(softmax):
        softmax = package_version("softmax")

``nb00`` … ``nb12`` each hold one notebook's checks and its ``PACKAGE_VERSIONS`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10, nb11, nb12
from ._report import CheckResult, combine, compare_tensors, compare_values, failed, not_yet, passed

__all__ = [
    "CheckResult",
    "combine",
    "compare_tensors",
    "compare_values",
    "failed",
    "not_yet",
    "passed",
    "package_version",
]

_NOTEBOOKS = (nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10, nb11, nb12)


def _versions() -> dict[str, Callable[..., Any]]:
    """Every notebook's table in one: a name is an exercise of exactly one notebook."""
    merged: dict[str, Callable[..., Any]] = {}
    for module in _NOTEBOOKS:
        merged.update(module.PACKAGE_VERSIONS)
    return merged


def package_version(name: str, *args: Any) -> Any:
    """gptmini's working version of the exercise ``name`` (a function, or a class-like factory of modules)."""
    versions = _versions()
    if name not in versions:
        raise KeyError(f"no package version of {name!r}; known: {sorted(versions)}")
    return versions[name](*args)
