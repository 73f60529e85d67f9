r"""OWM (orthogonal weight modification) of the classifier, audio stream.

Command::

  python -m cljax.main --config=configs/owm_audio.py        # default
  python -m cljax.main --config=configs/owm_audio.py:small  # smoke run
  python -m cljax.main --config=configs/owm_audio.py:gpu

The classifier kernel gradient becomes ``P G``, P the recursive-least-squares
projector away from past tasks' inputs (well-posed mode, P committed at each
task's end); ``mode="faithful"`` gives the official formulas.

Expected result (default variant, 2-core CPU, 1 seed, PROVISIONAL: measured
on the synthetic_audio stream the preset used before the speech benchmark;
the README's table replaces it): average final EER 37.3 %, BWT +41.7 EER
points ("online": 36.9 % / +38.5); fine-tune 36.5 % / +39.1 on the same
seed. The projection works on the layer it acts on (backbone frozen after
task 0: BWT -3.4 vs fine-tune +28.9), but this model forgets in its
convolutional layers. About 20 s on 2 CPU cores.
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
