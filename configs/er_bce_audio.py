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

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 7.3 ± 0.7 %, BWT -0.8 ± 1.3 EER points,
forgetting 1.1 ± 1.0, in-domain 8.0 ± 0.5 %, next-domain 20.1 ± 1.5 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5);
memory 320 MB; about 126 s a run plus ~15 s start-up. At builder 1.4.0
(pauses of up to 100 ms kept): 8.9 ± 1.4 %, BWT +0.5 ± 0.8, in-domain
8.5 ± 0.7 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 9.0 ± 0.8 %, BWT +0.1 ± 1.0 EER points, in-domain
8.9 ± 0.4 %, next-domain 18.8 ± 1.0 % (fine-tune 13.3 ± 1.3 % / +8.9,
joint 9.0 ± 0.9 % / -1.3; ER 8.8 ± 1.3 %); memory 320 MB; about 140 s a
run plus ~15 s start-up.
The small variant keeps 64
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
