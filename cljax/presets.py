"""Shared settings of the audio and image configs, per variant.

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
* ``gpu`` — the same benchmark with a wider model, more epochs and 4-s
  crops for an accelerator: it reads its own copy of the benchmark stored
  as 4.5-s clips (``config.data.stream.clip_seconds = 4.5``; built on first
  use, about 2.5 min on 2 cores, once).

Where the benchmark is neither cached nor buildable (packages missing) the
stream falls back to the synthetic one, loudly (``speech_stream``).

Image recipes (``image_experiment``; configs/fft_resnet_limited.py,
cored_image.py, kd_ewc_image.py) have two sizes: the full one on a user's
corpus (256-px images, the seeds' backbones) and ``small`` on the embedded
image benchmark (``image_benchmark``: 64-px crops of photographs vs. the
``IMAGE_FAMILIES`` generators, built offline at set-up) with CPU-sized
backbones. ``parse_words`` reads their comma-separated variants.
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
  # 20-24 % EER after its own training (builder 1.5.0, seeds 0-2); every
  # other family reaches 0-10 %.
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
    # The 4-s training crops need longer stored clips than the
    # default 2.5 s; a non-default clip length builds its own copy.
    config.data.stream.clip_seconds = 4.5
    config.data.crop_seconds = 4.0
    config.data.eval_seconds = 4.0
    config.data.batch_size = 64
    config.data.eval_batch_size = 256
    config.model.channels = (128, 128, 128)
    config.train.epochs_per_task = 30.0
    config.train.log_every = 50
    config.train.checkpoint_every = 500
  return config


def parse_words(variant: str | None, choices: dict[str, tuple[str, ...]],
                modifiers: tuple[str, ...] = ()
                ) -> tuple[dict[str, str], set[str]]:
  """A comma-separated variant as one word per choice group + modifiers.

  ``choices`` maps a group (e.g. ``"method"``) to its words, the first the
  default. ``parse_words("gdumb,small", {"method": ("icarl", "gdumb")},
  ("small",))`` is ``({"method": "gdumb"}, {"small"})``. Unknown words, or
  two words of one group, raise ValueError listing every choice.
  """
  words = [w.strip() for w in (variant or "").split(",") if w.strip()]
  picked: dict[str, str] = {}
  unknown = []
  for word in words:
    group = next((g for g, options in choices.items() if word in options),
                 None)
    if group is None:
      if word not in modifiers:
        unknown.append(word)
    elif group in picked and picked[group] != word:
      unknown.append(word)
    else:
      picked[group] = word
  if unknown:
    listed = "; ".join(f"{group}: {', '.join(options)}"
                       for group, options in choices.items())
    raise ValueError(
        f"Unknown or conflicting config variant word(s) {unknown} in "
        f"{variant!r}. Give at most one word per group ({listed}) and any "
        f"of the modifiers {', '.join(modifiers) or '(none)'}, comma-"
        "separated (e.g. --config=FILE:WORD,small).")
  chosen = {group: picked.get(group, options[0])
            for group, options in choices.items()}
  return chosen, {w for w in words if w in modifiers}


# The embedded image benchmark's generator families, one task each, in the
# fixed task order of the image recipes' ``small`` variants
# (cljax/data/builders/_image_generators.py): bicubic x2 up-sampling, JPEG
# q20-40, a random conv + depth-to-space decoder, an autoencoder trained
# during the build, bilinear x4, nearest x2.
IMAGE_FAMILIES = ("bicubic_x2", "jpeg_q30", "decoder_d2s", "autoencoder",
                  "bilinear_x4", "nearest_x2")


def image_experiment(small: bool, *, stream: dict[str, object],
                     frontend: dict[str, object], model: dict[str, object],
                     ) -> ml_collections.ConfigDict:
  """The base config of an image recipe.

  Args:
    small: run on the embedded image benchmark (64x64 crops of photographs
      vs. generator families, built offline; ``image_benchmark``) with a
      CPU-sized model; else on ``stream``, the user's corpus.
    stream: the full variant's ``config.data.stream`` block.
    frontend: ``config.frontend`` for the full variant's 256-px images
      (``crop`` 224); the small variant scales a crop to its 64-px images.
    model: ``config.model`` at the full size; the small variant narrows it.

  Every image record is one whole image (``crop_seconds = eval_seconds =
  1``: an image stream's sample rate is its S*S*3 values per image).
  """
  config = config_schema.base_config()
  config.data.crop_seconds = 1.0
  config.data.eval_seconds = 1.0
  config.frontend = ml_collections.ConfigDict(dict(frontend))
  config.model = ml_collections.ConfigDict(dict(model))
  config.eval.metrics = ("auc", "accuracy", "eer")
  config.optimizer.name = "adam"
  config.train.log_every = 20
  if not small:
    config.data.stream = ml_collections.ConfigDict(dict(stream))
    config.data.batch_size = 32
    config.data.eval_batch_size = 128
    config.data.worker_count = 4
    config.optimizer.learning_rate = 1e-4
    config.train.epochs_per_task = 10.0
    config.train.log_every = 50
    config.train.checkpoint_every = 1000
    return config
  config.data.stream = ml_collections.ConfigDict(dict(
      name="image_benchmark", families=IMAGE_FAMILIES, data_dir="", seed=0))
  config.data.batch_size = 32
  config.data.eval_batch_size = 128
  if config.frontend.get("crop"):
    config.frontend.crop = 56   # seed 001's 224 of 256, at 64 px
  name = str(model["name"])
  if name.startswith("resnet"):
    config.model.width = 16
  elif name == "xception":
    config.model.width_multiplier = 0.25
    config.model.num_middle_blocks = 2
  elif name == "efficientnet_b0":
    config.model.width_multiplier = 0.5
    config.model.depth_multiplier = 0.5
  config.optimizer.learning_rate = 1e-3
  config.train.epochs_per_task = 4.0
  config.train.checkpoint_every = 500
  return config
