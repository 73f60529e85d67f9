r"""HM-Conformer (ICASSP'24) trained as its paper does, on a user's ASVspoof.

Command (your copies of ASVspoof 2019 LA, 2021 DF and In-the-Wild; the
layouts are in the README and REFERENCE.md)::

  python -m cljax.main --config=configs/hmconformer_asvspoof.py \
      --config.data.stream.la19_dir=/data/LA --workdir=runs/hmconformer
  # then score the test corpora with the trained model:
  python -m cljax.score --workdir=runs/hmconformer \
      --corpus=asvspoof2021_df --manual_dir=/data/ASVspoof2021_DF_eval_root
  python -m cljax.score --workdir=runs/hmconformer \
      --corpus=in_the_wild --manual_dir=/data/release_in_the_wild

Variants (``--config=configs/hmconformer_asvspoof.py:VARIANT``), a backbone
and optional comma-separated modifiers:

* ``hmconformer`` (default), ``aasist``, ``aasist_l``, ``lcnn``: the model,
  its front end and the optimiser settings of its official recipe.
* ``,full``: score whole utterances (4-s windows, mean of the window scores)
  instead of the first 4 s.
* ``,faithful``: the official code's test-time quirks (coloured noise and
  the frame mask stay on when scoring); off by default.
* ``,small``: a CPU smoke run (tiny model, 0.5-s crops, 4 steps, no codec
  copies) for fixtures and checks of the machinery, e.g. ``:lcnn,small``.

The recipe (seed 004, talkingnow/HM-Conformer ``arguments.py`` and
``data_prepare.py``; REFERENCE.md): train on ASVspoof 2019 LA ``train``,
test on ``dev`` (the task's test split) after training; every training
utterance also through ffmpeg as mp3, m4a, ogg, aac, wma and wav and back,
then x0.9 / x1.1 speed copies of every version (21 versions, built once and
cached: ``config.data.codec_augment`` / ``speed_perturb``; needs ffmpeg);
online coloured noise (SNR 10-40 dB, decay -2..2, every clip) and a
batch-shared frame mask of up to 19 frames; LFCC 120; random 4-s crops,
wrap-padded; the first 4 s at test. Adam, lr 1e-6 (the official cosine
restarts run between 1e-6 and 1e-6: constant), L2 1e-4 (torch's coupled
weight decay), global batch 240 split over all local devices (and hosts:
``launch/``), 200 epochs. The five OC-softmax heads train with weights 0.4,
0.3, 0.2, 0.1, 0.1; the score is the MCA head's (as genuine log-odds:
higher = bona fide; the official code reports 1 - cos).

Expected result: the paper reports 15.71 % EER on ASVspoof 2021 DF eval
(533,928 trials, the ``eval`` subset), with model selection on DF21 eval
itself (an official quirk cljax does not copy: pick a checkpoint on dev).
Not reproduced here: this machine (2-core CPU, no GPU) has no ASVspoof copy,
and one epoch of the 21x-augmented LA train (25,380 x 21 clips) would take
days on it. The official run used two GPUs; on one H100 expect a few
minutes an epoch (see the README's speed table for the step rate).
The ``:small`` variants train a fixture corpus in about 20 s each
(tests/test_asvspoof_recipe.py).

The AASIST variants use its official ``AASIST.conf`` optimiser (Adam, lr
1e-4 with cosine decay, weight decay 1e-4, batch 24, 100 epochs, 64,600-
sample crops); LFCC-LCNN the ASVspoof 2021 baseline's (Adam, lr 3e-4, batch
64, 100 epochs). cljax trains all three with 2-class softmax heads (AASIST's
weighted cross-entropy [0.1, 0.9] is not reproduced).
"""

import ml_collections

from cljax import config_schema
from cljax import presets
from cljax.data import codec_augment

BACKBONES = ("hmconformer", "aasist", "aasist_l", "lcnn")
MODIFIERS = ("small", "full", "faithful")


def get_config(variant=None):
  choice, modifiers = presets.parse_words(variant, {"backbone": BACKBONES},
                                          MODIFIERS)
  backbone = choice["backbone"]
  config = config_schema.base_config()
  config.data.stream = ml_collections.ConfigDict(dict(
      name="corpus_incremental", corpora=("asvspoof2019_la",),
      la19_dir="", la19_test_split="dev", data_dir=""))
  config.data.crop_seconds = 4.0
  config.data.eval_seconds = 4.0
  config.data.pad_mode = "wrap"
  config.data.codec_augment = codec_augment.RECIPE_CODECS
  config.data.speed_perturb = (0.9, 1.1)
  config.data.worker_count = 4
  config.data.eval_batch_size = 240
  presets.set_backbone(config, backbone)
  config.optimizer.name = "adam"
  if backbone == "hmconformer":
    config.augment = ml_collections.ConfigDict(dict(
        name="coloured_noise", min_snr_db=10.0, max_snr_db=40.0,
        min_f_decay=-2.0, max_f_decay=2.0, p=1.0))
    config.data.batch_size = 240
    config.optimizer.learning_rate = 1e-6
    config.optimizer.weight_decay = 1e-4
    config.train.epochs_per_task = 200.0
  elif backbone in ("aasist", "aasist_l"):
    config.data.crop_seconds = 64600 / 16000
    config.data.eval_seconds = 64600 / 16000
    config.data.batch_size = 24
    config.optimizer.learning_rate = 1e-4
    config.optimizer.weight_decay = 1e-4
    config.optimizer.schedule = "cosine"
    config.train.epochs_per_task = 100.0
  else:  # lcnn
    config.data.batch_size = 64
    config.optimizer.learning_rate = 3e-4
    config.train.epochs_per_task = 100.0
  config.train.log_every = 50
  config.train.checkpoint_every = 1000
  config.train.checkpoints_to_keep = 5
  config.eval.baseline = False

  if "full" in modifiers:
    config.data.eval_mode = "full"
  if "faithful" in modifiers:
    if backbone == "hmconformer":
      config.augment.at_test = True
      config.model.faithful = True
  if "small" in modifiers:
    config.data.codec_augment = ()
    config.data.speed_perturb = ()
    config.data.worker_count = 0
    config.data.batch_size = 4
    config.data.eval_batch_size = 8
    config.data.crop_seconds = 0.5
    config.data.eval_seconds = 0.5
    config.train.epochs_per_task = 0.0
    config.train.steps_per_task = 4
    config.train.log_every = 2
    config.train.checkpoint_every = 4
    config.optimizer.learning_rate = 1e-3
    if backbone == "hmconformer":
      config.model.update(dict(dim=32, num_heads=4, ffn_dim=64, head_dim=16,
                               num_blocks=4))
    elif backbone in ("aasist", "aasist_l"):
      config.model.update(dict(first_conv=64))
  config.lock()
  return config
