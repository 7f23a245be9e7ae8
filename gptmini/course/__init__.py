"""What only the course needs, kept apart from the library a learner reads (``gptmini/``).

- :mod:`~gptmini.course.modes`: the speed switch (``GPTMINI_MODE``), the device, the seed: ``setup()``, ``by_mode``.
- :mod:`~gptmini.course.recipes`: every size, step count and learning rate the course trains with, per mode and
  device.
- :mod:`~gptmini.course.checkpoints`: where checkpoints live, and the stand-ins later notebooks train when an
  earlier notebook was not run.
- :mod:`~gptmini.course.expect`: a notebook checks the numbers its prose quotes.
- :mod:`~gptmini.course.ablation_ladder`: notebook 05's ablation ladder.
- :mod:`~gptmini.course.checks`: one module per notebook, the ``check_…`` helpers of its exercises.
- Teacher tooling: nbgrader's source metadata (:mod:`~gptmini.course.nbgrader_source`), the student edition and
  the nbgrader course folder (:mod:`~gptmini.course.editions`), the Colab badges and install cells
  (:mod:`~gptmini.course.sync`, :mod:`~gptmini.course.colab`), all behind ``python -m gptmini.course …``.
"""

from .checkpoints import (
    FALLBACK_RECIPE,
    FINETUNE_RECIPE,
    GPU_SUFFIX,
    LADDER_RUN_FILE,
    checkpoint_dir,
    checkpoint_name,
    course_model,
    finetune_base_model,
    home,
    ladder_model,
)
from .modes import MODES, SCALES, Setup, by_mode, describe_shape, describe_sizes, mode, scale, seed_everything, setup
from .recipes import model_config, recipe_for, train_config

__all__ = [
    "FALLBACK_RECIPE",
    "FINETUNE_RECIPE",
    "GPU_SUFFIX",
    "LADDER_RUN_FILE",
    "MODES",
    "SCALES",
    "Setup",
    "by_mode",
    "checkpoint_dir",
    "checkpoint_name",
    "course_model",
    "describe_shape",
    "describe_sizes",
    "finetune_base_model",
    "home",
    "ladder_model",
    "mode",
    "model_config",
    "recipe_for",
    "scale",
    "seed_everything",
    "setup",
    "train_config",
]
