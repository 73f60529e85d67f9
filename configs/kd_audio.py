r"""KD through the audio stream: CE + alpha * clamp(KD) on the old model.

Command::

  python -m cljax.main --config=configs/kd_audio.py        # default
  python -m cljax.main --config=configs/kd_audio.py:small  # smoke run
  python -m cljax.main --config=configs/kd_audio.py:gpu

Seed 003's knowledge distillation: the model after the previous task
teaches, the student starts from it; ``CE + alpha * clip(T^2 KL, 0, 10)``.
Seed 003's training code could not be found, so alpha 1, T 2 and the clamp
bounds [0, 10] are cljax's documented defaults (``cljax/strategies/kd.py``).

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 10.7 ± 0.7 %, BWT +4.7 ± 0.7 EER points,
forgetting 5.0 ± 0.6, in-domain 6.7 ± 0.1 %, next-domain 21.2 ± 0.2 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
58 s a run plus ~15 s start-up. At builder 1.4.0 (pauses of up to 100 ms
kept): 8.9 ± 1.3 %, BWT +3.2 ± 0.7, in-domain 6.2 ± 1.0 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 11.6 ± 0.7 %, BWT +6.1 ± 0.5 EER points, in-domain
6.4 ± 0.5 %, next-domain 19.6 ± 1.6 % (fine-tune 13.3 ± 1.3 % / +8.9,
joint 9.0 ± 0.9 % / -1.3); about 70 s a run plus ~15 s start-up.
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "kd"
  config.strategy.alpha = 1.0
  config.strategy.temperature = 2.0
  config.strategy.clamp_min = 0.0
  config.strategy.clamp_max = 10.0
  config.lock()
  return config
