"""Evaluates a saved model and writes score files, like the seeds' test modes.

  python -m cljax.evaluate --workdir=runs/X [--task=T | --step=S] \
      [--config=configs/other.py] [--split=test] [--out=DIR]

Loads the checkpoint at the end of task T (``--task``), at global step S
(``--step``) or the newest one, scores the split of every task of the stream
(the run's own config, or ``--config`` to test on another stream), and
writes ``<out>/<task>.txt`` with one ``utt_id score label`` line per
utterance (score = genuine log-odds, higher = more genuine) plus
``<out>/metrics.json``; prints a table of the metrics.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags
import ml_collections
from ml_collections import config_flags

from cljax import config_schema
from cljax import metrics as metrics_lib
from cljax import train
from cljax.io.checkpoints import Checkpointer
from cljax.registry import ConfigError

_WORKDIR = flags.DEFINE_string("workdir", None, "The run folder to load.")
_TASK = flags.DEFINE_integer("task", None, "Use the checkpoint saved at the "
                             "end of this task (0-based).")
_STEP = flags.DEFINE_integer("step", None, "Use the checkpoint at this global "
                             "step.")
_SPLIT = flags.DEFINE_string("split", None, "Split to score (default: the "
                             "config's data.eval_split).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default "
                           "<workdir>/scores/<checkpoint>).")
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Optional: evaluate on this config's stream instead of "
    "the run's own.", lock_config=True)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run saved in its workdir."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: --workdir must be a run "
                            "folder written by cljax.main.")
  config = config_schema.base_config()
  with open(path) as f:
    saved = json.load(f)
  config.update_from_flattened_dict(_flatten(saved, config))
  return config


def _flatten(tree, config, prefix=""):
  """Flattens a saved config; component blocks are taken whole."""
  flat = {}
  for key, value in tree.items():
    target = config.get(key) if config is not None else None
    if isinstance(value, dict) and isinstance(target, ml_collections.ConfigDict
                                              ) and "name" not in value:
      flat.update(_flatten(value, target, f"{prefix}{key}."))
    elif isinstance(value, dict):
      flat[f"{prefix}{key}"] = ml_collections.ConfigDict(value)
    else:
      flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
  return flat


def evaluate(workdir: str, config: ml_collections.ConfigDict, *,
             task: int | None = None, step: int | None = None,
             split: str | None = None, out: str | None = None) -> dict:
  """Scores every task of ``config``'s stream with a saved model."""
  exp = train.build_experiment(config)
  checkpointer = Checkpointer(workdir)
  try:
    state, progress = checkpointer.restore(train.initial_state(exp),
                                           step=step, task=task)
  finally:
    checkpointer.close()
  label = (f"task{task}" if task is not None else f"step{progress['step']}")
  out = out or os.path.join(workdir, "scores", label)
  os.makedirs(out, exist_ok=True)
  split = split or config.data.eval_split
  eval_step = train.make_eval_step(exp)
  class_names = list(exp.stream.class_names)
  table = {}
  for task_id, task_def in enumerate(exp.stream.tasks):
    scored = train.score_task(exp, eval_step, state, task_id, split)
    with open(os.path.join(out, f"{task_def.name}.txt"), "w") as f:
      for utt_id, score, lab in zip(scored["utt_ids"], scored["scores"],
                                    scored["labels"]):
        f.write(f"{utt_id} {score:.6f} {class_names[int(lab)]}\n")
    table[task_def.name] = metrics_lib.compute_metrics(
        list(config.eval.metrics), scores=scored["scores"],
        labels=scored["labels"], predictions=scored["predictions"])
  with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"checkpoint": label, "split": split, "metrics": table}, f,
              indent=2)
  names = list(config.eval.metrics)
  print(f"{label} on the {split} split (%):")
  print("| task | " + " | ".join(names) + " |")
  print("|---" * (len(names) + 1) + "|")
  for name, values in table.items():
    print(f"| {name} | " + " | ".join(metrics_lib.format_value(n, values[n])
                                      for n in names) + " |")
  print(f"score files: {out}")
  return table


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required.")
  if _TASK.value is not None and _STEP.value is not None:
    raise app.UsageError("Give --task or --step, not both.")
  try:
    config = _CONFIG.value or load_run_config(_WORKDIR.value)
    evaluate(_WORKDIR.value, config, task=_TASK.value, step=_STEP.value,
             split=_SPLIT.value, out=_OUT.value)
  except (ConfigError, FileNotFoundError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
