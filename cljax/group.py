r"""Measures how alike a stream's tasks are and groups them.

  python -m cljax.group --config=configs/finetune_audio.py \
      --workdir=runs/groups [--measure=transfer|frechet|cosine] \
      [--threshold=0.5] [--steps=100] [--split=val] [--model_from=RUN]

Writes to ``--workdir``: ``similarity.csv`` and ``distance.csv`` (tasks x
tasks), ``similarity.png`` (heatmap, groups outlined), ``dendrogram.png``
(the clustering, cut at ``--threshold``) and ``groups.json``: the groups
(task names) and the ``config.data.stream`` block of the grouped stream,
which any config with the same stream takes::

  python -m cljax.main --config=configs/kd_audio.py \
      --config.data.groups=runs/groups/groups.json

(or copy its ``stream`` block into a config file). See ``cljax.grouping`` for the
measures. ``transfer`` trains a fresh model (the config's model, optimizer
and seed) for ``--steps`` steps on each task alone and tests it on every
task; ``frechet`` and ``cosine`` embed each task's ``--split`` with one
model: ``--model_from`` (a run folder or checkpoint, e.g. the production
model) or, by default, the config's model trained ``--steps`` steps on all
tasks together.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np
from ml_collections import config_flags

from cljax import config_schema
from cljax import grouping
from cljax import metrics as metrics_lib
from cljax import step as step_lib
from cljax import train
from cljax.data import loader
from cljax.io import plots
from cljax.io.results import atomic_write_text
from cljax.registry import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The config whose stream (and model) to use.",
    lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.")
_MEASURE = flags.DEFINE_enum("measure", "transfer", list(grouping.MEASURES),
                             "How task similarity is measured.")
_THRESHOLD = flags.DEFINE_float(
    "threshold", None, "Cut distance of the clustering (default: 0.5 for "
    "transfer, 1.0 for frechet, 0.3 for cosine).")
_STEPS = flags.DEFINE_integer("steps", 100, "Training steps per brief fit.")
_SPLIT = flags.DEFINE_string(
    "split", None, "Split to test/embed (default: val where every task has "
    "one, else the config's data.eval_split).")
_MODEL_FROM = flags.DEFINE_string(
    "model_from", "", "Embedding measures: the run folder or checkpoint "
    "whose model embeds the tasks.")

DEFAULT_THRESHOLDS = {"transfer": 0.5, "frechet": 1.0, "cosine": 0.3}


def _split(exp: train.Experiment, requested: str | None) -> str:
  if requested:
    return requested
  if all("val" in task.splits for task in exp.stream.tasks):
    return "val"
  return exp.config.data.eval_split


def _fit(exp: train.Experiment, task_ids, steps: int, seed_offset: int):
  """A fresh state trained ``steps`` steps on ``task_ids`` together."""
  config = exp.config
  state = train.initial_state(exp)
  train_step = step_lib.make_train_step(
      model=exp.model, frontend=exp.frontend, strategy=exp.strategy,
      tx=exp.tx, mesh=exp.mesh, augment=exp.augment.train)
  dataset = loader.train_dataset(
      [exp.stream.tasks[t].split("train") for t in task_ids],
      batch_size=config.data.batch_size, crop_length=exp.crop_length,
      num_steps=steps, seed=config.seed * 1009 + seed_offset,
      pad_mode=config.data.pad_mode, cache_bytes=config.data.cache_mb << 20)
  for batch in loader.train_iterator(dataset):
    batch = {key: value for key, value in batch.items() if key != "utt_id"}
    state, _ = train_step(state, step_lib.put_batch(batch, exp.mesh))
  return state


def transfer_eer(exp: train.Experiment, steps: int, split: str
                 ) -> np.ndarray:
  """``EER[a, b]``: trained ``steps`` steps on task a alone, tested on b."""
  eval_step = train.make_eval_step(exp)
  num_tasks = len(exp.stream)
  eer = np.zeros((num_tasks, num_tasks))
  for a in range(num_tasks):
    state = _fit(exp, [a], steps, seed_offset=a)
    for b in range(num_tasks):
      scored = train.score_task(exp, eval_step, state, b, split)
      eer[a, b] = metrics_lib.equal_error_rate(scored["scores"],
                                               scored["labels"])
    logging.info("transfer: trained on %s: EER %s", exp.stream.tasks[a].name,
                 " ".join(f"{100 * v:.1f}" for v in eer[a]))
  return eer


def measure(exp: train.Experiment, measure_name: str, steps: int,
            split: str) -> tuple[np.ndarray, np.ndarray, dict]:
  """``(distance, similarity, extra)`` of the stream's tasks."""
  if measure_name == "transfer":
    eer = transfer_eer(exp, steps, split)
    distance, similarity = grouping.transfer_distances(eer)
    return distance, similarity, {"transfer_eer": eer.tolist()}
  if exp.config.init_from:
    state = train.initial_state(exp)  # loads config.init_from
  else:
    state = _fit(exp, list(range(len(exp.stream))), steps, seed_offset=0)
  embeddings, labels = grouping.task_embeddings(
      exp, state.variables, [task.split(split) for task in exp.stream.tasks],
      split)
  if measure_name == "frechet":
    distance, similarity = grouping.frechet_distances(embeddings, labels)
  else:
    distance, similarity = grouping.cosine_distances(embeddings, labels)
  return distance, similarity, {}


def _csv(matrix: np.ndarray, names) -> str:
  lines = ["task," + ",".join(names)]
  lines += [f"{name}," + ",".join(f"{v:.6f}" for v in row)
            for name, row in zip(names, matrix)]
  return "\n".join(lines) + "\n"


def run(config: ml_collections.ConfigDict, workdir: str, measure_name: str,
        threshold: float | None, steps: int, split: str | None) -> dict:
  """Measures, clusters and writes the outputs; returns ``groups.json``."""
  if steps < 1:
    raise ConfigError(f"--steps={steps} must be >= 1.")
  threshold = (DEFAULT_THRESHOLDS[measure_name] if threshold is None
               else threshold)
  config_schema.validate(config, num_devices=jax.device_count())
  exp = train.build_experiment(config)
  if len(exp.stream) < 2:
    raise ConfigError(f"The stream {exp.stream.name!r} has one task: "
                      "nothing to group.")
  split = _split(exp, split)
  distance, similarity, extra = measure(exp, measure_name, steps, split)
  groups = grouping.cluster(distance, threshold)
  names = exp.stream.task_names
  os.makedirs(workdir, exist_ok=True)
  atomic_write_text(os.path.join(workdir, "similarity.csv"),
                    _csv(similarity, names))
  atomic_write_text(os.path.join(workdir, "distance.csv"),
                    _csv(distance, names))
  plots.plot_similarity(similarity, names,
                        os.path.join(workdir, "similarity.png"),
                        measure_name, groups)
  if len(names) > 1:
    plots.plot_dendrogram(grouping.linkage(distance), names,
                          os.path.join(workdir, "dendrogram.png"), threshold,
                          measure_name)
  named = [[names[t] for t in members] for members in groups]
  stream_block = {"name": "grouped", "base": config.data.stream.to_dict(),
                  "groups": named}
  output = {"measure": measure_name, "threshold": threshold, "split": split,
            "steps": steps, "tasks": names, "groups": named,
            "stream": stream_block, **extra}
  atomic_write_text(os.path.join(workdir, "groups.json"),
                    json.dumps(output, indent=2) + "\n")
  return output


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None or not _WORKDIR.value:
    raise app.UsageError("--config and --workdir are required.")
  config = _CONFIG.value
  if _MODEL_FROM.value:
    config.init_from = _MODEL_FROM.value
  try:
    output = run(config, _WORKDIR.value, _MEASURE.value, _THRESHOLD.value,
                 _STEPS.value, _SPLIT.value)
  except (ConfigError, FileNotFoundError, ValueError) as error:
    print(f"cljax.group: {error}", file=sys.stderr)
    sys.exit(2)
  print(f"{len(output['tasks'])} tasks -> {len(output['groups'])} groups "
        f"({output['measure']}, threshold {output['threshold']:g}):")
  for group in output["groups"]:
    print("  " + " + ".join(group))
  print(f"Wrote {_WORKDIR.value}/groups.json (the grouped stream block), "
        "similarity.csv/.png, distance.csv, dendrogram.png.")


if __name__ == "__main__":
  app.run(main)
