r"""The deployment pipeline's config: how candidates train and what passes.

Command (once per registry; see ``cljax/deploy/pipeline.py``)::

  python -m cljax.pipeline init --registry=registry \
      --config=configs/pipeline_audio.py          # default
  python -m cljax.pipeline init --registry=registry \
      --config=configs/pipeline_audio.py:small    # seconds a dataset (tests)

Blocks:

* ``experiment``: an ordinary cljax experiment config (front end, model,
  strategy, optimizer, schedule) whose ``data.stream`` the pipeline fills in
  for each candidate (an ``audio_folder`` stream over a manifest of the
  known datasets plus the new one). Default: CNN1D over log-mel, EWC
  (separate penalties, strength 30, ``configs/ewc_audio.py``'s choice at
  speech-benchmark builder 1.3.0 (it is 3 since 1.4.0), the Fisher
  measured on the *train* split because a dropped-in dataset need not have
  a ``dev`` folder), 16 epochs per task as the audio configs.
* ``intake``: how a dataset is read and checked (sample rate, resampling,
  channels, bad files, the fewest files per class and split).
* ``grouping``: how a new dataset is compared with the known tasks:
  ``cosine`` (1 - cosine of the fake-class mean embeddings, the production
  model's) or ``frechet`` (divided by its mean over all the pairs compared,
  as ``cljax.grouping`` does: with a single known task it is always 1, so
  prefer cosine for short histories); at or below ``threshold`` it merges
  into the nearest task's group. Cosine distances measured here: the
  small variant on the tests' sounds, another sample of a known generator
  0.0002-0.008, other generators 0.04-0.34; the default variant on the
  speech benchmark (families as datasets, production trained on espeak),
  world / lpc / flite_slt / codec2_700c 0.81-0.90 from espeak. Tune it on
  your data (``status`` and each ``job.json`` show the distances).
* ``gate``: ``metric`` (one of ``experiment.eval.metrics``; EER by
  default) in the metric's own units (fractions: 0.10 = 10 %). The new task
  must reach ``new_task_max`` (<= for EER, >= for a higher-is-better metric)
  and no known task may get worse than the production version by more than
  ``max_degradation`` (0.05 = 5 EER points).

Expected: the small variant takes a few seconds a dataset of a few dozen
half-second clips on a 2-core CPU (tests/deploy/test_pipeline.py: the whole
loop, six candidates, in about 40 s). The default variant on families of
the embedded speech benchmark (331 training clips a class): about 25 s a
dataset on a shared 2-core CPU; espeak promoted (EER 1.2 %), then lpc
rejected (espeak +14.5 points), flite_slt promoted (1.8 %, espeak 3.0 %).
Its time grows with the dataset (16 epochs of the new task).
"""

import ml_collections

from cljax import presets

VARIANTS = ("default", "small")


def get_config(variant=None):
  variant = presets.check_variant(variant, VARIANTS)
  experiment = presets.audio_experiment(
      "small" if variant == "small" else "default")
  # Filled per candidate by the pipeline (cljax.deploy.pipeline).
  experiment.data.stream = ml_collections.ConfigDict({"name": "audio_folder"})
  experiment.strategy = ml_collections.ConfigDict(dict(
      name="ewc", strength=30.0, mode="separate", decay=1.0,
      fisher="empirical", fisher_split="train", fisher_tasks="current",
      apply_to="all"))
  # The production model is the starting point; an untrained row would only
  # describe the first version.
  experiment.eval.baseline = False
  experiment.output.progress = "log"

  config = ml_collections.ConfigDict()
  config.config_name = ("pipeline_audio-small" if variant == "small"
                        else "pipeline_audio")
  config.experiment = experiment
  config.intake = ml_collections.ConfigDict(dict(
      sample_rate=16000, resample="warn", channels="error",
      on_bad_file="error", min_per_class=2))
  config.grouping = ml_collections.ConfigDict(dict(
      measure="cosine", threshold=0.02, split="test", max_per_class=64))
  config.gate = ml_collections.ConfigDict(dict(
      metric="eer", new_task_max=0.15, max_degradation=0.05))

  if variant == "small":
    experiment.data.batch_size = 8
    experiment.data.eval_batch_size = 16
    experiment.train.steps_per_task = 12
    experiment.train.log_every = 4
    experiment.train.checkpoint_every = 4
    experiment.output.plots = False
    experiment.output.progress = "none"
    config.gate.new_task_max = 0.25
    config.gate.max_degradation = 0.5
  config.lock()
  return config
