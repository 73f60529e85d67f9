r"""Seed 002: CoReD and its baselines on image tasks, Xception/EfficientNet.

Command::

  # The embedded image benchmark (CPU, minutes):
  python -m cljax.main --config=configs/cored_image.py:small            # CoReD
  python -m cljax.main --config=configs/cored_image.py:small,kd         # DL
  python -m cljax.main --config=configs/cored_image.py:small,tg
  python -m cljax.main --config=configs/cored_image.py:small,finetune   # TL
  python -m cljax.main --config=configs/cored_image.py:small,efficientnet
  # Your copy of FaceForensics++ / GAN sets in CoReD's layout:
  python -m cljax.main --config=configs/cored_image.py \
      --config.data.stream.root=/data/ff --config.data.stream.tasks="('DeepFake','Face2Face','FaceSwap','NeuralTextures')"

"CoReD: Generalizing Fake Media Detection with Continual Representation
using Distillation" (ACMMM'21): the student starts from the teacher (the
model after the previous task) and trains on ``CE + [alpha T^2 KL +
(1 - alpha) CE] + representation loss`` (per class and teacher-confidence
bin, the student's mean feature against the teacher's), alpha 0.5, T 20
(``cljax/strategies/cored.py``); the baselines ``kd`` (distillation loss
only, the paper's DL), ``tg`` (L2-SP + self-training, weighted by
sigmoid(-CE_teacher)) and ``finetune`` (transfer learning, TL). Backbone
``xception`` (default) or ``efficientnet`` (B0). Metric: AUC (the first of
``config.eval.metrics``).

Full variant: ``image_folders`` over ``config.data.stream.root`` in
CoReD's layout (``<task>/{train,val}/{real,fake}``; ``val`` is the test
split there, as CoReD evaluates), 256-px images, RGB with the ImageNet
normalisation; a task may join several sources (``"DeepFake_Face2Face"``:
CoReD's ``-s A_B``). Adam 1e-4 (CoReD's own settings are not in its README;
a documented choice).

``small``: the embedded image benchmark, 64-px RGB, Xception at a quarter
width with 2 middle blocks (or EfficientNet-B0 at half width and depth).

Expected result (``small``: 6 tasks, 4 epochs each, Xception; seed 0
only; 2-core CPU shared with other jobs), test AUC %, forgetting and BWT in
AUC points:

==========  ==========  ==========  =====  =========  ========
method      avg final   forgetting  BWT    in-domain  time
==========  ==========  ==========  =====  =========  ========
finetune    84.9        1.2         -0.5   85.3       2.3 min
cored       83.3        2.2         -1.4   84.4       2.6 min
kd          83.3        -0.2        +0.9   82.5       2.6 min
tg          81.0        2.1         -1.6   82.3       2.6 min
==========  ==========  ==========  =====  =========  ========

The reduced Xception on 64-px RGB hardly forgets here (and never learns
the JPEG family: about 57 % AUC throughout), so there is little for CoReD
to keep; the paper's setting (full Xception, face forgeries) is the full
variant's. ``small,efficientnet`` (CoReD, EfficientNet-B0 at half width
and depth, from a fresh clone): average final 80.8, forgetting 1.0, BWT
+1.3, in-domain 79.7, 3.5 min.
"""

from cljax import presets

METHODS = ("cored", "kd", "tg", "finetune")
BACKBONES = ("xception", "efficientnet")


def get_config(variant=None):
  choice, modifiers = presets.parse_words(
      variant, {"method": METHODS, "backbone": BACKBONES}, ("small",))
  small = "small" in modifiers
  model = ("xception" if choice["backbone"] == "xception"
           else "efficientnet_b0")
  config = presets.image_experiment(
      small,
      stream=dict(name="image_folders", root="", tasks=(), layout="cored",
                  image_size=256, data_dir=""),
      frontend=dict(name="rgb", normalization="imagenet"),
      model=dict(name=model))
  method = choice["method"]
  config.strategy.name = method
  if method == "cored":
    config.strategy.alpha = 0.5
    config.strategy.temperature = 20.0
    config.strategy.representation_weight = 1.0
    config.strategy.feature = "channel_mean"
    config.strategy.teacher_split = "train"
  elif method == "kd":
    config.strategy.alpha = 1.0
    config.strategy.temperature = 20.0
    config.strategy.clamp_min = 0.0
    config.strategy.clamp_max = 10.0
  elif method == "tg":
    config.strategy.scale = 1.0
    config.strategy.backbone_weight = 1.0
    config.strategy.head_weight = 1.0
  config.lock()
  return config
