r"""SI (synaptic intelligence) through the audio stream.

Command::

  python -m cljax.main --config=configs/si_audio.py        # default
  python -m cljax.main --config=configs/si_audio.py:small  # smoke run
  python -m cljax.main --config=configs/si_audio.py:gpu

Zenke et al. 2017: each weight's contribution to the loss drop along the
training path, normalised by its squared total change, becomes its
importance; later tasks pay ``c * sum Omega (theta - theta*)^2``. No data is
needed at task ends.

EVDA's strength 1e-4 belongs to its own loss scale; 1 here (how it was
chosen: below).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``;
speech benchmark builder 1.4.0):
average final EER 11.1 ± 1.9 %, BWT +3.1 ± 1.6 EER points,
in-domain 8.4 ± 1.1 %, next-domain 20.4 ± 1.1 % (fine-tune 13.7 ± 1.3 % / +10.6 ± 1.3;
joint 8.2 ± 0.5 % / -0.5 ± 0.2); about 52 s a run
(plus ~15 s start-up and compilation).
Strength 1 was chosen on the benchmark's validation splits
(``--config.data.eval_split=val``, seed 0, builder 1.3.0; average final EER there:
0.3 / 1 / 3 -> 10.9 / 9.9 / 12.0 %, fine-tune 13.5 %). Strength 3, chosen
earlier on the synthetic stream: 13.7 ± 1.9 % on test (in-domain 12.2 %).
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "si"
  config.strategy.strength = 1.0
  config.strategy.damping = 1e-3
  config.strategy.apply_to = "all"
  config.lock()
  return config
