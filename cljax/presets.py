"""Shared settings of the audio configs, per variant.

Each config in ``configs/`` is one experiment (one strategy); they share the
stream, front end, model and schedule of a variant, which live here so that
a comparison across methods changes nothing but the method:

* ``default`` — the CPU-sized run ``launch/run.sh`` performs, on the
  embedded real-speech benchmark (``speech_benchmark``: genuine Asterisk
  prompts vs. 7 generator families, one task each, in ``SPEECH_FAMILIES``
  order; built on first use, see ``cljax/data/speech_stream.py``): 2-s crops
  of the stored 2.5-s clips, the first 2 s at test time.
* ``small`` — a smoke-sized run for tests and quick checks (seconds). It
  stays on the procedural *synthetic* stream so that tests need neither the
  Debian packages nor the benchmark build; the output announces it.
* ``hmconformer``, ``lcnn``, ``aasist``, ``aasist_l`` — the default run
  with that anti-spoofing backbone and its front end (``set_backbone``);
  slow on a CPU (HM-Conformer about 40 min a run on 2 cores).
* ``gpu`` — the same benchmark with a wider model and more epochs for an
  accelerator (the 2.5-s stored clips bound the crop; a longer crop needs
  ``config.data.stream.clip_seconds``, which builds its own copy).

Where the benchmark is neither cached nor buildable (packages missing) the
stream falls back to the synthetic one, loudly (``speech_stream``).
"""

from __future__ import annotations

import ml_collections

from cljax import config_schema

VARIANTS = ("default", "small", "gpu", "hmconformer", "lcnn", "aasist",
            "aasist_l")

# Anti-spoofing backbones (issue: "the same backbones run in every continual
# config"): their front end and model blocks, at the official sizes.
BACKBONES = ("cnn1d", "hmconformer", "lcnn", "aasist", "aasist_l")

# The fixed task order of the speech benchmark (the builder's default
# families): WORLD, espeak-ng, Codec2 700C, festival kal (diphone), LPC,
# flite slt, festival HTS slt.
SPEECH_FAMILIES = ("world", "espeak", "codec2_700c", "festival_kal", "lpc",
                   "flite_slt", "festival_hts")


def check_variant(variant: str | None, variants: tuple[str, ...]) -> str:
  """``variant`` (None: ``"default"``), or ValueError listing ``variants``."""
  variant = variant or "default"
  if variant not in variants:
    raise ValueError(f"Unknown config variant {variant!r}; choose one of "
                     f"{', '.join(variants)} (as --config=FILE:VARIANT).")
  return variant


def set_backbone(config: ml_collections.ConfigDict, backbone: str) -> None:
  """Sets ``config.frontend`` and ``config.model`` for a named backbone.

  * ``cnn1d``: the small CPU CNN over 64-band log-mel.
  * ``hmconformer``: HM-Conformer over its LFCC (40 filters + energy, deltas:
    120 features), OC-softmax heads, the training frame mask (20 frames).
  * ``lcnn``: LFCC-LCNN over the baseline's LFCC (20 filters over 0-4 kHz,
    n_fft 1024, deltas: 60 features).
  * ``aasist`` / ``aasist_l``: raw waveform.
  """
  if backbone not in BACKBONES:
    raise ValueError(f"Unknown backbone {backbone!r}; choose one of "
                     f"{', '.join(BACKBONES)}.")
  if backbone == "cnn1d":
    config.frontend = ml_collections.ConfigDict(dict(name="logmel",
                                                     n_mels=64))
    config.model = ml_collections.ConfigDict(dict(name="cnn1d"))
  elif backbone == "hmconformer":
    config.frontend = ml_collections.ConfigDict(dict(name="lfcc"))
    config.model = ml_collections.ConfigDict(dict(
        name="hm_conformer", frame_mask_max=20))
  elif backbone == "lcnn":
    config.frontend = ml_collections.ConfigDict(dict(
        name="lfcc", n_fft=1024, n_filters=20, max_freq=0.5))
    config.model = ml_collections.ConfigDict(dict(name="lcnn"))
  else:
    config.frontend = ml_collections.ConfigDict(dict(name="raw"))
    config.model = ml_collections.ConfigDict(dict(name=backbone))


def audio_experiment(variant: str | None) -> ml_collections.ConfigDict:
  """The base config of an audio experiment for ``variant``."""
  variant = check_variant(variant, VARIANTS)
  config = config_schema.base_config()
  # data_dir "" = $CLJAX_DATA_DIR or the user's cache folder.
  config.data.stream = ml_collections.ConfigDict(dict(
      name="speech_benchmark", families=SPEECH_FAMILIES, data_dir="",
      seed=0))
  config.data.batch_size = 32
  config.data.eval_batch_size = 64
  config.data.crop_seconds = 2.0
  config.data.eval_seconds = 2.0
  set_backbone(config, "cnn1d")
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  # 16 epochs (320 steps of 32 per task): WORLD, the hardest family, reaches
  # 26 % EER after its own training (builder 1.2.0); every other family
  # reaches 0-12 %.
  config.train.epochs_per_task = 16.0
  config.train.log_every = 10
  config.train.checkpoint_every = 500

  if variant == "small":
    config.data.stream = ml_collections.ConfigDict(dict(
        name="synthetic_audio", seed=0))
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
  elif variant in BACKBONES:
    # The default benchmark and schedule with an anti-spoofing backbone.
    # On a 2-core CPU these take 30-60+ minutes a run: meant for a GPU.
    set_backbone(config, variant)
  elif variant == "gpu":
    config.data.batch_size = 64
    config.data.eval_batch_size = 256
    config.model.channels = (128, 128, 128)
    config.train.epochs_per_task = 30.0
    config.train.log_every = 50
    config.train.checkpoint_every = 500
  return config
