r"""Task grouping on a 12-task speech stream (seed 003's claim, measured).

Commands (about 3 min to build the 12-family benchmark once, then about
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
  # 3. Score each grouped run's final model on the 12 original tasks.
  python -m cljax.evaluate \
      --workdir=runs/grouping/grouped/grouping_audio-kd-seed0 \
      --config=configs/grouping_audio.py:kd --config.seed=0 \
      --out=runs/grouping/grouped/grouping_audio-kd-seed0/scores_original_tasks

The variant names the strategy; its settings are those of
``configs/<strategy>_audio.py`` (default variant), with the stream
lengthened to ``LONG_FAMILIES``: the 7 default families plus five of their
kin (flite kal16, Codec2 1300, LPC order 12, espeak en+f5, WORLD at 10 ms),
kin placed apart so that an ungrouped run meets each family twice.

Expected result (2-core CPU, seeds 0-2; README "Task grouping"; speech
benchmark builder 1.4.0, not yet re-run at 1.5.0, whose channel cuts
pauses out): transfer grouping gives 6 groups ({world},
{espeak, espeak_f5}, {codec2_700c, codec2_1300}, {festival_kal, flite_slt,
festival_hts, flite_kal16}, {lpc, lpc12}, {world_10ms}). Average final EER
over the 12 tasks, ungrouped -> grouped: KD 11.9 ± 1.5 -> 11.3 ± 1.2 %,
EWC (strength 3) 16.3 ± 2.4 -> 17.1 ± 0.4 %, RWM 13.1 ± 1.4 -> 12.6 ±
0.8 %: within the seeds' spread. About 1.9 min a run ungrouped, 1.4 min
grouped, with start-up; building the 12-family benchmark took about 3 min
once. At builder 1.3.0 (5 groups; EWC at strength 30): KD 12.5 -> 13.2 %,
EWC 16.2 -> 15.1 %, RWM 13.5 -> 11.1 %.
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
