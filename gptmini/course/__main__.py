"""``python -m gptmini.course …``: the commands a teacher runs (editions, nbgrader, the Colab links)."""

from __future__ import annotations

import contextlib
import io
import sys

from . import editions, nbgrader_source, sync

_USAGE = (
    "usage: python -m gptmini.course student-edition OUT_DIR [--from NOTEBOOKS]"
    " | nbgrader-course COURSE_DIR [--from NOTEBOOKS] | nbgrader-source [--check] [--from NOTEBOOKS]"
    " | sync-notebooks [--check] [--repo-url URL]"
)


#: The course's maintenance commands, each the ``main`` of the module that does the work.
COMMANDS = {
    "student-edition": editions.main,
    "nbgrader-course": editions.course_main,
    "nbgrader-source": nbgrader_source.main,
    "sync-notebooks": sync.main,
}


def main(argv: list[str] | None = None) -> int:
    """``python -m gptmini.course COMMAND …``: student-edition, nbgrader-course, nbgrader-source, sync-notebooks.

    One place to find the commands a teacher runs: the student edition for self-study and the nbgrader course
    folder (:mod:`gptmini.course.editions`), nbgrader's cell metadata of the teacher notebooks
    (:mod:`gptmini.course.nbgrader_source`), the Colab badges and install cells (:mod:`gptmini.course.sync`).
    A mistake in the input is one line on stderr and exit status 2.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(_USAGE)
        return 0
    if not args or args[0] not in COMMANDS:
        said = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"python -m gptmini.course: {said}; {_USAGE}", file=sys.stderr)
        return 2
    prog, errors = f"python -m gptmini.course {args[0]}", io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            status = COMMANDS[args[0]](args[1:])
    except SystemExit as stop:  # argparse: a usage line, then "prog: error: what was wrong"; keep that one line
        if stop.code in (0, None):
            return 0
        said = errors.getvalue().strip().splitlines()
        reason = said[-1].split("error: ", 1)[-1] if said else f"exit status {stop.code}"
        print(f"{prog}: {reason} ({_USAGE})", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # e.g. OUT_DIR is the teacher's folder, or a file; a malformed marker
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    sys.stderr.write(errors.getvalue())  # what the command said on stderr, e.g. which files --check found stale
    return status


if __name__ == "__main__":
    raise SystemExit(main())
