r"""ER-BCE (seed 001's "ICARL") through the audio stream.

Command::

  python -m cljax.main --config=configs/er_bce_audio.py        # default
  python -m cljax.main --config=configs/er_bce_audio.py:small  # smoke run
  python -m cljax.main --config=configs/er_bce_audio.py:gpu

What ``--agent ICARL --retrieve random --update random --mem_size 5000`` of
RaptorMai/online-continual-learning does in the two-class setting
(``cljax/strategies/er_bce.py`` says what was verified and why it is not
iCaRL): a 5000-example reservoir memory; from the second task on, each step
appends as many stored rows of *earlier* tasks as come in; summed sigmoid
BCE on one-hot labels, one mean over all rows; scores from a nearest-
class-mean classifier over the whole memory.

Measured (default variant, seed 0 only; 3-seed sweep pending): average
final EER 8.7 %, BWT -0.6 EER points (fine-tune seed 0: 13.2 % / +8.7);
about 23 min on a 2-core CPU shared with 3 other runs. The small variant keeps 64
examples and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "er_bce"
  config.strategy.memory_size = 64 if variant == "small" else 5000
  config.strategy.replay_batch_size = None
  config.strategy.classifier = "nme"
  config.lock()
  return config
