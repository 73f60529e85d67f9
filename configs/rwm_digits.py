r"""RWM beyond audio: a 10-class domain-incremental stream of digit images.

Command::

  python -m cljax.main --config=configs/rwm_digits.py                 # RWM
  python -m cljax.main --config=configs/rwm_digits.py:finetune        # baseline
  python -m cljax.main --config=configs/rwm_digits.py:small           # smoke
  python -m cljax.main --config=configs/rwm_digits.py:small,finetune

Data: ``cljax.data.digits`` — scikit-learn's bundled 8x8 digits (no
download), 5 tasks, task k a fixed random pixel permutation (task 0 the
original images); the same stratified train/val/test split in every task.
Each record stores the 64 pixels under ``audio`` with ``sample_rate=64``, so
``crop_seconds = eval_seconds = 1.0`` reads exactly one whole image, and the
``identity`` front end gives the MLP ``[B, 64]``. Metric: 10-class accuracy
(EER is for two-class genuine/fake).

Variants (comma-separated after the colon): ``finetune`` swaps the strategy
for fine-tuning, the lower bound RWM is compared with; ``small`` is a
seconds-long smoke run (2 tasks, 20 steps each); ``gpu`` trains longer.

Expected result (2-core CPU; seeds 0-2 via ``python -m cljax.sweep
--configs=configs/rwm_digits.py,configs/rwm_digits.py:finetune
--seeds=0,1,2``), accuracy, mean ± std:

==========  =============  =============  ============  ==========
variant     average final  BWT            in-domain     time
==========  =============  =============  ============  ==========
finetune    58.7 ± 0.7 %   -42.4 ± 0.3    92.7 ± 0.5 %  about 10 s
rwm         60.5 ± 0.8 %   -40.4 ± 0.5    92.9 ± 0.4 %  about 10 s
==========  =============  =============  ============  ==========

RWM modifies only the classifier's gradient; with a hidden layer most of the
forgetting happens below it (a permutation rewires the first layer), so the
gain is small. With ``--config.model.hidden_sizes='()'`` (a linear model
over the pixels, the RWM paper's setting of one linear layer over features):
finetune 50.0 % / BWT -29.8, RWM 51.1 % / BWT -26.2 (seed 0).
"""

import ml_collections

from cljax import config_schema

VARIANT_WORDS = ("default", "finetune", "small", "gpu")


def get_config(variant=None):
  words = [w for w in (variant or "default").split(",") if w]
  unknown = [w for w in words if w not in VARIANT_WORDS]
  if unknown:
    raise ValueError(f"Unknown config variant(s) {unknown} in {variant!r}; "
                     f"combine {', '.join(VARIANT_WORDS)} with commas "
                     "(as --config=configs/rwm_digits.py:small,finetune).")
  config = config_schema.base_config()
  config.data.stream = ml_collections.ConfigDict(dict(
      name="digits", num_tasks=5, transform="permute", seed=0))
  config.data.batch_size = 32
  config.data.eval_batch_size = 128
  # One record is one 64-pixel image at sample_rate 64: one "second".
  config.data.crop_seconds = 1.0
  config.data.eval_seconds = 1.0
  config.frontend = ml_collections.ConfigDict(
      dict(name="identity"))
  config.model = ml_collections.ConfigDict(
      dict(name="mlp", hidden_sizes=(128,)))
  config.strategy.name = "finetune" if "finetune" in words else "rwm"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.train.epochs_per_task = 5.0
  config.train.log_every = 20
  config.train.checkpoint_every = 1000
  config.eval.metrics = ("accuracy",)
  if "small" in words:
    config.data.stream.num_tasks = 2
    config.train.epochs_per_task = 0.0
    config.train.steps_per_task = 20
    config.train.log_every = 5
  if "gpu" in words:
    config.data.batch_size = 128
    config.train.epochs_per_task = 20.0
  config.lock()
  return config
