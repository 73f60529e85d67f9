"""The embedded image deepfake stream (the image recipes' ``small`` variants).

``image_benchmark_stream`` returns a ``Stream`` with one task per generator
family of the ``ImageBenchmark`` TFDS builder
(``cljax/data/builders/image_benchmark.py``: crops of real photographs vs.
the same crops re-made by a generator family; natural-image synthesis
detection, not face forgery), in the order given. Each task's
``train``/``val``/``test`` split is the genuine crops of that part (the same
genuine crops in every task) followed by that family's fakes of the same
photos; the test photos are the same for every family.

Records follow the image-record contract::

  {"audio": uint8 (S*S*3,) the RGB image HWC row-major, "label": 0 real /
   1 fake, "utt_id": "<family|genuine>/<package>/<photo>/<crop>"}

and the stream's ``sample_rate`` is ``S*S*3`` (configs set ``crop_seconds =
eval_seconds = 1.0``: one "second" is one image).

Photos: the two Debian packages are unpacked under ``<data_dir>/
image_photos`` by ``launch/setup.sh``; when they are missing and
``apt-get`` exists, the stream fetches them itself (``apt-get download`` +
``dpkg-deb -x``: no root, no install). The benchmark is built on first use
(about a minute on 2 cores, once) and cached under the data directory
(``data_dir`` argument, ``$CLJAX_DATA_DIR``, ``$XDG_CACHE_HOME/cljax/data``,
``~/.cache/cljax/data``); a new builder ``VERSION`` builds into a new
folder.

Fallback: when the photos cannot be had, the stream is built from the three
photos bundled with scikit-learn and matplotlib only (2 train photos, 1
test photo), announced loudly on stderr and marked ``Stream.synthetic=True``
(the loop announces it again): commands run, but the numbers are NOT the
benchmark's. ``fallback=False`` raises instead, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from cljax.data import paths
from cljax.data.builders import _corpus
from cljax.data.builders import _image_generators
from cljax.data.builders import _image_sources
from cljax.data.stream import Concatenated, RandomAccessSource, Stream, Task

DEFAULT_FAMILIES = _image_generators.DEFAULT_FAMILIES
CLASS_NAMES = ("real", "fake")
PARTS = ("train", "val", "test")
_DEFAULTS = dict(seed=0, image_size=64, max_crops_per_photo=48,
                 photos="all")


def make_builder(families: Sequence[str] = DEFAULT_FAMILIES,
                 data_dir: str | None = None, seed: int = 0,
                 image_size: int = 64, max_crops_per_photo: int = 48,
                 photos: str = "all", photos_dir: str = "",
                 autoencoder_steps: int = 300):
  """The ``ImageBenchmark`` builder whose data holds ``families``.

  The default recipe (default families in any order or subset, seed, size,
  cap and photos) is the ``default`` builder config; anything else gets its
  own config (and cache folder) named after its settings.
  """
  from cljax.data.builders import image_benchmark  # pylint: disable=g-import-not-at-top
  families = _image_generators.check_families(families)
  if int(image_size) < 16 or int(image_size) % 8:
    raise ValueError(f"config.data.stream.image_size={image_size}: use a "
                     "multiple of 8, at least 16.")
  root = paths.data_dir(data_dir or "")
  settings = dict(seed=int(seed), image_size=int(image_size),
                  max_crops_per_photo=int(max_crops_per_photo),
                  photos=str(photos))
  if (set(families) <= set(DEFAULT_FAMILIES) and settings == _DEFAULTS
      and autoencoder_steps == 300):
    config = "default"  # The class's own config (by name, as TFDS wants).
  else:
    name = "custom_{}_s{}_px{}_c{}_{}_ae{}".format(
        "-".join(sorted(families)), seed, image_size, max_crops_per_photo,
        photos, autoencoder_steps)
    config = image_benchmark.ImageBenchmarkConfig(
        name=name, families=tuple(sorted(families)),
        autoencoder_steps=int(autoencoder_steps), **settings)
  return image_benchmark.ImageBenchmark(
      data_dir=root, config=config, file_format="array_record",
      photos_dir=photos_dir or _image_sources.photos_dir(root))


def is_built(builder) -> bool:
  return os.path.isfile(os.path.join(str(builder.data_dir),
                                     "dataset_info.json"))


def missing_photos(builder) -> list[str]:
  """What the builder lacks (one message per missing or changed photo)."""
  from cljax.data.builders import image_benchmark  # pylint: disable=g-import-not-at-top
  return _image_sources.missing_photos(
      image_benchmark.select_photos(builder.builder_config.photos),
      builder.photos_dir)


class _Records:
  """A TFDS split read as image records: ``image`` renamed ``audio``."""

  def __init__(self, source: RandomAccessSource,
               indices: np.ndarray | None = None):
    self._source = source
    self._indices = (np.arange(len(source)) if indices is None
                     else np.asarray(indices, np.int64))

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    record = self._source[int(self._indices[int(index)])]
    utt_id = record["utt_id"]
    return {"audio": record["image"], "label": int(record["label"]),
            "utt_id": utt_id.decode() if isinstance(utt_id, bytes)
                      else str(utt_id)}


def _subset(length: int, cap: int | None) -> np.ndarray | None:
  # Evenly spaced indices of the split's stored order (TFDS shuffles by a
  # hash of the key: a fixed, photo-mixed order), so a cap is deterministic
  # and the genuine subset is the same in every task.
  if cap is None or cap >= length:
    return None
  return np.unique(np.linspace(0, length - 1, cap).round().astype(np.int64))


def _warn(message: str) -> None:
  bar = "!" * 78
  print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


def build(builder) -> None:
  """Builds ``builder`` with a one-line notice of where and how long."""
  families = builder.builder_config.families
  print(f"[cljax] Building the image benchmark ({len(families)} families) in "
        f"{builder.data_dir}: about a minute on 2 cores, once.",
        file=sys.stderr, flush=True)
  builder.download_and_prepare()


def image_benchmark_stream(families: Sequence[str] = DEFAULT_FAMILIES,
                           data_dir: str | None = None, seed: int = 0,
                           image_size: int = 64,
                           max_crops_per_photo: int = 48,
                           num_train: int | None = None,
                           num_test: int | None = None,
                           fallback: bool = True, fetch: bool = True,
                           photos_dir: str = "") -> Stream:
  """The embedded image deepfake stream: one task per generator family.

  Args:
    families: task order (fixed by the config); see
      ``_image_generators.GENERATORS`` (default: all six, in its order).
    data_dir: cache folder; default ``cljax.data.paths.data_dir()``.
    seed: split, crop and generator seed (non-default: its own copy).
    image_size: stored side S (non-default: its own copy).
    max_crops_per_photo: genuine crops per photo at most (non-default: own
      copy).
    num_train, num_test: at most this many records per class in each task's
      train (and val) / test split, evenly spaced over the photos (the same
      genuine records in every task); None keeps all.
    fallback: if the photos cannot be had, build from the three bundled
      photos (loudly, ``synthetic=True``) instead of raising.
    fetch: fetch missing Debian photos with ``apt-get download`` when the
      benchmark is not cached.
    photos_dir: where the Debian packages are unpacked (default
      ``<data_dir>/image_photos``).

  Returns:
    ``Stream(name="image_benchmark", class_names=("real", "fake"),
    sample_rate=S*S*3)``, tasks named after the families with
    ``metadata={"family", "generator", "image_size"}``.
  """
  families = _image_generators.check_families(families)
  for field, value in (("num_train", num_train), ("num_test", num_test)):
    if value is not None and int(value) < 1:
      raise ValueError(f"config.data.stream.{field}={value}: use None (all) "
                       "or a positive count per class.")
  kwargs = dict(data_dir=data_dir, seed=seed, image_size=image_size,
                max_crops_per_photo=max_crops_per_photo,
                photos_dir=photos_dir)
  builder = make_builder(families, **kwargs)
  synthetic = False
  if not is_built(builder):
    missing = missing_photos(builder)
    if missing and fetch and shutil.which("apt-get"):
      print("[cljax] Fetching the image benchmark's photos (apt-get download "
            f"{' '.join(_image_sources.DEBIAN_PACKAGES)}) into "
            f"{builder.photos_dir}.", file=sys.stderr, flush=True)
      _image_sources.fetch_packages(builder.photos_dir)
      missing = missing_photos(builder)
    if missing:
      message = (f"The image benchmark is not cached in {builder.data_dir} "
                 f"and {len(missing)} of its photos are missing or changed; "
                 f"first: {missing[0]} Run launch/setup.sh (it fetches them).")
      if not fallback:
        raise RuntimeError(message + " (config.data.stream.fallback=False)")
      builder = make_builder(families, photos="bundled", **kwargs)
      _warn("WARNING: " + message + "\nFALLING BACK TO THE 3 PHOTOS BUNDLED "
            "WITH SCIKIT-LEARN AND MATPLOTLIB: this is NOT the image "
            "benchmark; its numbers mean nothing.")
      synthetic = True
      if missing_photos(builder):
        raise RuntimeError("The image benchmark's fallback photos are missing "
                           "or changed too: " + " ".join(missing_photos(builder)))
    if not is_built(builder):
      build(builder)
  caps = {"train": num_train, "val": num_train, "test": num_test}
  size = int(builder.builder_config.image_size)  # What was stored.

  def records(split: str, part: str) -> _Records:
    source = _corpus.ExampleSource(builder, split)
    cap = caps[part]
    return _Records(source, _subset(len(source), None if cap is None
                                    else int(cap)))

  # The fallback's 3 photos leave no val photo: its tasks have no "val".
  parts = [p for p in PARTS if f"genuine_{p}" in builder.info.splits]
  genuine = {part: records(f"genuine_{part}", part) for part in parts}
  tasks = []
  for family in families:
    splits = {part: Concatenated([genuine[part],
                                  records(f"{family}_{part}", part)])
              for part in parts}
    doc = (_image_generators.GENERATORS[family].__doc__ or "").strip()
    tasks.append(Task(name=family, splits=splits, metadata={
        "family": family, "generator": doc.splitlines()[0] if doc else family,
        "image_size": size}))
  return Stream(name="image_benchmark", tasks=tasks, class_names=CLASS_NAMES,
                sample_rate=size * size * 3, synthetic=synthetic)


def main(argv: Sequence[str]) -> int:
  """``python -m cljax.data.image_stream [--check] [--data_dir=DIR]``.

  Fetches the photos if needed and builds the default benchmark (exit 0;
  2 when the photos cannot be had); ``--check`` builds nothing and exits 0
  iff the current version is cached (``launch/setup.sh`` uses both).
  """
  import time  # pylint: disable=g-import-not-at-top
  data_dir = None
  for arg in argv:
    if arg.startswith("--data_dir="):
      data_dir = arg.split("=", 1)[1]
    elif arg != "--check":
      print(f"unknown argument {arg!r}; use --check and/or --data_dir=DIR",
            file=sys.stderr)
      return 2
  builder = make_builder(data_dir=data_dir)
  if "--check" in argv:
    built = is_built(builder)
    print(f"[cljax] image benchmark {builder.version} "
          f"{'cached' if built else 'not cached'} in {builder.data_dir}")
    return 0 if built else 1
  start = time.time()
  try:
    stream = image_benchmark_stream(data_dir=data_dir, fallback=False)
  except RuntimeError as e:
    print(f"[cljax] {e}", file=sys.stderr)
    return 2
  task = stream.tasks[0]
  counts = ", ".join(f"{part} {len(task.splits[part]) // 2}"
                     for part in task.splits)
  print(f"[cljax] image benchmark {builder.version}: {len(stream.tasks)} "
        f"families x ({counts}) images per class in {builder.data_dir} "
        f"({time.time() - start:.0f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
