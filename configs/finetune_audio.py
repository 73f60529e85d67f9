r"""Fine-tuning through the audio stream: the lower bound (forgets).

Command::

  python -m cljax.main --config=configs/finetune_audio.py        # default
  python -m cljax.main --config=configs/finetune_audio.py:small  # smoke run
  python -m cljax.main --config=configs/finetune_audio.py:gpu

Data: the embedded speech benchmark (``presets.audio_experiment``).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 13.5 ± 0.4 %, BWT
+9.8 ± 0.4 EER points, in-domain 5.1 ± 0.4 %, next-domain 24.8 ± 0.9 %;
about 70 s a run (plus ~15 s start-up and compilation). At builder 1.4.0
(pauses of up to 100 ms kept): 13.7 ± 1.3 %, BWT +10.6 ± 1.3, in-domain
4.6 ± 0.5 %.
Task 0 (WORLD) goes from 20-24 % EER after its own training to 45-47 %
after the last task: forgetting is real.
The small variant (3 tiny tasks, 12 steps each) takes about 10 s and only
checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "finetune"
  config.lock()
  return config
