r"""TG (T-GD) through the audio stream: L2-SP to the teacher, gated by it.

Command::

  python -m cljax.main --config=configs/tg_audio.py        # default
  python -m cljax.main --config=configs/tg_audio.py:small  # smoke run
  python -m cljax.main --config=configs/tg_audio.py:gpu

cutz-j/T-GD ``transfer.py``: ``CE + sigmoid(-CE_teacher) * (1/2 ||w_S -
w_teacher_S||^2 + 1/2 ||w_head||^2)``, the teacher = the model after the
previous task, s = 1.

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; seed 0 only so far, the 3-seed sweep is pending):
average final EER 10.8 %, BWT +6.2 EER points, in-domain 5.5 %,
next-domain 16.2 % (fine-tune seed 0: 13.2 % / +8.7; fine-tune over seeds
0-2: 13.3 ± 1.3 %, joint 9.0 ± 0.9 %); 195 s for the run on a shared 2-core
CPU, start-up and compilation included. On tasks 2-7 the gate
sigmoid(-CE_teacher) ranged 0.19-0.49 (the old model is unsure of most new
families, so the pull stays moderate).
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "tg"
  config.strategy.scale = 1.0
  config.strategy.backbone_weight = 1.0
  config.strategy.head_weight = 1.0
  config.lock()
  return config
