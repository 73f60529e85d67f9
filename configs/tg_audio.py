r"""TG (T-GD) through the audio stream: L2-SP to the teacher, gated by it.

Command::

  python -m cljax.main --config=configs/tg_audio.py        # default
  python -m cljax.main --config=configs/tg_audio.py:small  # smoke run
  python -m cljax.main --config=configs/tg_audio.py:gpu

cutz-j/T-GD ``transfer.py``: ``CE + sigmoid(-CE_teacher) * (1/2 ||w_S -
w_teacher_S||^2 + 1/2 ||w_head||^2)``, the teacher = the model after the
previous task, s = 1.

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 12.8 ± 1.3 %, BWT +7.5 ± 1.6 EER points,
forgetting 7.5 ± 1.6, in-domain 6.4 ± 0.6 %, next-domain 21.2 ± 1.5 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
60 s a run plus ~15 s start-up. At builder 1.4.0 (pauses of up to 100 ms
kept): 12.0 ± 1.0 %, BWT +7.5 ± 1.0, in-domain 5.6 ± 0.2 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 10.5 ± 0.3 %, BWT +5.3 ± 1.4 EER points, in-domain
6.0 ± 1.0 %, next-domain 17.7 ± 2.2 % (fine-tune 13.3 ± 1.3 % / +8.9,
joint 9.0 ± 0.9 % / -1.3): the best of the teacher-only methods here;
about 85 s a run plus ~15 s start-up. On tasks 2-7 the gate
sigmoid(-CE_teacher) ranged 0.19-0.49 (seed 0: the old model is unsure of
most new families, so the pull stays moderate).
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
