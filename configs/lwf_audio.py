r"""LwF through the audio stream: distil the previous task's model.

Command::

  python -m cljax.main --config=configs/lwf_audio.py        # default
  python -m cljax.main --config=configs/lwf_audio.py:small  # smoke run
  python -m cljax.main --config=configs/lwf_audio.py:gpu

Seed 001's LwF (RaptorMai/online-continual-learning ``agents/lwf.py``):
``CE / (t+1) + (1 - 1/(t+1)) * T^2 softCE(teacher, student)``, T = 2, t =
tasks already learned, the teacher = the model after the previous task.
EVDA's setting instead (Avalanche LwF, alpha rising linearly 0 -> 2 over 8
tasks, T = 1)::

  --config.strategy.weighting=linear --config.strategy.temperature=1.0
  --config.strategy.distillation_form=kl

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 11.9 ± 1.3 %, BWT +0.5 ± 0.8 EER points,
forgetting 1.2 ± 0.3, in-domain 11.5 ± 0.7 %, next-domain 22.4 ± 1.7 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
60 s a run plus ~15 s start-up. At builder 1.4.0 (pauses of up to 100 ms
kept): 12.2 ± 1.8 %, BWT +0.5 ± 0.2, in-domain 11.8 ± 2.0 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 11.6 ± 1.6 %, BWT +1.0 ± 1.0 EER points, in-domain
10.8 ± 1.0 %, next-domain 20.7 ± 2.7 % (fine-tune 13.3 ± 1.3 % / +8.9,
joint 9.0 ± 0.9 % / -1.3); about 95 s a run plus ~15 s start-up. It forgets
little but learns each new task less sharply (in-domain 10.8 % vs
fine-tune's 5.6 %): from the third task on the distillation term outweighs
the new labels.
The small variant (3 tiny tasks, 12 steps each) takes about 10 s and only
checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "lwf"
  config.strategy.temperature = 2.0
  config.strategy.weighting = "task_index"
  config.strategy.distillation_form = "cross_entropy"
  config.strategy.linear_max_weight = 2.0
  config.strategy.linear_tasks = 8
  config.lock()
  return config
