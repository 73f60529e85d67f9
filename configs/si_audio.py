r"""SI (synaptic intelligence) through the audio stream.

Command::

  python -m cljax.main --config=configs/si_audio.py        # default
  python -m cljax.main --config=configs/si_audio.py:small  # smoke run
  python -m cljax.main --config=configs/si_audio.py:gpu

Zenke et al. 2017: each weight's contribution to the loss drop along the
training path, normalised by its squared total change, becomes its
importance; later tasks pay ``c * sum Omega (theta - theta*)^2``. No data is
needed at task ends.

EVDA's strength 1e-4 belongs to its own loss scale; 0.3 here (how it was
chosen: below).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.5.0): average final EER 11.7 ± 0.7 %, BWT
+5.9 ± 0.8 EER points, in-domain 6.6 ± 0.7 %, next-domain 22.6 ± 2.7 %
(fine-tune 13.5 ± 0.4 % / +9.8 ± 0.4; joint 7.0 ± 0.1 % / -1.9 ± 0.5); about
55 s a run (plus ~15 s start-up and compilation). At builder 1.4.0 (pauses
of up to 100 ms kept): 11.4 ± 2.0 %, BWT +6.0 ± 2.2, in-domain 6.3 ± 0.6 %.
Strength 0.3 was chosen on the benchmark's validation splits (not re-chosen
at 1.5.0)
(``--config.data.eval_split=val``, seeds 0-2, builder 1.4.0; average final
EER there: 0.1 / 0.3 / 1 -> 10.7 / 10.6 / 13.1 %, fine-tune 12.5 %; 3,
seed 0: 15.8 %). The strength chosen at builder 1.3.0 (seed 0: 0.3 / 1 / 3
-> 10.9 / 9.9 / 12.0 %, fine-tune 13.5 %), 1, gives 11.1 ± 1.9 % /
+3.1 ± 1.6 on test at 1.4.0 (in-domain 8.4 %). Strength 3, chosen
earlier on the synthetic stream: 13.7 ± 1.9 % on test at 1.3.0 (in-domain
12.2 %).
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "si"
  config.strategy.strength = 0.3
  config.strategy.damping = 1e-3
  config.strategy.apply_to = "all"
  config.lock()
  return config
