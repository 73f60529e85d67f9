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

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU): average final EER TBD by the 3-seed sweep
(fine-tune 13.3 ± 1.3 %, joint 9.0 ± 0.9 %). Seed 0 (measured):
average final EER 8.14 %, BWT -0.81 EER points, forgetting 0.81,
in-domain 8.83 %, next-domain 18.69 % (fine-tune seed 0: 13.25 % / +8.69;
ER seed 0: 10.30 % / +2.22).
About 5.2 min wall on a 2-core CPU shared with other jobs (load average
~8; 4.3 min user CPU); checkpoints as ER (about 2.3 GB a run).
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
