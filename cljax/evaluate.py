"""Evaluates a saved model and writes score files, like the seeds' test modes.

  python -m cljax.evaluate --workdir=runs/X [--task=T | --step=S] \
      [--config=configs/other.py] [--split=test] [--out=DIR]
  python -m cljax.evaluate --workdir=runs/X --folder=DIR   # one folder

Loads the checkpoint at the end of task T (``--task``), at global step S
(``--step``) or the newest one, scores the split of every task of the stream
(the run's own config, or ``--config`` to test on another stream), and
writes ``<out>/<task>.txt`` with one ``utt_id score label`` line per
utterance (score = genuine log-odds, higher = more genuine) plus
``<out>/metrics.json``; prints a table of the metrics.

``--folder=DIR`` scores one folder instead, as ``python -m cljax.score
--folder`` does: every audio file for an audio run; every image for an
image run (a ``spectrum`` or ``rgb`` front end), labelled by ``0_real/`` +
``1_fake/`` (or ``real/`` + ``fake/``) class folders when present, with
AUC, accuracy and EER (``cljax.score.score_image_folder``).
"""

from __future__ import annotations

import json
import logging
import os
import sys

from absl import app
import jax
import ml_collections
import orbax.checkpoint as ocp

from cljax import config_schema
from cljax import metrics as metrics_lib
from cljax import train
from cljax.io.checkpoints import Checkpointer
from cljax.registry import ConfigError

# The flags live in their own module: cljax.score reads them too and
# imports this module, which ``python -m cljax.evaluate`` runs a second time
# as __main__ (flags defined here would then be defined twice).
from cljax.evaluate_flags import (CONFIG as _CONFIG, FOLDER as _FOLDER,
                                  OUT as _OUT, SPLIT as _SPLIT, STEP as _STEP,
                                  TASK as _TASK, WORKDIR as _WORKDIR)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run saved in its workdir."""
  return config_schema.load_saved(workdir)


def _saved_steps(folder: str) -> list[int]:
  if not os.path.isdir(folder):
    return []
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit())


def _leaf_shapes(tree) -> dict[str, tuple[int, ...]]:
  """``{path: shape}`` of a pytree's leaves (arrays or orbax metadata)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(leaf.shape)
          for path, leaf in leaves}


def _differences(fresh: dict, saved: dict) -> list[str]:
  lines = [f"{p}: checkpoint {saved[p]}, config {fresh[p]}"
           for p in fresh if p in saved and saved[p] != fresh[p]]
  lines += [f"{p}: only in the config's model" for p in fresh
            if p not in saved]
  lines += [f"{p}: only in the checkpoint" for p in saved if p not in fresh]
  return lines


def check_checkpoint_matches(state, checkpoint_dir: str,
                             model_name: str) -> None:
  """ConfigError unless the checkpoint's params/batch_stats have the tree
  and shapes of ``state``'s (the model built from the config).

  Read from the checkpoint's metadata, before restoring, so that a
  mismatch is named instead of surfacing as an orbax traceback.
  """
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # orbax warns about a metadata file.
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      metadata = checkpointer.metadata(os.path.join(checkpoint_dir, "state"))
  finally:
    absl_logger.setLevel(level)
  saved = getattr(metadata, "item_metadata", metadata)
  for name in ("params", "batch_stats"):
    diff = _differences(_leaf_shapes(getattr(state, name)),
                        _leaf_shapes(saved.get(name) or {}))
    if diff:
      raise ConfigError(
          f"{checkpoint_dir}: its {name} do not match the model the config "
          f"builds (config.model.name={model_name!r}): "
          f"{len(diff)} difference(s), first: " + "; ".join(diff[:4]) +
          ". Score with the run's own config (drop --config) or a --config "
          "whose config.model (architecture, sizes) and number of classes "
          "are the run's.")


def require_checkpoints(workdir: str) -> None:
  """FileNotFoundError unless ``workdir`` holds a checkpoint (checked before
  anything is built, and without creating the checkpoint folders)."""
  root = os.path.join(workdir, "checkpoints")
  if not (_saved_steps(os.path.join(root, "latest"))
          or _saved_steps(os.path.join(root, "tasks"))):
    raise FileNotFoundError(
        f"--workdir={workdir}: no checkpoint under {root}. A run saves one "
        "every config.train.checkpoint_every steps and at each task end: "
        "let it train (or resume it with python -m cljax.main --workdir="
        f"{workdir} --config=...) before scoring.")


def restore_checkpoint(exp: train.Experiment, workdir: str, *,
                       task: int | None = None, step: int | None = None):
  """``(state, label)``: the run's checkpoint at the end of ``task``, at
  global ``step`` or the newest; ``label`` is ``task<T>``/``step<S>``.

  Raises:
    FileNotFoundError: the workdir has no checkpoint, or not the one asked.
    ConfigError: the checkpoint's model does not match ``exp``'s config.
  """
  require_checkpoints(workdir)
  fresh = train.initial_state(exp)
  checkpointer = Checkpointer(workdir)
  try:
    if task is not None:
      directory, index = checkpointer.tasks.directory, task
    else:
      directory = checkpointer.latest.directory
      index = step if step is not None else checkpointer.latest_step()
    checkpoint_dir = os.path.join(str(directory), str(index))
    if os.path.isdir(checkpoint_dir):
      check_checkpoint_matches(fresh, checkpoint_dir,
                               str(exp.config.model.name))
    try:
      state, progress = checkpointer.restore(fresh, step=step, task=task)
    except (FileNotFoundError, ConfigError):
      raise
    except Exception as error:  # pylint: disable=broad-except
      raise ConfigError(
          f"{checkpoint_dir} cannot be restored into the state the config "
          f"builds ({type(error).__name__}: {str(error)[:300]}). Its params "
          "match the config's model, so most likely the strategy's or the "
          "optimizer's state differs (config.strategy / config.optimizer "
          "are not the run's: drop --config or keep them), or the "
          "checkpoint is damaged.") from error
  finally:
    checkpointer.close()
  label = f"task{task}" if task is not None else f"step{progress['step']}"
  return state, label


def evaluate(workdir: str, config: ml_collections.ConfigDict, *,
             task: int | None = None, step: int | None = None,
             split: str | None = None, out: str | None = None) -> dict:
  """Scores every task of ``config``'s stream with a saved model."""
  require_checkpoints(workdir)
  exp = train.build_experiment(config)
  state, label = restore_checkpoint(exp, workdir, task=task, step=step)
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
  if _FOLDER.value:
    # One model on a folder (seed 001's --runtest, seed 002's --test):
    # cljax.score's folder mode, for audio and image runs alike.
    # pylint: disable-next=g-import-not-at-top
    from cljax import score
    score.main(argv)
    return
  try:
    config = _CONFIG.value or load_run_config(_WORKDIR.value)
    evaluate(_WORKDIR.value, config, task=_TASK.value, step=_STEP.value,
             split=_SPLIT.value, out=_OUT.value)
  except (ConfigError, FileNotFoundError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
