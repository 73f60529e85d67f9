r"""MIR through the audio stream: replay the memories a step would hurt most.

Command::

  python -m cljax.main --config=configs/mir_audio.py        # default
  python -m cljax.main --config=configs/mir_audio.py:small  # smoke run
  python -m cljax.main --config=configs/mir_audio.py:gpu

Maximally interfered retrieval (Aljundi et al. 2019) as seed 001 runs it
(RaptorMai/online-continual-learning ``--agent ER --retrieve MIR --update
random --mem_size 5000``, ``subsample`` 50): each step draws 50 candidates
from the 5000-example reservoir, takes a virtual SGD step (lr 0.1) on the
incoming batch, replays the batch-size candidates whose cross-entropy rises
most, and otherwise trains as ER (``cljax.strategies.mir``).

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 9.1 ± 0.1 %, BWT -0.9 ± 1.5 EER points,
forgetting 1.0 ± 1.0, in-domain 9.9 ± 1.1 %, next-domain 21.5 ± 1.3 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5);
memory 320 MB; about 199 s a run plus ~15 s start-up. At builder 1.4.0
(pauses of up to 100 ms kept): 8.7 ± 1.2 %, BWT -0.9 ± 0.4, in-domain
9.6 ± 1.2 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 8.9 ± 2.2 %, BWT +0.5 ± 2.1 EER points, forgetting
1.9 ± 1.9, in-domain 8.5 ± 0.7 %, next-domain 19.4 ± 1.6 % (fine-tune
13.3 ± 1.3 % / +8.9, joint 9.0 ± 0.9 % / -1.3; ER 8.8 ± 1.3 %): level
with ER — with a memory that holds most of the stream, which rows are
replayed matters little. About 195 s a run plus ~15 s start-up;
checkpoints as ER (about 2.3 GB a run).
Memory: 5000 x (32000 x 2 + 8) bytes = 320.04 MB, as ER.
The small variant (3 tiny tasks, 12 steps each, a memory of 16 — so 16
candidates, all of them replayed — that evicts from the second step on) only
checks the machinery.
"""

from ml_collections import config_dict

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "mir"
  config.strategy.memory_size = 16 if variant == "small" else 5000
  # None: as many rows as the incoming batch; an int on the command line.
  config.strategy.replay_batch_size = config_dict.placeholder(int)
  config.strategy.candidates = 50
  config.strategy.virtual_lr = 0.1
  config.lock()
  return config
