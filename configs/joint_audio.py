r"""Joint training on every task so far: the upper bound (does not forget).

Command::

  python -m cljax.main --config=configs/joint_audio.py        # default
  python -m cljax.main --config=configs/joint_audio.py:small  # smoke run
  python -m cljax.main --config=configs/joint_audio.py:gpu

Each task trains on the union of the training data of tasks 0..t for the
same number of epochs as fine-tuning (so later tasks take more steps).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 7.0 ± 0.1 %, BWT
-1.9 ± 0.5 EER points, in-domain 8.7 ± 0.3 %, next-domain 19.8 ± 1.6 %;
about 151 s a run (plus ~15 s start-up and compilation). At builder 1.4.0
(pauses of up to 100 ms kept): 8.2 ± 0.5 %, BWT -0.5 ± 0.2, in-domain
8.6 ± 0.7 %.
It does not forget (BWT below 0) but learns each new task less sharply
(in-domain EER higher than fine-tuning's).
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "joint"
  config.lock()
  return config
