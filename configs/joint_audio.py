r"""Joint training on every task so far: the upper bound (does not forget).

Command::

  python -m cljax.main --config=configs/joint_audio.py        # default
  python -m cljax.main --config=configs/joint_audio.py:small  # smoke run
  python -m cljax.main --config=configs/joint_audio.py:gpu

Each task trains on the union of the training data of tasks 0..t for the
same number of epochs as fine-tuning (so later tasks take more steps).

Expected result (default variant, 2-core CPU): average final EER 8.7 % (3 seeds: 8.72 ± 1.11),
BWT +1.8 EER points; 19 s on 2 CPU cores.
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "joint"
  config.lock()
  return config
