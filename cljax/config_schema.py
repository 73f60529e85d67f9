"""The experiment config: every field, its default, and its validation.

A config file in ``configs/`` starts from ``base_config()`` and overrides
fields; the returned ConfigDict is locked, so a misspelt field fails with the
list of fields that exist. Component blocks (``data.stream``, ``frontend``,
``augment``, ``model``, ``strategy``) hold a ``name`` plus that component's
own fields, which are checked against the component's signature when it is built.
``validate`` checks values before anything is built or compiled.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

import ml_collections

from cljax.registry import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "momentum")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
EVAL_MODES = ("window", "full")
PROGRESS_MODES = ("auto", "bar", "log", "none")
PAD_MODES = ("wrap", "zero")


def base_config() -> ml_collections.ConfigDict:
  """Every top-level field with its default. Config files override these."""
  config = ml_collections.ConfigDict()
  # Label of the run in reports; empty: from the config file name + variant.
  config.config_name = ""
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  # The stream of tasks: ``name`` picks a builder in cljax.data.STREAMS.
  config.data.stream = ml_collections.ConfigDict({"name": "synthetic_audio"})
  config.data.batch_size = 32
  config.data.eval_batch_size = 64
  config.data.crop_seconds = 1.0        # random training crop
  config.data.eval_seconds = 1.0        # first N seconds at test time
  config.data.pad_mode = "wrap"         # how short utterances are padded
  config.data.eval_split = "test"
  # A groups.json from `python -m cljax.group`: train the stream's tasks in
  # those groups (each group one task). Empty: the stream as it is.
  config.data.groups = ""
  config.data.worker_count = 0          # grain worker processes (0: in-process)
  config.data.read_threads = 0          # prefetch threads (0: on demand)
  # The loader's in-memory cache of decoded records, per process (MiB; 0:
  # off). Later epochs of a task read from it instead of array_record.
  config.data.cache_mb = 1024
  # Offline augmentation of the training splits, as the HM-Conformer recipe
  # prepares its data: every utterance also through these codecs and back
  # (cljax.data.codec_augment.CODECS; needs ffmpeg), and speed copies of
  # every version (e.g. (0.9, 1.1)). Built once and cached on disk.
  config.data.codec_augment = ()
  config.data.speed_perturb = ()
  config.data.augment_cache_dir = ""    # "": <data dir>/codec_augment
  # "window": score the first eval_seconds of each utterance; "full": slide
  # eval_seconds windows (hop eval_hop_seconds, 0 = no overlap) over the
  # whole utterance and average the window scores.
  config.data.eval_mode = "window"
  config.data.eval_hop_seconds = 0.0

  config.frontend = ml_collections.ConfigDict({"name": "logmel"})
  # Waveform augmentation inside the train step (cljax.features.augment):
  # "none" or "coloured_noise" (HM-Conformer's online noise).
  config.augment = ml_collections.ConfigDict({"name": "none"})
  config.model = ml_collections.ConfigDict({"name": "cnn1d"})
  config.strategy = ml_collections.ConfigDict({"name": "finetune"})

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0
  config.optimizer.momentum = 0.9       # for sgd/momentum
  config.optimizer.grad_clip_norm = 0.0  # 0: no clipping
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  # Re-initialise the optimizer's moments at each task (strategy state kept).
  config.optimizer.reset_per_task = False

  config.train = ml_collections.ConfigDict()
  config.train.epochs_per_task = 1.0    # used when steps_per_task == 0
  config.train.steps_per_task = 0
  config.train.log_every = 20           # steps between metric fetches
  config.train.checkpoint_every = 500   # steps between mid-task checkpoints
  config.train.checkpoints_to_keep = 2  # periodic ones; task ends are all kept

  config.eval = ml_collections.ConfigDict()
  config.eval.metrics = ("eer", "auc", "accuracy")
  # Evaluate the untrained model too (the b_j of forward transfer).
  config.eval.baseline = True

  config.output = ml_collections.ConfigDict()
  config.output.plots = True
  config.output.tensorboard = False
  config.output.wandb = False
  config.output.wandb_project = "cljax"
  config.output.wandb_mode = "offline"
  config.output.progress = "auto"       # bar on a terminal, log lines otherwise

  # Start from another run's saved model: its workdir (latest checkpoint) or
  # a checkpoint folder. Empty: random initialisation.
  config.init_from = ""
  return config


def _field(config: ml_collections.ConfigDict, path: str) -> Any:
  value = config
  for part in path.split("."):
    value = value[part]
  return value


def _require(condition: bool, path: str, value: Any, expected: str) -> None:
  if not condition:
    raise ConfigError(f"config.{path}={value!r}: expected {expected}.")


def validate(config: ml_collections.ConfigDict, *, num_devices: int = 1) -> None:
  """Checks field values; raises ConfigError naming the field and the fix.

  Component blocks are checked for their ``name`` here and for their fields
  when they are built (against the factory's signature).
  """
  for block in ("data.stream", "frontend", "augment", "model", "strategy"):
    value = _field(config, block)
    _require(isinstance(value, ml_collections.ConfigDict) and "name" in value,
             block, value, "a block with a 'name' field")

  def positive_int(path):
    value = _field(config, path)
    _require(isinstance(value, int) and not isinstance(value, bool)
             and value > 0, path, value, "a positive integer")

  def non_negative(path, kind=(int, float)):
    value = _field(config, path)
    _require(isinstance(value, kind) and not isinstance(value, bool)
             and math.isfinite(value) and value >= 0, path, value,
             "a finite number >= 0")

  def one_of(path, choices):
    value = _field(config, path)
    _require(value in choices, path, value, f"one of {list(choices)}")

  _require(isinstance(config.seed, int) and config.seed >= 0, "seed",
           config.seed, "an integer >= 0")
  for path in ("data.batch_size", "data.eval_batch_size", "train.log_every",
               "train.checkpoint_every", "train.checkpoints_to_keep"):
    positive_int(path)
  for path in ("data.batch_size", "data.eval_batch_size"):
    value = _field(config, path)
    _require(value % num_devices == 0, path, value,
             f"a multiple of the {num_devices} devices in the mesh (the "
             "batch is split evenly across them)")
  for path in ("data.crop_seconds", "data.eval_seconds"):
    value = _field(config, path)
    _require(isinstance(value, (int, float)) and value > 0, path, value,
             "a duration in seconds > 0")
  one_of("data.pad_mode", PAD_MODES)
  non_negative("data.worker_count", int)
  non_negative("data.read_threads", int)
  non_negative("data.cache_mb", int)
  non_negative("data.eval_hop_seconds")
  one_of("data.eval_mode", EVAL_MODES)
  from cljax.data import codec_augment  # Late import: keeps this module light.
  for codec in tuple(config.data.codec_augment):
    _require(codec in codec_augment.CODECS, "data.codec_augment", codec,
             f"codec names from {sorted(codec_augment.CODECS)}")
  for factor in tuple(config.data.speed_perturb):
    _require(isinstance(factor, (int, float)) and factor > 0 and factor != 1,
             "data.speed_perturb", factor, "speed factors > 0 and != 1")

  one_of("optimizer.name", OPTIMIZERS)
  one_of("optimizer.schedule", SCHEDULES)
  value = config.optimizer.learning_rate
  _require(isinstance(value, (int, float)) and math.isfinite(value)
           and value > 0, "optimizer.learning_rate", value, "a number > 0")
  for path in ("optimizer.weight_decay", "optimizer.momentum",
               "optimizer.grad_clip_norm"):
    non_negative(path)
  non_negative("optimizer.warmup_steps", int)

  non_negative("train.steps_per_task", int)
  non_negative("train.epochs_per_task")
  _require(config.train.steps_per_task > 0 or config.train.epochs_per_task > 0,
           "train.epochs_per_task", config.train.epochs_per_task,
           "> 0 when train.steps_per_task is 0 (set one of them)")

  from cljax import metrics  # Late import: metrics imports numpy/scipy only.
  metric_names = tuple(config.eval.metrics)
  _require(len(metric_names) > 0, "eval.metrics", metric_names,
           "at least one metric")
  for name in metric_names:
    _require(name in metrics.METRICS, "eval.metrics", name,
             f"metric names from {sorted(metrics.METRICS)}")
  one_of("output.progress", PROGRESS_MODES)
  one_of("output.wandb_mode", ("offline", "online", "disabled"))


def from_saved(saved: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A resolved config saved as JSON (a run's ``config.json``), over
  ``base_config()``: component blocks (with a ``name``) are taken whole,
  lists become tuples (the config files' type)."""
  config = base_config()
  config.update_from_flattened_dict(_flatten_saved(saved, config))
  return config


def load_saved(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run saved in its workdir (``config.json``)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: --workdir must be a run "
                            "folder written by cljax.main.")
  with open(path, encoding="utf-8") as f:
    return from_saved(json.load(f))


def _flatten_saved(tree, config, prefix=""):
  flat = {}
  for key, value in tree.items():
    target = config.get(key) if config is not None else None
    if isinstance(value, dict) and isinstance(
        target, ml_collections.ConfigDict) and "name" not in value:
      flat.update(_flatten_saved(value, target, f"{prefix}{key}."))
    elif isinstance(value, dict):
      flat[f"{prefix}{key}"] = ml_collections.ConfigDict(value)
    else:
      flat[f"{prefix}{key}"] = (tuple(value) if isinstance(value, list)
                                else value)
  return flat


def split_config_list(pieces: Sequence[str]) -> list[str]:
  """A ``--configs`` list (split on commas by absl), variants rejoined.

  A variant may itself hold commas (``configs/cored_image.py:small,kd``),
  so a piece that names no config file continues the previous one:
  ``["configs/a.py:small", "kd", "configs/b.py"]`` ->
  ``["configs/a.py:small,kd", "configs/b.py"]``.
  """
  specs: list[str] = []
  for piece in pieces:
    if ".py" in piece.split(":")[0] or not specs:
      specs.append(piece)
    else:
      specs[-1] += "," + piece
  return specs
