"""Flags of ``python -m cljax.evaluate``, shared with ``cljax.score``.

Kept apart from ``cljax/evaluate.py`` so that they are defined once however
the two are started (``cljax.evaluate --folder`` hands over to
``cljax.score``, which imports ``cljax.evaluate``).
"""

from absl import flags
from ml_collections import config_flags

WORKDIR = flags.DEFINE_string("workdir", None, "The run folder to load.")
TASK = flags.DEFINE_integer("task", None, "Use the checkpoint saved at the "
                            "end of this task (0-based).")
STEP = flags.DEFINE_integer("step", None, "Use the checkpoint at this global "
                            "step.")
SPLIT = flags.DEFINE_string(
    "split", None, "Split to score: cljax.evaluate: a split of the stream's "
    "tasks (default: the config's data.eval_split); cljax.score: the "
    "corpus's split (see its docstring).")
OUT = flags.DEFINE_string("out", None, "Output folder (default "
                          "<workdir>/scores/<checkpoint>).")
FOLDER = flags.DEFINE_string(
    "folder", None, "Score every file under this folder (recursively) "
    "instead of the stream: audio (.wav/.flac) for an audio run, images for "
    "an image run (class folders 0_real/1_fake or real/fake label them). "
    "Both cljax.evaluate and cljax.score read it (cljax/score.py).")
CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Optional: evaluate on this config's stream instead of "
    "the run's own.", lock_config=True)
