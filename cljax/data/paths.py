"""Where cljax keeps prepared data (built benchmarks, corpus caches).

In order: an explicit folder (a stream's ``data_dir`` field), else
``$CLJAX_DATA_DIR``, else ``$XDG_CACHE_HOME/cljax/data`` (``~/.cache`` when
``XDG_CACHE_HOME`` is unset). Nothing here is ever downloaded: the folder
holds what the builders made from the embedded sources or the user's copy.
"""

from __future__ import annotations

import os


def data_dir(explicit: str = "") -> str:
  """The absolute data folder: ``explicit``, else the environment's default."""
  if explicit:
    chosen = explicit
  elif os.environ.get("CLJAX_DATA_DIR"):
    chosen = os.environ["CLJAX_DATA_DIR"]
  else:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    chosen = os.path.join(cache, "cljax", "data")
  return os.path.abspath(os.path.expanduser(chosen))
