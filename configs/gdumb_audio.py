r"""GDumb through the audio stream: a balanced memory, a model trained on it.

Command::

  python -m cljax.main --config=configs/gdumb_audio.py        # default
  python -m cljax.main --config=configs/gdumb_audio.py:small  # smoke run
  python -m cljax.main --config=configs/gdumb_audio.py:gpu

GDumb (``cljax/strategies/gdumb.py``): the stream only fills a greedy
class-balanced memory of 3000 clips (seed 001's ``--mem_size``); at each
task end a fresh model is trained on the memory alone for 10 epochs
(``--mem_epoch``) with SGD (lr 0.05, momentum 0.9, weight decay 1e-6:
official GDumb defaults), the official warm start and cosine annealing with
warm restarts (T_0=1, T_mult=2) down to 0.0005 (``--minlr``), gradients
clipped at 10 (``--clip``), batches of ``config.data.batch_size``.
The stream's own steps change nothing (zero updates) and are wasted compute.

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 23.4 ± 2.9 %, BWT -2.9 ± 5.2 EER points,
forgetting 3.8 ± 4.4, in-domain 25.9 ± 2.1 %, next-domain 25.3 ± 1.2 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5);
memory 192 MB; about 155 s a run plus ~15 s start-up. At builder 1.4.0
(pauses of up to 100 ms kept): 24.3 ± 2.8 %, BWT -2.0 ± 3.4, in-domain
26.0 ± 0.2 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 24.3 ± 1.9 %, BWT -1.7 ± 5.7 EER points, in-domain
25.7 ± 3.0 % (fine-tune 13.3 ± 1.3 %, joint 9.0 ± 0.9 %): far worse. The
first task fills the memory with 1500 clips of each class, after which
GDumb's class-balance rule rejects every later example (classes recur in
every task; the rule has no notion of task), so each task end retrains on
WORLD data only. ``--config.strategy.balance_by=task_class`` balances
(task, class) groups instead — not GDumb's rule: at builder 1.5.0
10.2 ± 0.4 %, BWT +0.0 ± 0.6, in-domain 10.2 ± 0.6 % (3 seeds; at
1.4.0 10.0 ± 0.6 %, at 1.3.0 10.7 ± 0.5 %). Memory 192 MB; about 170 s a
run with start-up (10
epochs on the memory at each task end).
The small variant keeps 48
clips, trains 2 epochs and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "gdumb"
  small = variant == "small"
  config.strategy.memory_size = 48 if small else 3000
  config.strategy.epochs = 2 if small else 10
  config.strategy.batch_size = config.data.batch_size
  config.strategy.learning_rate = 0.05
  config.strategy.min_lr = 0.0005
  config.strategy.momentum = 0.9
  config.strategy.weight_decay = 1e-6
  # "task_class": balance (task, class) groups instead (not GDumb's rule).
  config.strategy.balance_by = "class"
  config.strategy.clip = 10.0
  config.strategy.warm_start = True
  config.lock()
  return config
