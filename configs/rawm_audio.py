r"""RAWM (ICML'23) through the audio stream.

Command::

  python -m cljax.main --config=configs/rawm_audio.py        # default
  python -m cljax.main --config=configs/rawm_audio.py:small  # smoke run
  python -m cljax.main --config=configs/rawm_audio.py:gpu

The classifier kernel gradient becomes ``(P + beta Q) G`` with ``beta =
(n_genuine + 1) / (n_fake + 1)`` from the batch (EVDA's formula), in the
well-posed mode with P learning past tasks only; ``mode="faithful"`` gives
the official formulas. The paper's regulariser is absent from the official
code; cljax offers it as a distillation term on the previous task's model
(``kd_weight``, off by default; see cljax/strategies/rawm.py).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 13.4 ± 0.6 %, BWT
+9.7 ± 1.3 EER points, in-domain 5.1 ± 0.5 %, next-domain 25.3 ± 2.1 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4; joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
53 s a run (plus ~15 s start-up and compilation). At builder 1.4.0 (pauses
of up to 100 ms kept): 13.1 ± 0.6 %, BWT +10.1 ± 0.7, in-domain 4.4 ± 0.1 %.
The small variant takes about 15 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "rawm"
  config.strategy.mode = "well_posed"
  config.strategy.projector_schedule = "past"
  config.strategy.alpha = 1.0
  # The paper's regulariser (absent from the official code): distillation
  # on the previous task's model; 0 = off, as the official runs.
  config.strategy.kd_weight = 0.0
  config.strategy.kd_temperature = 2.0
  config.lock()
  return config
