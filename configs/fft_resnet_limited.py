r"""Seed 001: FFT spectrum + ResNet with replay/distillation on limited data.

Command::

  # The embedded image benchmark (built offline; CPU, minutes):
  python -m cljax.main --config=configs/fft_resnet_limited.py:small        # iCaRL
  python -m cljax.main --config=configs/fft_resnet_limited.py:small,gdumb
  # ... :small,er_bce | lwf | er | mir | finetune | joint
  # Your copy of the seed's data (GAN-S, VFHQ, ForenSynths, DeepFake):
  python -m cljax.main --config=configs/fft_resnet_limited.py:gdumb \
      --config.data.stream.root=/data/seed001

"Towards generalizable DeepFake detection with continual learning on
limited data": each image's per-channel log-|FFT2| of the 224 centre crop,
normalised by its 5th/95th percentiles to [-1, 1] (the ``spectrum`` front
end, on the device), ResNet-34, and the seed's agents with its memory
sizes: ``icarl`` (the real iCaRL: herding exemplars, nearest-mean
classifier, sigmoid-BCE distillation; mem 5000), ``er_bce`` (what the seed
runs as ``--agent ICARL``: reservoir ER with BCE and an NME classifier, named
honestly; mem 5000), ``gdumb`` (mem 3000, 10 epochs from scratch on the
memory, min lr 5e-4, clip 10), ``lwf``, ``er`` and ``mir`` (mem 5000, 50
candidates, virtual lr 0.1), plus ``finetune`` and ``joint`` as the bounds.

Full variant: the seed's sequence GAN-S -> VFHQ -> ForenSynths -> DeepFake
over ``config.data.stream.root`` laid out as seed 003's folders
(``<task>/{train,val,test}/{0_real,1_fake}/``; see the README), 256-px
images. The seed also tests on NeuralTextures, never trained on: score the
final model on it with ``python -m cljax.score --workdir=... --folder=
<root>/NeuralTextures/test``. The seed's optimiser settings are not in its
README; cljax uses Adam 1e-4, 10 epochs a task (documented choice).

``small``: the embedded image benchmark (``image_benchmark``: 64-px crops
of photographs vs. generator families; see the README), the spectrum of
the 56-px centre crop, ResNet-18 at width 16, memories scaled to the
benchmark (icarl/er_bce/er/mir 300, gdumb 200).

Expected result (``small``: 6 tasks, 4 epochs each; seed 0 only, so
differences of a point or two are within noise; 2-core CPU shared with
other jobs), test AUC %, forgetting and BWT in AUC points (negative BWT =
forgetting):

============  ==========  ==========  =====  =========  ========
agent         avg final   forgetting  BWT    in-domain  time
============  ==========  ==========  =====  =========  ========
finetune      88.7        7.2         -7.2   94.7       2.6 min
icarl         88.7        0.4         +0.5   88.2       5.0 min
er_bce        89.6        3.6         -3.6   92.7       4.2 min
gdumb         77.0        1.5         +1.4   75.8       3.4 min
lwf           86.5        1.1         +0.1   86.4       3.1 min
er            88.8        3.2         -3.2   91.5       4.1 min
mir           91.5        1.2         -0.8   92.2       7.0 min
joint         91.0        0.5         -0.2   91.2       6.5 min
============  ==========  ==========  =====  =========  ========

Fine-tuning forgets (JPEG 80 -> 46 % after the bilinear task); the replay
and distillation agents keep most of it. GDumb, trained from scratch on 200
stored images, stays lowest, as on audio. The full matrices are in the
README.
"""

from cljax import presets

METHODS = ("icarl", "er_bce", "gdumb", "lwf", "er", "mir", "finetune",
           "joint")


def get_config(variant=None):
  choice, modifiers = presets.parse_words(variant, {"method": METHODS},
                                          ("small",))
  small = "small" in modifiers
  config = presets.image_experiment(
      small,
      stream=dict(name="seed001_sequence", root="", image_size=256,
                  data_dir=""),
      frontend=dict(name="spectrum", crop=224),
      model=dict(name="resnet34"))
  method = choice["method"]
  config.strategy.name = method
  replay_memory = 300 if small else 5000
  if method in ("icarl", "er_bce", "er", "mir"):
    config.strategy.memory_size = replay_memory
    config.strategy.replay_batch_size = None
  if method == "icarl":
    config.strategy.distillation_weight = 0.5
  elif method == "er_bce":
    config.strategy.classifier = "nme"
  elif method == "mir":
    config.strategy.candidates = 50
    config.strategy.virtual_lr = 0.1
  elif method == "gdumb":
    config.strategy.memory_size = 200 if small else 3000
    config.strategy.epochs = 10
    config.strategy.batch_size = config.data.batch_size
    config.strategy.learning_rate = 0.05
    config.strategy.min_lr = 0.0005
    config.strategy.momentum = 0.9
    config.strategy.weight_decay = 1e-6
    config.strategy.balance_by = "class"
    config.strategy.clip = 10.0
    config.strategy.warm_start = True
  elif method == "lwf":
    config.strategy.temperature = 2.0
    config.strategy.weighting = "task_index"
    config.strategy.distillation_form = "cross_entropy"
    config.strategy.linear_max_weight = 2.0
    config.strategy.linear_tasks = 8
  config.lock()
  return config
