"""``python -m gptmini.course …``: the teacher's commands (see :func:`gptmini.course.main`)."""

from . import main

raise SystemExit(main())
