r"""L2-SP through the audio stream: keep the backbone near its start of task.

Command::

  python -m cljax.main --config=configs/l2sp_audio.py        # default
  python -m cljax.main --config=configs/l2sp_audio.py:small  # smoke run
  python -m cljax.main --config=configs/l2sp_audio.py:gpu

Li et al. 2018: ``alpha/2 ||w - w0||^2`` on the backbone (``w0`` = the
weights at the start of each task) plus ``beta/2 ||w_head||^2`` on the
classifier.

The head stays nearly free (beta small), so L2-SP protects the features
but not the decision: it forgets more than EWC or SI here, and learns each
task as sharply as fine-tuning.

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 13.0 ± 1.3 %, BWT
+9.5 ± 1.6 EER points, in-domain 4.8 ± 0.3 %, next-domain 23.0 ± 1.0 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4; joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
58 s a run (plus ~15 s start-up and compilation). At builder 1.4.0 (pauses
of up to 100 ms kept): 13.0 ± 0.7 %, BWT +9.7 ± 0.8, in-domain 4.7 ± 0.4 %.
alpha 0.01 was chosen on the benchmark's validation splits (not re-chosen
at 1.5.0)
(``--config.data.eval_split=val``, seeds 0-2, builder 1.4.0; average final
EER there: 0.001 / 0.01 / 0.1 -> 11.4 / 11.0 / 12.2 %, fine-tune 12.5 %;
1, seed 0: 15.3 %), as at builder 1.3.0 (seed 0: 0.01 / 0.1 / 1 -> 10.4 /
12.7 / 15.3 %, fine-tune 13.5 %). alpha 1, chosen earlier on the
synthetic stream: 16.9 ± 3.7 % on test at 1.3.0.
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "l2sp"
  config.strategy.alpha = 0.01
  config.strategy.beta = 0.01
  config.lock()
  return config
