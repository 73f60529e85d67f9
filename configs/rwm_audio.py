r"""RWM (AAAI'24) through the audio stream: the main job.

Command::

  python -m cljax.main --config=configs/rwm_audio.py        # default
  python -m cljax.main --config=configs/rwm_audio.py:small  # smoke run
  python -m cljax.main --config=configs/rwm_audio.py:gpu

Radian weight modification of the classifier kernel gradient,
``(P + tan(theta) Q) G``, with the angle from the batch's true-class
confidences and per-class signs (genuine +1, fakes -1), in the well-posed
mode (textbook projector, ``Q = I - P``, clipped angle) with P learning past
tasks only (``projector_schedule="past"``: measured better than "online",
see below). ``config.strategy.mode="faithful"`` reproduces the official
code's formulas instead; the official runners never applied them
(REFERENCE.md), cljax does.

Data: whatever ``presets.audio_experiment`` streams (the procedural
synthetic stream when this was measured; the output says so).

Expected result (default variant, 2-core CPU, PROVISIONAL: measured on the
synthetic_audio stream the preset used before the speech benchmark, 4 tasks,
cnn1d with a 128-d embedding; the README's table replaces it):
average final EER 38.2 ± 0.6 %, BWT +41.5 ± 1.1 EER points (3 seeds);
fine-tune 36.5 ± 0.4 % / +39.5 ± 0.4, joint 10.0 % / +2.9 (1 seed);
projector_schedule="online" 38.6 ± 1.6 % / +43.1 ± 3.1 (hence "past").
About 20 s on 2 CPU cores. RWM does not beat fine-tuning here: it modifies
the classifier only and this model forgets in its convolutional layers; with
those frozen after task 0 the classifier-only forgetting (fine-tune BWT
+28.9) is removed by OWM (-3.4) but hardly by RWM (+26.6), whose paper angle
pi/4 makes a balanced batch's update the plain gradient (``angle_center=0``:
+12.5). See cljax/strategies/rwm.py.
The small variant (3 tiny tasks, 12 steps each) takes about 15 s and only
checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "rwm"
  config.strategy.mode = "well_posed"
  config.strategy.projector_schedule = "past"
  config.strategy.alpha = 1.0             # official recursion regulariser
  config.strategy.signs = "paper"         # genuine +1, fakes -1
  config.strategy.per_class = False       # the official single angle
  config.strategy.angle_eps = 1e-3
  config.strategy.angle_center = 0.7853981633974483  # pi/4, the paper's
  config.lock()
  return config
