r"""OWM (orthogonal weight modification) of the classifier, audio stream.

Command::

  python -m cljax.main --config=configs/owm_audio.py        # default
  python -m cljax.main --config=configs/owm_audio.py:small  # smoke run
  python -m cljax.main --config=configs/owm_audio.py:gpu

The classifier kernel gradient becomes ``P G``, P the recursive-least-squares
projector away from past tasks' inputs (well-posed mode, P committed at each
task's end); ``mode="faithful"`` gives the official formulas.

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 13.6 ± 0.6 %, BWT
+9.9 ± 0.1 EER points, in-domain 5.1 ± 0.5 %, next-domain 24.5 ± 0.4 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4; joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
54 s a run (plus ~15 s start-up and compilation). At builder 1.4.0 (pauses
of up to 100 ms kept): 12.8 ± 0.8 %, BWT +9.8 ± 0.8, in-domain 4.4 ± 0.3 %.
The projection removes the classifier's share of forgetting (with the
backbone frozen after task 0 on the synthetic stream: BWT -3.4 vs fine-tune
+28.9), but this model forgets mostly in its convolutional layers.
The small variant takes about 15 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "owm"
  config.strategy.mode = "well_posed"
  config.strategy.projector_schedule = "past"
  config.strategy.alpha = 1.0
  config.lock()
  return config
