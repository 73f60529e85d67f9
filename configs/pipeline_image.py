r"""The deployment pipeline's config for image datasets (seed 003's CI/CD loop).

Commands (once per registry; see ``cljax/deploy/pipeline.py``)::

  python -m cljax.pipeline init --registry=registry_img \
      --config=configs/pipeline_image.py          # default
  python -m cljax.pipeline init --registry=registry_img \
      --config=configs/pipeline_image.py:small    # seconds a dataset (tests)
  python -m cljax.pipeline intake --registry=registry_img --dataset=DIR
  python -m cljax.pipeline run --registry=registry_img
  python -m cljax.serve --registry=registry_img   # curl -F file=@x.png ...

A dataset is a folder in seed 003's layout, ``DIR/{train,val,test}/{0_real,
1_fake}/*.png|jpg|...`` (``val`` optional). A registry is audio or image:
this config makes an image registry (its ``experiment.data.stream`` is an
``image_folders`` stream); an audio dataset taken in here is rejected, and
so is an image dataset in an audio registry (``configs/pipeline_audio.py``).

Blocks (as ``configs/pipeline_audio.py``; what differs):

* ``experiment``: an ordinary cljax image config whose ``data.stream`` the
  pipeline fills in for each candidate: an ``image_folders`` stream
  (``layout="csv"``) over a manifest of the known datasets plus the new
  one. Default: seed 001's input, the FFT log-spectrum of the whole 64-px
  RGB image (``spectrum`` front end; generators leave their fingerprints in
  the spectrum), a random left-right flip in training (``flip_crop``
  without a crop: the magnitude spectrum of a mirrored image is mirrored),
  ResNet-18 at width 16 (about 0.7 M parameters), EWC (separate penalties,
  strength 30, Fisher on the *train* split as seed 003's EWC), Adam 1e-3,
  4 epochs per task; AUC, EER and accuracy measured on every known task.
* ``intake``: every image is decoded by ``cljax.data.image_io`` at
  ``image_size`` (``resize="crop"``: shorter side to the size, centre
  square; ``"stretch"``: both sides) — unreadable, truncated and (with
  ``min_size``) too small files are named in the intake report; bad files
  reject the dataset (``on_bad_file="error"``) or are left out, reported
  (``"skip"``); at least ``min_per_class`` images per class and split.
* ``grouping``: as audio (``split`` is ``train``, ``val`` or ``test``).
  Cosine distances measured here: the default variant on the embedded
  image benchmark with production trained on ``bicubic_x2``:
  ``decoder_d2s`` 0.012 (merged into its group at the threshold 0.02),
  ``jpeg_q30`` 0.054; the small variant on the tests' pictures, white
  noise vs. blocky up-sampling 0.59. Tune it on your data (``status`` and
  each ``job.json`` show the distances).
* ``gate``: on ``auc`` (the image seeds' metric; higher is better, so the
  new task must *reach* ``new_task_max`` — the field keeps the audio name)
  and no known task may lose more than ``max_degradation`` AUC (0.05 = 5
  points) against the production version.

Expected: the small variant (32-px images, a two-stage ResNet of one basic
block a stage at width 8, 24 steps of 8 images a task) takes seconds a
dataset of a few dozen images on a 2-core CPU, most of it compiling
(tests/deploy/test_pipeline_image.py: two datasets through the loop, the
rejected ones and the service in about 30 s; both families at AUC 100 %).

The default variant on three families of the embedded image benchmark,
exported as datasets (638 training images a class each; the other
families are similar commands)::

  python -m cljax.pipeline init --registry=registry_img \
      --config=configs/pipeline_image.py
  python -m cljax.pipeline export_benchmark --family=bicubic_x2 \
      --out=inbox/bicubic_x2      # and decoder_d2s, jpeg_q30
  python -m cljax.pipeline watch --registry=registry_img --inbox=inbox --once

took 3 min 11 s for the three on a 2-core CPU shared with other jobs
(about 9 training steps/s of 32 images): bicubic_x2 promoted (AUC
94.8 %), decoder_d2s merged into its group and promoted (96.4 % on the
group), jpeg_q30 rejected (its AUC 84.5 % < 90 %, and bicubic_x2's group
96.4 -> 90.7 %, more than the 5 points allowed). Detection numbers on a
real image corpus are not measured here (none on this machine).
"""

import ml_collections

from cljax import config_schema
from cljax import presets

VARIANTS = ("default", "small")


def get_config(variant=None):
  variant = presets.check_variant(variant, VARIANTS)
  small = variant == "small"
  experiment = config_schema.base_config()
  # Filled per candidate by the pipeline (cljax.deploy.pipeline); the name
  # makes this an image registry.
  experiment.data.stream = ml_collections.ConfigDict({"name": "image_folders"})
  # One record is one whole image (the image-record contract, issue 8).
  experiment.data.crop_seconds = 1.0
  experiment.data.eval_seconds = 1.0
  experiment.data.batch_size = 32
  experiment.data.eval_batch_size = 128
  experiment.frontend = ml_collections.ConfigDict(dict(
      name="spectrum", crop=None))
  experiment.augment = ml_collections.ConfigDict(dict(
      name="flip_crop", crop=None))
  experiment.model = ml_collections.ConfigDict(dict(name="resnet18",
                                                    width=16))
  experiment.strategy = ml_collections.ConfigDict(dict(
      name="ewc", strength=30.0, mode="separate", decay=1.0,
      fisher="empirical", fisher_split="train", fisher_tasks="current",
      apply_to="all"))
  experiment.optimizer.name = "adam"
  experiment.optimizer.learning_rate = 1e-3
  experiment.train.epochs_per_task = 4.0
  experiment.train.log_every = 20
  experiment.train.checkpoint_every = 500
  experiment.eval.metrics = ("auc", "eer", "accuracy")
  # The production model is the starting point; an untrained row would only
  # describe the first version.
  experiment.eval.baseline = False
  experiment.output.progress = "log"

  config = ml_collections.ConfigDict()
  config.config_name = ("pipeline_image-small" if small
                        else "pipeline_image")
  config.experiment = experiment
  config.intake = ml_collections.ConfigDict(dict(
      image_size=64, resize="crop", min_size=0, on_bad_file="error",
      min_per_class=2))
  config.grouping = ml_collections.ConfigDict(dict(
      measure="cosine", threshold=0.02, split="test", max_per_class=64))
  config.gate = ml_collections.ConfigDict(dict(
      metric="auc", new_task_max=0.9, max_degradation=0.05))

  if small:
    config.intake.image_size = 32
    experiment.model = ml_collections.ConfigDict(dict(
        name="resnet", stage_sizes=(1, 1), width=8))
    experiment.data.batch_size = 8
    experiment.data.eval_batch_size = 32
    experiment.train.epochs_per_task = 0.0
    experiment.train.steps_per_task = 24
    experiment.train.log_every = 6
    experiment.train.checkpoint_every = 12
    experiment.output.plots = False
    experiment.output.progress = "none"
    config.gate.new_task_max = 0.75
    config.gate.max_degradation = 0.5
  config.lock()
  return config
