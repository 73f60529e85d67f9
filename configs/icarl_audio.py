r"""iCaRL through the audio stream: herding exemplars, BCE distillation, NME.

Command::

  python -m cljax.main --config=configs/icarl_audio.py        # default
  python -m cljax.main --config=configs/icarl_audio.py:small  # smoke run
  python -m cljax.main --config=configs/icarl_audio.py:gpu

The real iCaRL (``cljax/strategies/icarl.py``), adapted to recurring
classes: a memory of 5000 exemplars (seed 001's ``--mem_size``) split evenly
over the (task, class) groups seen, chosen by herding at each task end;
each step trains on the incoming batch plus as many exemplars with the
summed sigmoid BCE towards ``(1 - 0.5) * one-hot + 0.5 * teacher sigmoid``
(teacher = the model after the previous task; labels only on task 0);
scores from the nearest-mean-of-exemplars classifier. On the default
benchmark (7 tasks of ~640 training clips) the memory outgrows the data:
every example is kept, so this is iCaRL's training and classifier with a
full memory.

Expected result (default variant: the embedded speech benchmark, builder
1.5.0, 7 tasks, CNN1D over log-mel; seeds 0-2 via ``python -m cljax.sweep``,
2-core CPU): average final EER 8.5 ± 0.8 %, BWT -4.7 ± 1.1 EER points,
forgetting 0.3 ± 1.0, in-domain 12.6 ± 1.3 %, next-domain 20.8 ± 1.9 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4, joint 7.0 ± 0.1 % / -1.9 ± 0.5);
memory 320 MB; about 160 s a run plus ~15 s start-up. At builder 1.4.0
(pauses of up to 100 ms kept): 8.1 ± 0.7 %, BWT -4.3 ± 0.3, in-domain
11.8 ± 0.4 %.
At builder 1.3.0 (seeds 0-2, before the channel's gate and leveller):
average final EER 7.9 ± 0.9 %, BWT -4.5 ± 0.9 EER points, in-domain
11.7 ± 0.4 %, next-domain 19.0 ± 1.2 % (fine-tune 13.3 ± 1.3 % / +8.9,
joint 9.0 ± 0.9 % / -1.3): below joint training — the nearest-mean
classifier over a memory that holds every clip; memory 320 MB; about 160 s
a run plus ~15 s start-up.
The small variant keeps 64 exemplars and only checks the
machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "icarl"
  config.strategy.memory_size = 64 if variant == "small" else 5000
  config.strategy.replay_batch_size = None
  config.strategy.distillation_weight = 0.5
  config.lock()
  return config
