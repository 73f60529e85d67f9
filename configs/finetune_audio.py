r"""Fine-tuning through the audio stream: the lower bound (forgets).

Command::

  python -m cljax.main --config=configs/finetune_audio.py        # default
  python -m cljax.main --config=configs/finetune_audio.py:small  # smoke run
  python -m cljax.main --config=configs/finetune_audio.py:gpu

Data: the procedural stream (4 tasks, one synthetic "generator" artefact
each) until the embedded speech benchmark lands; the output says so.

Expected result (default variant, 2-core CPU): average final EER 36.5 % (3 seeds: 36.52 ± 0.39),
BWT +39.5 EER points, in-domain EER 6.9 %; 14 s on 2 CPU cores.
The small variant (3 tiny tasks, 12 steps each) takes about 10 s and only
checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "finetune"
  config.lock()
  return config
