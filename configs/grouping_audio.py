r"""Task grouping on a 12-task speech stream (seed 003's claim, measured).

Commands (about 5 min to build the 12-family benchmark once, then about
2 min a run on a 2-core CPU)::

  # 1. Measure task similarity and group (transfer: 100 steps per task).
  python -m cljax.group --config=configs/grouping_audio.py:finetune \
      --workdir=runs/grouping/groups --measure=transfer
  # 2. Ungrouped and grouped, same strategy, 3 seeds.
  python -m cljax.sweep --configs=configs/grouping_audio.py:kd,\
configs/grouping_audio.py:ewc,configs/grouping_audio.py:rwm \
      --seeds=0,1,2 --workdir=runs/grouping/ungrouped
  python -m cljax.sweep --configs=configs/grouping_audio.py:kd,\
configs/grouping_audio.py:ewc,configs/grouping_audio.py:rwm \
      --seeds=0,1,2 --workdir=runs/grouping/grouped \
      --set=data.groups=runs/grouping/groups/groups.json

The variant names the strategy; its settings are those of
``configs/<strategy>_audio.py`` (default variant), with the stream
lengthened to ``LONG_FAMILIES``: the 7 default families plus five of their
kin (flite kal16, Codec2 1300, LPC order 12, espeak en+f5, WORLD at 10 ms),
kin placed apart so that an ungrouped run meets each family twice.

Expected result (2-core CPU, seeds 0-2; README "Task grouping"; measured
on speech-benchmark builder 1.3.0, not yet re-run on 1.4.0): transfer
grouping gives 5 groups ({world}, {espeak, espeak_f5}, {codec2_700c,
codec2_1300}, {festival_kal, lpc, flite_slt, festival_hts, flite_kal16,
lpc12}, {world_10ms}). Average final EER over the 12 tasks, ungrouped ->
grouped: KD 12.5 ± 0.3 -> 13.2 ± 1.5 %, EWC 16.2 ± 3.3 -> 15.1 ± 1.4 %,
RWM 13.5 ± 1.6 -> 11.1 ± 0.3 %. About 3 min a run ungrouped, 1.7 min
grouped; building the 12-family benchmark took 4 min once.
"""

import runpy
import os

STRATEGIES = ("finetune", "joint", "kd", "ewc", "rwm", "lwf", "si", "er")
LONG_FAMILIES = ("world", "espeak", "codec2_700c", "festival_kal", "lpc",
                 "flite_slt", "festival_hts", "flite_kal16", "codec2_1300",
                 "lpc12", "espeak_f5", "world_10ms")


def get_config(variant=None):
  strategy = variant or "kd"
  if strategy not in STRATEGIES:
    raise ValueError(f"Unknown config variant {variant!r}: name a strategy, "
                     f"one of {', '.join(STRATEGIES)} (e.g. :kd).")
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      f"{strategy}_audio.py")
  config = runpy.run_path(path)["get_config"](None)
  with config.unlocked():
    config.data.stream.families = LONG_FAMILIES
    config.config_name = f"grouping_audio:{strategy}"
  config.lock()
  return config
