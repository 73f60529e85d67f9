"""Shared settings of the audio configs, per variant.

Each config in ``configs/`` is one experiment (one strategy); they share the
stream, front end, model and schedule of a variant, which live here so that
a comparison across methods changes nothing but the method:

* ``default`` — the CPU-sized run ``launch/run.sh`` performs.
* ``small`` — a smoke-sized run for tests and quick checks (seconds).
* ``gpu`` — longer crops and more steps for an accelerator.
"""

from __future__ import annotations

import ml_collections

from cljax import config_schema

VARIANTS = ("default", "small", "gpu")


def audio_experiment(variant: str | None) -> ml_collections.ConfigDict:
  """The base config of an audio experiment for ``variant``."""
  variant = variant or "default"
  if variant not in VARIANTS:
    raise ValueError(f"Unknown config variant {variant!r}; choose one of "
                     f"{', '.join(VARIANTS)} (as --config=FILE:VARIANT).")
  config = config_schema.base_config()
  # Until the embedded speech benchmark lands, every audio config runs on
  # the procedural stream (announced as synthetic in the output).
  config.data.stream = ml_collections.ConfigDict(dict(
      name="synthetic_audio", num_tasks=4, train_per_class=256,
      test_per_class=128, val_per_class=16, seconds=1.0, seed=0))
  config.data.batch_size = 32
  config.data.eval_batch_size = 64
  config.data.crop_seconds = 1.0
  config.data.eval_seconds = 1.0
  config.frontend = ml_collections.ConfigDict(dict(name="logmel", n_mels=64))
  config.model = ml_collections.ConfigDict(dict(name="cnn1d"))
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.train.epochs_per_task = 8.0
  config.train.log_every = 10
  config.train.checkpoint_every = 500

  if variant == "small":
    config.data.stream.num_tasks = 3
    config.data.stream.train_per_class = 32
    config.data.stream.test_per_class = 16
    config.data.stream.val_per_class = 8
    config.data.stream.seconds = 0.5
    config.data.batch_size = 16
    config.data.eval_batch_size = 32
    config.data.crop_seconds = 0.5
    config.data.eval_seconds = 0.5
    config.model.channels = (16, 16, 16)
    config.model.embed_dim = 32
    config.train.epochs_per_task = 0.0
    config.train.steps_per_task = 12
    config.train.log_every = 4
    config.train.checkpoint_every = 8
  elif variant == "gpu":
    config.data.stream.train_per_class = 512
    config.data.stream.test_per_class = 256
    config.data.stream.seconds = 2.0
    config.data.batch_size = 128
    config.data.eval_batch_size = 256
    config.data.crop_seconds = 2.0
    config.data.eval_seconds = 2.0
    config.model.channels = (128, 128, 128)
    config.train.epochs_per_task = 20.0
    config.train.log_every = 50
    config.train.checkpoint_every = 500
  return config
