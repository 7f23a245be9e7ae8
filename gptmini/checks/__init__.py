"""``check_…`` helpers: each compares what a notebook built inline with gptmini's own version.

Every check prints one friendly line per comparison ("✅ … matches gptmini" / "❌ … differs: first
difference at …") and returns a :class:`CheckResult` that is truthy when it passed. A wrong answer never
raises, so the notebook keeps going; only misuse (wrong kind of argument) raises. An exercise not written
yet says "⏳ not yet: …" instead, and ``package_version(name)`` gives the package's version to go on with.

``from gptmini.checks import *`` brings in every ``check_…`` helper of the course.
"""

from ._report import CheckResult, combine, compare_tensors, compare_values, failed, not_yet, passed
from .exercises import *  # noqa: F403
from .exercises import __all__ as _exercises_all
from .fallbacks import package_version
from .part1 import *  # noqa: F403
from .part1 import __all__ as _part1_all
from .part2 import *  # noqa: F403
from .part2 import __all__ as _part2_all
from .part3 import *  # noqa: F403
from .part3 import __all__ as _part3_all
from .tour import *  # noqa: F403
from .tour import __all__ as _tour_all

__all__ = [
    "CheckResult",
    "combine",
    "compare_tensors",
    "compare_values",
    "failed",
    "not_yet",
    "passed",
    "package_version",
    *_part1_all,
    *_part2_all,
    *_exercises_all,
    *_part3_all,
    *_tour_all,
]
from .training import *  # noqa: E402, F403
from .training import __all__ as _training_all  # noqa: E402

__all__ += [*_training_all]

# notebook 07: the classifier head, the similarity sum, the multiple-choice softmax
from .finetuning import *  # noqa: E402, F403
from .finetuning import __all__ as _finetuning_all  # noqa: E402

__all__ += _finetuning_all

# notebook 09: the hub's checkpoint layout, one attention step with a KV cache
from .decoding import *  # noqa: E402, F403
from .decoding import __all__ as _decoding_all  # noqa: E402

__all__ += _decoding_all

# notebook 11, part 2: the direct-logit-attribution projection, a head's full OV circuit
from .circuits import *  # noqa: E402, F403
from .circuits import __all__ as _circuits_all  # noqa: E402

__all__ += _circuits_all
