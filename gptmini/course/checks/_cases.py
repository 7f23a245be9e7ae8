"""One table-driven case loop for the checks that try a learner's function on several inputs.

Many checks do the same thing: for each case, call the learner's function (a stub or an exception ends the
check there, with its one line), judge the value against gptmini's, and give one verdict for all cases.
A check then only lists its cases and says how to judge one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._report import CheckResult, call_learner, combine, require_callable


@dataclass
class Case:
    """One try of the learner's function: its name in the report, the arguments, gptmini's answer, extras."""

    what: str
    args: tuple
    expected: Any = None
    data: dict[str, Any] = field(default_factory=dict)  # what the judge needs besides the answer (e.g. slips)


def run_cases(
    check: str,
    argument: str,
    fn: Callable[..., Any],
    cases: Iterable[Case],
    judge: Callable[[Case, Any], CheckResult],
) -> CheckResult:
    """Call ``fn(*case.args)`` for each case and ``judge(case, value)`` it; one combined verdict named ``check``.

    ``cases`` may be a generator: a case is built only when the one before has been judged.
    """
    require_callable(fn, argument, check)
    results = []
    for case in cases:
        value, error = call_learner(case.what, fn, *case.args)
        if error is not None:
            return error
        results.append(judge(case, value))
    return combine(check, results)
