"""Runs a continual-learning experiment: ``python -m cljax.main --config=...``.

  python -m cljax.main --config=configs/rwm_audio.py[:variant] \
      [--config.optimizer.learning_rate=3e-4] [--workdir=runs/mine] [--force]

It trains on every device of the host (batch sharded over them). On several
hosts, run it once per host with ``--distributed`` (and, outside SLURM /
Open MPI / Cloud TPU, ``--coordinator_address --num_processes
--process_id``); see ``cljax.distributed`` and ``launch/``.

The workdir (default ``runs/<config>-<time>``) receives the resolved config,
logs, the result matrices, plots and checkpoints. Running again with the same
workdir resumes where it stopped.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from cljax import distributed
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
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-process run: call jax.distributed."
    "initialize() (automatic when JAX_COORDINATOR_ADDRESS is set or under a "
    "multi-task SLURM / Open MPI / multi-host TPU job).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (default: "
    "$JAX_COORDINATOR_ADDRESS or the detected cluster's).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in a multi-process run (default: "
    "$JAX_NUM_PROCESSES or the detected cluster's).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index, 0 .. num_processes-1 "
    "(default: $JAX_PROCESS_ID or the detected cluster's).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. "
                         "--config=configs/rwm_audio.py")
  config_arg = flags.FLAGS["config"].config_filename
  try:
    # Before anything touches a device: jax.devices() then spans all hosts.
    distributed.initialize(
        _DISTRIBUTED.value, coordinator_address=_COORDINATOR.value,
        num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
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
