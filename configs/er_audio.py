r"""ER through the audio stream: replay from a 5000-example reservoir.

Command::

  python -m cljax.main --config=configs/er_audio.py        # default
  python -m cljax.main --config=configs/er_audio.py:small  # smoke run
  python -m cljax.main --config=configs/er_audio.py:gpu

Experience replay as seed 001 runs it (RaptorMai/online-continual-learning
``--agent ER --retrieve random --update random --mem_size 5000``): each
step draws as many rows from the memory as come in (before storing the
incoming batch), the loss is the incoming mean cross-entropy plus the
replayed mean cross-entropy, and the incoming batch is then offered to the
memory by reservoir sampling (``cljax.strategies.er``).

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 7.5 ± 0.9 %, BWT +0.3 ± 1.0 EER points,
forgetting 1.4 ± 0.7, in-domain 7.3 ± 0.2 %, next-domain 18.4 ± 1.5 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5);
memory 320 MB; about 115 s a run plus ~15 s start-up. At builder 1.4.0
(pauses of up to 100 ms kept): 7.8 ± 0.4 %, BWT +0.6 ± 1.0, in-domain
7.3 ± 1.1 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 8.8 ± 1.3 %, BWT +0.8 ± 1.2 EER points, forgetting
2.1 ± 1.7, in-domain 8.1 ± 0.3 %, next-domain 16.6 ± 1.3 % (fine-tune
13.3 ± 1.3 % / +8.9, joint 9.0 ± 0.9 % / -1.3): the whole fine-tune ->
joint gap closed. About 130 s a run plus ~15 s start-up; every checkpoint
carries the 320 MB memory, so a run's workdir holds about 2.3 GB of
checkpoints.
The memory holds 5000 clips of 2 s at 16 kHz as int16 (plus label and task):
5000 x (32000 x 2 + 8) bytes = 320.04 MB.
The small variant (3 tiny tasks, 12 steps each, a memory of 16 so that the
reservoir evicts from the second step on) only checks the machinery.
"""

from ml_collections import config_dict

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "er"
  config.strategy.memory_size = 16 if variant == "small" else 5000
  # None: as many rows as the incoming batch; an int on the command line.
  config.strategy.replay_batch_size = config_dict.placeholder(int)
  config.lock()
  return config
