r"""The EVDA protocol on a user's copy of its precomputed features.

EVDA (Zhang, Yi & Tao 2024, "Towards Robust Audio Deepfake Detection: An
Evolving Benchmark for Continual Learning", github.com/Cecile-hi/
Evolving-FAD-CL-Benchmark): 8 tasks, each 1000 + 1000 training and
250 + 250 test utterances (real + fake), as wav2vec 2.0 XLS-R frame features
(``T x 1024`` per utterance) mean-pooled to 1024-d; an MLP head (7 hidden
layers of 512, ReLU, no dropout: ``SimpleMLP_withinitweight(hidden_size=512,
hidden_layers=7)`` with its ``yaml/FAD/fad_feature.yaml``); Adam, lr 1e-5,
no weight decay, batch 16, 100 epochs per task; EER per task with bona fide
("real", class 0) as the positive class, scored by the bona fide posterior.

Command (``manual_dir`` is required: the folder holding
``train_<feature>/`` and ``test_<feature>/``, see
``cljax/data/builders/evda_features.py``)::

  python -m cljax.main --config=configs/evda_features.py \
      --config.data.stream.manual_dir=/path/to/FAD-CL-Benchmark/features
  python -m cljax.main --config=configs/evda_features.py \
      --config.data.stream.manual_dir=/path --config.strategy.name=joint
  python -m cljax.main --config=configs/evda_features.py:small \
      --config.data.stream.manual_dir=/path   # machinery check, seconds

Expected result: not measured here (the features are not public yet, per
the EVDA README). Reported in the EVDA README (EER % after the last task,
averaged over the 8 tasks): Replay 11.60, EWC 21.95, OWM 40.60, GEM 24.95,
LwF 21.25, RAWM 25.00, RWM 22.55, SI 21.10. Time: not measured (8 x 100 epochs
of 125 steps of a 2.1M-parameter MLP).

Differences from the official runner, on purpose: records per class are the
first ``max_*_per_class`` by path (EVDA takes the first ``os.listdir``
returns, an arbitrary order), and no "load best on the train stream" model
selection.

The small variant (2 tasks, every record, a 32-unit MLP, 6 steps per task)
only checks the machinery on a tiny copy.
"""

import ml_collections

from cljax import config_schema
from cljax import presets

VARIANTS = ("default", "small")


def get_config(variant=None):
  variant = presets.check_variant(variant, VARIANTS)
  config = config_schema.base_config()
  config.data.stream = ml_collections.ConfigDict(dict(
      name="evda_features",
      manual_dir="",            # required: --config.data.stream.manual_dir=
      data_dir="",              # cache; default $CLJAX_DATA_DIR or ~/.cache
      num_tasks=8, feature_dim=1024, feature="", file_lists="",
      max_train_per_class=1000, max_test_per_class=250,
      on_bad_file="error"))
  config.data.batch_size = 16
  config.data.eval_batch_size = 250
  # The stream's "sample rate" is feature_dim, so one second is the whole
  # feature vector: crops and evaluation windows take it unchanged.
  config.data.crop_seconds = 1.0
  config.data.eval_seconds = 1.0
  config.frontend = ml_collections.ConfigDict(dict(name="identity"))
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", hidden_sizes=(512,) * 7, dropout_rate=0.0))
  config.strategy = ml_collections.ConfigDict(dict(name="finetune"))
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-5
  config.optimizer.weight_decay = 0.0
  config.train.epochs_per_task = 100.0
  config.train.log_every = 125
  config.train.checkpoint_every = 2500
  config.eval.metrics = ("eer", "auc", "accuracy")

  if variant == "small":
    config.data.stream.num_tasks = 2
    config.data.stream.max_train_per_class = 0
    config.data.stream.max_test_per_class = 0
    config.data.batch_size = 4
    config.data.eval_batch_size = 8
    config.model.hidden_sizes = (32,)
    config.optimizer.learning_rate = 1e-3
    config.train.epochs_per_task = 0.0
    config.train.steps_per_task = 6
    config.train.log_every = 3
    config.train.checkpoint_every = 6
  config.lock()
  return config
