"""Runs a continual-learning experiment: ``python -m cljax.main --config=...``.

  python -m cljax.main --config=configs/rwm_audio.py[:variant] \
      [--config.optimizer.learning_rate=3e-4] [--workdir=runs/mine] [--force]

The workdir (default ``runs/<config>-<time>``) receives the resolved config,
logs, the result matrices, plots and checkpoints. Running again with the same
workdir resumes where it stopped.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from cljax import run

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, optionally with :variant.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder; default runs/<config>-<time>. An "
    "existing one is resumed.")
_FORCE = flags.DEFINE_bool(
    "force", False, "If --workdir holds a run of another config, move it "
    "aside (to <workdir>.replaced-<time>) and start afresh.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. "
                         "--config=configs/rwm_audio.py")
  config_arg = flags.FLAGS["config"].config_filename
  try:
    run.run(_CONFIG.value, config_arg=config_arg, workdir=_WORKDIR.value,
            force=_FORCE.value)
  except run.UserError as error:
    logging.error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except run.Interrupted as interrupted:
    print(str(interrupted), file=sys.stderr)
    sys.exit(128 + interrupted.signum)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a one-line error for a bad config override."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    print(f"error: {error}\nPass --helpshort to see the flags.",
          file=sys.stderr)
    sys.exit(2)
  except (AttributeError, KeyError, TypeError, ValueError) as error:
    # ml_collections raises these for an override of a field that does not
    # exist (with a "did you mean") or a config file that fails to build.
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    message = str(error).strip("'\"").replace("\\n", " ")
    print(f"error: bad --config or override {overrides}: {message}",
          file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
