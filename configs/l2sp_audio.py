r"""L2-SP through the audio stream: keep the backbone near its start of task.

Command::

  python -m cljax.main --config=configs/l2sp_audio.py        # default
  python -m cljax.main --config=configs/l2sp_audio.py:small  # smoke run
  python -m cljax.main --config=configs/l2sp_audio.py:gpu

Li et al. 2018: ``alpha/2 ||w - w0||^2`` on the backbone (``w0`` = the
weights at the start of each task) plus ``beta/2 ||w_head||^2`` on the
classifier.

alpha 1 from a 1-seed sweep (0.01 / 0.1 / 1 -> average final EER 35.5 /
32.8 / 32.4 %); the head stays free, so L2-SP protects the features but not
the decision, and forgets more than EWC or SI here.

Expected result (default variant, 2-core CPU shared with other jobs, seed 0,
PROVISIONAL: 1 seed, alpha chosen on the same test splits): average final
EER 32.4 % (fine-tune 36.5 %), BWT +27.3 EER points, in-domain 11.9 %,
next-domain 54.4 %; about 20-45 s.
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
  config.strategy.name = "l2sp"
  config.strategy.alpha = 1.0
  config.strategy.beta = 0.01
  config.lock()
  return config
