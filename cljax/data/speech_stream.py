"""The embedded real-speech deepfake stream (default of the audio configs).

``speech_benchmark_stream`` returns a ``Stream`` with one task per fake
generator family of the ``SpeechBenchmark`` TFDS builder
(``cljax/data/builders/speech_benchmark.py``), in the order given. Each
task's ``train``/``val``/``test`` split is the genuine clips of that part
(the same genuine clips in every task) followed by that family's fakes of
the same prompts; the test prompts are the same for every family.

The benchmark is built on first use (a few minutes on 2 cores, once) and
cached under the data directory, which is, in order of precedence: the
``data_dir`` argument (``config.data.stream.data_dir``), ``$CLJAX_DATA_DIR``,
``$XDG_CACHE_HOME/cljax/data``, ``~/.cache/cljax/data``. A new builder
``VERSION`` builds into a new folder, so a changed recipe is never read
from a stale cache. ``python -m cljax.data.build`` builds it ahead of time.

Fallback: when the cache lacks the benchmark and this machine cannot build
it (the Debian packages, ``g722`` or ``pyworld`` are missing), the stream is
``synthetic_audio_stream`` with as many tasks, a loud warning on stderr and
``Stream.synthetic=True`` (the training loop announces it again). Pass
``fallback=False`` to get an error naming what to install instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Mapping, Sequence

from cljax.data import paths
from cljax.data.builders import _corpus
from cljax.data.builders import _speech_generators
from cljax.data.builders import _speech_sources
from cljax.data.stream import Concatenated, RandomAccessSource, Stream, Task
from cljax.data.synthetic import synthetic_audio_stream

DEFAULT_FAMILIES = _speech_generators.DEFAULT_FAMILIES
_DEFAULTS = dict(seed=0, clip_seconds=2.5, max_prompts=None)


def missing_packages(families: Sequence[str],
                     sounds_dir: str = _speech_sources.SOUNDS_DIR,
                     transcripts: str = _speech_sources.TRANSCRIPTS
                     ) -> list[str]:
  """What this machine lacks to build ``families`` (install hints)."""
  missing = []
  if not os.path.isdir(sounds_dir):
    missing.append(f"{sounds_dir} (apt-get install "
                   "asterisk-core-sounds-en-g722)")
  if not os.path.isfile(transcripts):
    missing.append(f"{transcripts} (apt-get install asterisk-core-sounds-en)")
  if importlib.util.find_spec("G722") is None:
    missing.append("G722 (pip install g722==1.2.8)")
  return missing + _speech_generators.missing_requirements(families)


def make_builder(families: Sequence[str] = DEFAULT_FAMILIES,
                 data_dir: str | None = None, seed: int = 0,
                 clip_seconds: float = 2.5, max_prompts: int | None = None,
                 num_workers: int | None = None):
  """The ``SpeechBenchmark`` builder whose data holds ``families``.

  The default recipe (every default family, default seed, clip length and
  prompt count) is the ``default`` builder config, shared by every subset or
  reordering of the default families; anything else gets its own config
  named after its settings.
  """
  from cljax.data.builders import speech_benchmark  # pylint: disable=g-import-not-at-top
  families = tuple(families)
  for family in families:
    if family not in _speech_generators.GENERATORS:
      raise ValueError(
          f"config.data.stream.families: unknown family {family!r}; choose "
          f"from {sorted(_speech_generators.GENERATORS)}.")
  if len(set(families)) != len(families):
    raise ValueError(f"config.data.stream.families={families} repeats a "
                     "family; each task needs its own.")
  settings = dict(seed=seed, clip_seconds=float(clip_seconds),
                  max_prompts=max_prompts)
  if set(families) <= set(DEFAULT_FAMILIES) and settings == _DEFAULTS:
    config = "default"  # The class's own config (by name, as TFDS wants).
  else:
    name = "custom_{}_s{}_c{}_n{}".format(
        "-".join(sorted(families)), seed,
        str(float(clip_seconds)).replace(".", "p"), max_prompts or "all")
    config = speech_benchmark.SpeechBenchmarkConfig(
        name=name, families=tuple(sorted(families)), **settings)
  return speech_benchmark.SpeechBenchmark(
      data_dir=paths.data_dir(data_dir or ""), config=config,
      file_format="array_record", num_workers=num_workers)


def is_built(builder) -> bool:
  return os.path.isfile(os.path.join(str(builder.data_dir),
                                     "dataset_info.json"))


class _Records:
  """A TFDS data source read as cljax records (``utt_id`` as ``str``)."""

  def __init__(self, source: RandomAccessSource):
    self._source = source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    record = self._source[int(index)]
    utt_id = record["utt_id"]
    return {"audio": record["audio"], "label": int(record["label"]),
            "utt_id": utt_id.decode() if isinstance(utt_id, bytes)
                      else str(utt_id)}


def _warn(message: str) -> None:
  bar = "!" * 78
  print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


def build(builder, num_prompts_hint: int = 551) -> None:
  """Builds ``builder`` with a one-line notice of where and how long."""
  families = builder.builder_config.families
  print(f"[cljax] Building the speech benchmark ({num_prompts_hint} prompts x "
        f"{len(families)} families) in {builder.data_dir}: 2-4 minutes on "
        "2 cores, once.", file=sys.stderr, flush=True)
  builder.download_and_prepare()


def speech_benchmark_stream(families: Sequence[str] = DEFAULT_FAMILIES,
                            data_dir: str | None = None, seed: int = 0,
                            clip_seconds: float = 2.5,
                            max_prompts: int | None = None,
                            fallback: bool = True,
                            num_workers: int | None = None) -> Stream:
  """The real-speech deepfake stream: one task per generator family.

  Args:
    families: task order (fixed by the config); see
      ``_speech_generators.GENERATORS`` for the available families.
    data_dir: cache folder; default ``cljax.data.paths.data_dir()``.
    seed: split and channel seed (a non-default seed builds its own copy).
    clip_seconds: stored clip length (non-default builds its own copy).
    max_prompts: use the first N prompts only (fixtures; own copy).
    fallback: if the benchmark is neither cached nor buildable here, return
      the synthetic stream (loudly) instead of raising.
    num_workers: build processes (default: min(2, cores)).

  Returns:
    ``Stream(name="speech_benchmark", class_names=("bonafide", "spoof"),
    sample_rate=16000)`` with tasks named after the families and
    ``metadata={"family": ..., "generator": ...}``; or, on fallback, the
    synthetic stream with ``synthetic=True``.

  Example::

    stream = speech_benchmark_stream(families=("world", "espeak"))
    record = stream.tasks[0].split("test")[0]   # {"audio", "label", "utt_id"}
  """
  families = tuple(families)
  if not families:
    raise ValueError("config.data.stream.families is empty; name at least "
                     f"one of {sorted(_speech_generators.GENERATORS)}.")
  builder = make_builder(families, data_dir or None, seed, clip_seconds,
                         max_prompts, num_workers)
  if not is_built(builder):
    missing = missing_packages(families, builder.builder_config.sounds_dir,
                               builder.builder_config.transcripts)
    if missing:
      message = ("The speech benchmark is not cached in "
                 f"{builder.data_dir} and cannot be built here; missing: "
                 + "; ".join(missing)
                 + ". Run launch/setup.sh as root (it installs them).")
      if not fallback:
        raise RuntimeError(message + " (config.data.stream.fallback=False)")
      _warn("WARNING: " + message + "\nFALLING BACK TO THE SYNTHETIC "
            f"STREAM ({len(families)} procedural tasks): results are NOT "
            "on real speech.")
      return synthetic_audio_stream(num_tasks=len(families), seed=seed,
                                    seconds=min(float(clip_seconds), 2.0))
    build(builder)
  parts = ("train", "val", "test")
  # ExampleSource: as_data_source's records, read ~25 % faster.
  genuine = {part: _Records(_corpus.ExampleSource(builder, f"genuine_{part}"))
             for part in parts}
  tasks = []
  for family in families:
    splits = {part: Concatenated([genuine[part], _Records(
        _corpus.ExampleSource(builder, f"{family}_{part}"))])
              for part in parts}
    doc = (_speech_generators.GENERATORS[family].__doc__ or "").strip()
    tasks.append(Task(name=family, splits=splits, metadata={
        "family": family, "generator": doc.splitlines()[0] if doc else family}))
  return Stream(name="speech_benchmark", tasks=tasks,
                class_names=("bonafide", "spoof"), sample_rate=16000)
