r"""SI (synaptic intelligence) through the audio stream.

Command::

  python -m cljax.main --config=configs/si_audio.py        # default
  python -m cljax.main --config=configs/si_audio.py:small  # smoke run
  python -m cljax.main --config=configs/si_audio.py:gpu

Zenke et al. 2017: each weight's contribution to the loss drop along the
training path, normalised by its squared total change, becomes its
importance; later tasks pay ``c * sum Omega (theta - theta*)^2``. No data is
needed at task ends.

EVDA's strength 1e-4 belongs to its own loss scale; 3 here (how it was
chosen: below).

Expected result (default variant: the embedded speech benchmark, 7 tasks,
CNN1D over log-mel; 2-core CPU; seeds 0-2 via ``python -m cljax.sweep``):
average final EER 13.7 ± 1.9 %, BWT +1.8 ± 1.9 EER points,
in-domain 12.2 ± 0.9 %, next-domain 19.7 ± 0.8 % (fine-tune 13.3 ± 1.3 % / +8.9 ± 1.6;
joint 9.0 ± 0.9 % / -1.2 ± 0.5); about 65 s a run
(plus ~15 s start-up and compilation).
Strength 3 was chosen on the synthetic stream (0.1 / 1 / 3 / 10 -> 32.6 /
31.3 / 28.9 / 30.3 % there). On the speech benchmark it removes most of the
forgetting but doubles the in-domain EER.
The small variant takes about 10 s and only checks the machinery.
"""

from cljax import presets


def get_config(variant=None):
  config = presets.audio_experiment(variant)
  config.strategy.name = "si"
  config.strategy.strength = 3.0
  config.strategy.damping = 1e-3
  config.strategy.apply_to = "all"
  config.lock()
  return config
