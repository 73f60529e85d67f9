r"""Builds the embedded speech benchmark ahead of time.

Usage::

  python -m cljax.data.build                      # default data dir
  python -m cljax.data.build --data_dir=/data/cljax
  python -m cljax.data.build --check              # exit 0 iff cached

Prints the clip counts per split, the size on disk and the build time.
Exits 0 when the benchmark is (now) cached; with ``--check`` it builds
nothing and exits 1 if the current ``VERSION`` is not cached, 0 if it is
(``launch/setup.sh`` uses this to build only when needed); exit 2 when this
machine lacks what the build needs (the message names it).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags

from cljax.data import speech_stream

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Cache folder (default: $CLJAX_DATA_DIR, else "
    "$XDG_CACHE_HOME/cljax/data, else ~/.cache/cljax/data).")
_CHECK = flags.DEFINE_bool("check", False,
                           "Only report whether the current version is cached.")
_WORKERS = flags.DEFINE_integer("num_workers", None,
                                "Build processes (default: min(2, cores)).")


def _size_on_disk(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def main(argv) -> int:
  del argv
  builder = speech_stream.make_builder(data_dir=_DATA_DIR.value,
                                       num_workers=_WORKERS.value)
  if _CHECK.value:
    built = speech_stream.is_built(builder)
    print(f"[cljax] speech benchmark {builder.version} "
          f"{'cached' if built else 'not cached'} in {builder.data_dir}")
    return 0 if built else 1
  seconds = 0.0
  if not speech_stream.is_built(builder):
    missing = speech_stream.missing_packages(builder.builder_config.families)
    if missing:
      print("[cljax] cannot build the speech benchmark here; missing: "
            + "; ".join(missing), file=sys.stderr)
      return 2
    start = time.time()
    speech_stream.build(builder)
    seconds = time.time() - start
  splits = builder.info.splits
  for name in sorted(splits.keys()):
    print(f"  {name:24s} {splits[name].num_examples:5d} clips")
  total = sum(splits[name].num_examples for name in splits.keys())
  print(f"[cljax] speech benchmark {builder.version}: {total} clips, "
        f"{_size_on_disk(str(builder.data_dir)) / 2**20:.0f} MiB in "
        f"{builder.data_dir}"
        + (f", built in {seconds / 60:.1f} min" if seconds else
           " (already cached)"))
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
