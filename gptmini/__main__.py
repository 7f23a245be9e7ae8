"""``python -m gptmini train|sample``: see :mod:`gptmini.cli`."""

from .cli import main

raise SystemExit(main())
