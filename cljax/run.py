"""One experiment from a resolved config: workdir, validation, summary.

``cljax.main`` (the CLI) and ``cljax.sweep`` call ``run``. It validates the
config before anything is built or compiled, prepares the workdir (refusing
to mix two configs in one folder), trains, and prints the summary table and
where the results, plots and checkpoints are.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging as std_logging
import os
import shutil

from absl import logging
import jax
import ml_collections
import numpy as np

from cljax import config_schema
from cljax import distributed
from cljax import metrics as metrics_lib
from cljax.io.results import atomic_write_text
from cljax.registry import ConfigError
from cljax import train
from cljax.train import Interrupted, NonFiniteLossError


class WorkdirError(RuntimeError):
  """The workdir holds a run of another config."""


UserError = (ConfigError, WorkdirError, NonFiniteLossError)
CONFIG_FILE = "config.json"


def config_name(config_arg: str) -> str:
  """``configs/rwm_audio.py:small`` -> ``rwm_audio-small``."""
  path, _, variant = config_arg.partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return f"{stem}-{variant}" if variant else stem


def load_config(config_arg: str) -> ml_collections.ConfigDict:
  """``configs/rwm_audio.py:small`` -> that file's ``get_config("small")``.

  What ``--config=`` does on the command line, for scripts (benchmarks,
  notebooks) that build experiments without flags.
  """
  path, _, variant = config_arg.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"Config file {path!r} does not exist (from "
                      f"{config_arg!r}).")
  spec = importlib.util.spec_from_file_location(
      f"cljax_config_{config_name(config_arg).replace('-', '_')}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant or None)
  if not config.get("config_name"):
    with config.unlocked():
      config.config_name = config_name(config_arg)
  return config


def default_workdir(config_arg: str) -> str:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return os.path.join("runs", f"{config_name(config_arg)}-{stamp}")


def _comparable(config_dict: dict) -> str:
  return json.dumps(config_dict, sort_keys=True, default=str)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    force: bool, write: bool = True) -> None:
  """Creates the workdir, or checks an existing one holds this config.

  ``write=False`` (processes other than the main one) only checks, so every
  process raises the same error; the main process moves and writes.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  resolved = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if _comparable(saved) != _comparable(resolved):
      if not force:
        differing = sorted(_differences(saved, resolved))
        raise WorkdirError(
            f"{workdir} holds a run of another config (fields differing: "
            f"{', '.join(differing[:10])}). Resume it with the same config, "
            "pick a new --workdir, or pass --force to move the old run aside.")
      if not write:
        return
      aside = f"{workdir.rstrip(os.sep)}.replaced-" + datetime.datetime.now(
          ).strftime("%Y%m%d-%H%M%S")
      shutil.move(workdir, aside)
      logging.warning("Moved the previous run in %s to %s.", workdir, aside)
  if write:
    atomic_write_text(path, json.dumps(resolved, indent=2, sort_keys=True))


def _differences(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for key in set(a) | set(b):
      yield from _differences(a.get(key), b.get(key), f"{prefix}{key}.")
  elif a != b:
    yield prefix.rstrip(".")


def summary_table(results) -> str:
  """Markdown: metrics as columns, result-matrix summaries as rows."""
  names = list(results.metric_names)
  summaries = results.summaries()
  keys = list(next(iter(summaries.values())))
  lines = ["| summary | " + " | ".join(f"{n} (%)" for n in names) + " |",
           "|---" * (len(names) + 1) + "|"]
  for key in keys:
    cells = [metrics_lib.format_value(n, summaries[n][key]) for n in names]
    lines.append(f"| {key} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def matrix_table(results, metric: str) -> str:
  matrix = results.matrix(metric)
  names = results.task_names
  lines = [f"{metric} (%) after training on (rows) / tested on (columns)",
           "| trained on | " + " | ".join(names) + " |",
           "|---" * (len(names) + 1) + "|"]
  baseline = results.baseline(metric)
  rows = ([("untrained", baseline)] if baseline is not None else []) + [
      (names[i], matrix[i]) for i in range(matrix.shape[0])]
  for label, row in rows:
    lines.append(f"| {label} | " + " | ".join(
        metrics_lib.format_value(metric, v) for v in np.asarray(row)) + " |")
  return "\n".join(lines)


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of orbax and jax; their warnings still show."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    noisy = any(part in record.pathname for part in (
        f"{os.sep}orbax{os.sep}", f"{os.sep}jax{os.sep}", f"{os.sep}grain{os.sep}"))
    return not noisy or record.levelno >= std_logging.WARNING


def quiet_library_logs() -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())


def run(config: ml_collections.ConfigDict, *, config_arg: str,
        workdir: str | None = None, force: bool = False):
  """Validates, prepares the workdir, trains/resumes, prints the summary."""
  quiet_library_logs()
  if not config.config_name:
    config.config_name = config_name(config_arg)
  config_schema.validate(config, num_devices=jax.device_count())
  if workdir is None and jax.process_count() > 1:
    raise ConfigError(
        "A multi-process run needs --workdir: a folder every process sees "
        "at the same path (the default name holds each host's clock time).")
  workdir = os.path.abspath(workdir or default_workdir(config_arg))
  prepare_workdir(config, workdir, force,
                  write=distributed.is_main_process())
  distributed.sync("cljax_prepare_workdir")
  logging.info("Workdir: %s  devices: %s", os.path.abspath(workdir),
               jax.devices())
  results = train.train_and_evaluate(config, workdir)
  report = "\n\n".join([
      f"Finished {config.config_name} ({config.strategy.name}, seed "
      f"{config.seed}) on {len(results.task_names)} tasks.",
      summary_table(results),
      matrix_table(results, results.metric_names[0]),
      "\n".join([
          f"results:     {os.path.join(workdir, 'results')}  (results.json, "
          "matrix_<metric>.csv, summary.csv)",
          f"plots:       {os.path.join(workdir, 'plots')}",
          f"checkpoints: {os.path.join(workdir, 'checkpoints')}",
          f"logs:        {os.path.join(workdir, 'train.jsonl')}, "
          f"{os.path.join(workdir, 'eval.jsonl')}",
      ])])
  if distributed.is_main_process():
    print(report, flush=True)
  return results


__all__ = ["Interrupted", "UserError", "WorkdirError", "run"]
