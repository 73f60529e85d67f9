r"""Fine-tuning through the audio stream: the lower bound (forgets).

Command::

  python -m cljax.main --config=configs/finetune_audio.py        # default
  python -m cljax.main --config=configs/finetune_audio.py:small  # smoke run
  python -m cljax.main --config=configs/finetune_audio.py:gpu

Data: the procedural stream (4 tasks, one synthetic "generator" artefact
each) until the embedded speech benchmark lands; the output says so.

Expected result (default, CPU, 2 cores): see README "Results"; fine-tuning
learns each task and forgets earlier ones (positive EER BWT).
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "finetune"
  config.lock()
  return config
