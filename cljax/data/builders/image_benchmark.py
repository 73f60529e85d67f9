"""TFDS builder of the embedded image deepfake benchmark.

Scope, honestly: *natural-image synthesis detection* — telling crops of real
photographs from the same crops re-made by a generator family. It is not a
face-forgery benchmark (the face photos that ship offline number about
fifteen: too few); it exercises the image path of cljax (builders, FFT
front end, backbones, strategies) on real images with real forgetting.

Genuine: crops of the 28 listed photographs (``_image_sources``: Debian
wallpaper packages' photos plus the scikit-learn and matplotlib samples),
each file checked against its SHA-256. Per photo: ``NUM_SCALES`` random
downscales (shorter side 160-640 px, never more than 1/1.5 of the original,
so no genuine crop is up-sampled and the camera's own JPEG grid is washed
out), random ``W x W`` crops (``W``: 9/8 of ``S`` down to a multiple of
4, 72 for S = 64), a texture filter (mean luma gradient >= ``min_gradient``:
flat sky and walls are rejected, on them every generator is invisible) and
at most ``max_crops_per_photo`` crops.

Fake: one crop per genuine crop and family (``_image_generators``), moments
matched to its source, then genuine and fake through the same channel
(resize ``W -> S``, JPEG q 90). The genuine crops are shared by every task
(as in the speech benchmark): task k is "genuine vs. family k", the same
genuine images in every task, each fake made from one of them.

Splits are by source photo (fixed-seed permutation of the photo names:
60 % train, 10 % val, 30 % test), the same photos for every family. TFDS
split names are ``f"{source}_{part}"``, ``source`` in ``("genuine",) +
families``.

The default build (S = 64, 48 crops per photo at most): 1115 genuine crops
(train / val / test 638 / 128 / 349 from 17 / 3 / 8 photos), one fake of
each per family, 7805 images, 82 MB; about a minute on 2 cores, half of it
training the autoencoder.

Bump ``VERSION`` whenever the recipe changes: the cache is
``<data_dir>/image_benchmark/<config>/<VERSION>``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import zlib
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from cljax.data.builders import _image_generators
from cljax.data.builders import _image_sources

PARTS = ("train", "val", "test")
PART_FRACTIONS = (0.6, 0.1, 0.3)
CLASS_NAMES = ("real", "fake")
NUM_SCALES = 4
SHORT_SIDE_RANGE = (160, 640)
MIN_DOWNSCALE = 1.5


@dataclasses.dataclass(eq=False)
class ImageBenchmarkConfig(tfds.core.BuilderConfig):
  """What to build.

  Attributes:
    families: generator families built (each a task of the stream).
    image_size: stored side S (images are S x S x 3 uint8).
    max_crops_per_photo: cap of genuine crops per photo.
    min_gradient: texture filter, mean |luma gradient| (0-255 scale).
    autoencoder_steps: training steps of the ``autoencoder`` family.
    photos: ``"all"`` (the listed photos) or ``"bundled"`` (the three
      scikit-learn/matplotlib photos only: the fallback, not the benchmark).
    seed: seeds the split, the crops and every generator.
  """

  families: Sequence[str] = _image_generators.DEFAULT_FAMILIES
  image_size: int = 64
  max_crops_per_photo: int = 48
  min_gradient: float = 4.0
  autoencoder_steps: int = 300
  photos: str = "all"
  seed: int = 0


def working_size(image_size: int) -> int:
  """``W``: 9/8 of ``S``, down to a multiple of 4 (the x4 family needs it)."""
  return int(-(-image_size * 9 // 8) // 4 * 4)


def select_photos(which: str) -> tuple[_image_sources.Photo, ...]:
  if which == "all":
    return _image_sources.PHOTOS
  if which == "bundled":
    return tuple(p for p in _image_sources.PHOTOS
                 if p.package in _image_sources.BUNDLED_PACKAGES)
  raise ValueError(f"ImageBenchmarkConfig.photos={which!r}: use 'all' or "
                   "'bundled'.")


def split_photos(names: Sequence[str], seed: int) -> dict[str, list[str]]:
  """``{part: sorted names}``: a fixed-seed partition of the photos."""
  names = sorted(names)
  order = np.random.default_rng(seed).permutation(len(names))
  n_train = max(1, int(round(PART_FRACTIONS[0] * len(names))))
  n_val = int(round(PART_FRACTIONS[1] * len(names)))
  if n_train + n_val >= len(names):  # Tiny lists (the fallback): keep a test.
    n_val = max(0, len(names) - n_train - 1)
  bounds = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}
  return {part: sorted(names[i] for i in idx) for part, idx in bounds.items()}


def _rng(seed: int, *names: str) -> np.random.Generator:
  # crc32 of names (not positions): a photo's crops and a family's fakes do
  # not change when the lists are reordered or extended.
  return np.random.default_rng([seed] + [zlib.crc32(n.encode()) for n in names])


def gradient_energy(crop: np.ndarray) -> float:
  """Mean absolute luma gradient (0-255 scale) of a uint8 RGB crop."""
  luma = crop.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114],
                                              np.float32)
  return float((np.abs(np.diff(luma, axis=0)).mean()
                + np.abs(np.diff(luma, axis=1)).mean()) / 2)


def sample_crops(path: str, name: str, size: int, cap: int,
                 min_gradient: float, seed: int) -> list[np.ndarray]:
  """Up to ``cap`` textured ``size x size`` crops of one photo."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    native = min(image.size)
  rng = _rng(seed, "crops", name)
  high = min(SHORT_SIDE_RANGE[1], native / MIN_DOWNSCALE)
  low = min(SHORT_SIDE_RANGE[0], high)
  sides = sorted({max(size + 8, int(round(s))) for s in
                  np.exp(rng.uniform(np.log(low), np.log(high), NUM_SCALES))})
  crops = []
  per_scale = -(-cap // len(sides))
  for side in sides:
    photo = _image_sources.load_photo(path, side)
    height, width = photo.shape[:2]
    kept = 0
    for _ in range(4 * per_scale):
      if kept == per_scale or len(crops) == cap:
        break
      top = int(rng.integers(0, height - size + 1))
      left = int(rng.integers(0, width - size + 1))
      crop = photo[top:top + size, left:left + size]
      if gradient_energy(crop) >= min_gradient:
        crops.append(np.ascontiguousarray(crop))
        kept += 1
  return crops


def build_arrays(config: ImageBenchmarkConfig, photos_dir: str = "",
                 verbose: bool = True):
  """Every stored image of ``config``, in memory.

  ``photos_dir``: where the Debian packages are unpacked (default
  ``cljax.data.paths.data_dir()/image_photos``); every photo is checked
  against its SHA-256 first (``PhotoError`` naming a missing/changed one).

  Returns:
    ``(images, parts)``: ``images[source][part]`` is a list of ``(photo,
    index, uint8 [S, S, 3])`` and ``parts`` the photo names per part.
  """
  start = time.time()
  photos = select_photos(config.photos)
  root = photos_dir or _image_sources.photos_dir()
  paths = {p.name: _image_sources.check_photo(p, root) for p in photos}
  parts = split_photos(list(paths), config.seed)
  size = working_size(config.image_size)
  crops = {part: [] for part in PARTS}  # (photo, index, crop)
  for part in PARTS:
    for name in parts[part]:
      for index, crop in enumerate(sample_crops(
          paths[name], name, size, config.max_crops_per_photo,
          config.min_gradient, config.seed)):
        crops[part].append((name, index, crop))
  if verbose:
    print(f"[cljax] image benchmark: {sum(map(len, crops.values()))} genuine "
          f"crops of {len(paths)} photos in {time.time() - start:.1f} s",
          file=sys.stderr, flush=True)
  families = _image_generators.check_families(config.families)
  extra = {}
  if "autoencoder" in families:
    t0 = time.time()
    extra["autoencoder_fn"] = _image_generators.train_autoencoder(
        np.stack([c for _, _, c in crops["train"]]),
        steps=config.autoencoder_steps, seed=config.seed)
    if verbose:
      print(f"[cljax] image benchmark: autoencoder trained "
            f"({config.autoencoder_steps} steps) in {time.time() - t0:.1f} s",
            file=sys.stderr, flush=True)
  # The genuine crops after the channel's resize: the fakes' moments are
  # matched to these once more before the JPEG (_image_generators.channel).
  resized = {part: [_image_generators.resize(c, config.image_size, "lanczos")
                    for _, _, c in crops[part]] for part in PARTS}
  images = {"genuine": {part: [(n, i, _image_generators.channel(
      c, config.image_size)) for n, i, c in crops[part]] for part in PARTS}}
  for family in families:
    t0 = time.time()
    generate = _image_generators.GENERATORS[family]
    images[family] = {}
    for part in PARTS:
      if not crops[part]:
        images[family][part] = []
        continue
      sources = np.stack([c for _, _, c in crops[part]])
      fakes = generate(sources, _rng(config.seed, family, part),
                       family_rng=_rng(config.seed, family, "weights"),
                       **extra)
      images[family][part] = [
          (n, i, _image_generators.channel(
              _image_generators.match_moments(fake, source),
              config.image_size, reference=reference))
          for (n, i, _), fake, source, reference in zip(
              crops[part], fakes, sources, resized[part])]
    if verbose:
      print(f"[cljax] image benchmark: {family} in {time.time() - t0:.1f} s",
            file=sys.stderr, flush=True)
  return images, parts


class ImageBenchmark(tfds.core.GeneratorBasedBuilder):
  """Genuine photo crops vs. one generator family per task, one channel."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "28 photos, 6 families, S=64, shared channel (Lanczos + "
               "JPEG q90), split by photo.",
  }
  BUILDER_CONFIGS = [ImageBenchmarkConfig(name="default")]
  # Nothing is downloaded through TFDS (no URL checksums to look up).
  _checksums_path = None

  def __init__(self, *, photos_dir: str = "", **kwargs):
    # Where the photos are read from; not part of the config (the files are
    # checked by hash, so the data do not depend on the folder).
    self.photos_dir = photos_dir or _image_sources.photos_dir(
        kwargs.get("data_dir"))
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # S*S*3 raw bytes, HWC row-major (the image-record contract).
            "image": tfds.features.Tensor(
                shape=(None,), dtype=np.uint8,
                encoding=tfds.features.Encoding.BYTES),
            "label": tfds.features.ClassLabel(names=CLASS_NAMES),
            "utt_id": tfds.features.Text(),
            "photo": tfds.features.Text(),
            "family": tfds.features.Text(),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    images, _ = build_arrays(self.builder_config, self.photos_dir)
    # TFDS refuses empty splits: the fallback's 3 photos leave no val photo.
    return {f"{source}_{part}": self._generate_examples(images[source][part],
                                                        source)
            for source in images for part in PARTS if images[source][part]}

  def _generate_examples(self, items, source):
    label = 0 if source == "genuine" else 1
    for photo, index, image in items:
      utt_id = f"{source}/{photo}/{index:03d}"
      yield utt_id, {"image": np.asarray(image, np.uint8).reshape(-1),
                     "label": label, "utt_id": utt_id, "photo": photo,
                     "family": source}
