"""Tests of the image benchmark builder, its sources, stream and fallback.

Most tests build a small config from the three photos bundled with
scikit-learn and matplotlib (always installed): 32-px images, 6 crops per
photo, 20 autoencoder steps, every family. The checks of the full default
build run on the cached copy when there is one (``python -m
cljax.data.image_stream`` builds it) and skip otherwise.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from cljax.data import image_stream
from cljax.data.builders import _image_generators
from cljax.data.builders import _image_sources
from cljax.data.builders import image_benchmark
from cljax.data.streams import STREAMS, make_stream

FAMILIES = _image_generators.DEFAULT_FAMILIES
SMALL = dict(image_size=32, max_crops_per_photo=6, autoencoder_steps=20)


def _small_builder(data_dir, photos_dir="", photos="bundled"):
  return image_stream.make_builder(FAMILIES, data_dir=str(data_dir),
                                   photos=photos, photos_dir=str(photos_dir),
                                   **SMALL)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  builder = _small_builder(tmp_path_factory.mktemp("data"))
  builder.download_and_prepare()
  return builder


def _split(builder, split):
  return list(builder.as_data_source(split=split))


def test_photo_list_is_28_distinct_checked_files():
  assert len(_image_sources.PHOTOS) == 28
  assert len({p.name for p in _image_sources.PHOTOS}) == 28
  assert all(re.fullmatch("[0-9a-f]{64}", p.sha256)
             for p in _image_sources.PHOTOS)
  counts = {}
  for photo in _image_sources.PHOTOS:
    counts[photo.package] = counts.get(photo.package, 0) + 1
  assert counts == {"lomiri-wallpapers-16.04": 13, "mate-backgrounds": 12,
                    "scikit-learn": 2, "matplotlib": 1}
  # The bundled photos are always there and unchanged.
  bundled = image_benchmark.select_photos("bundled")
  assert len(bundled) == 3 and not _image_sources.missing_photos(bundled)


def test_missing_or_changed_photo_is_named(tmp_path):
  photo = _image_sources.PHOTOS[0]
  with pytest.raises(_image_sources.PhotoError,
                     match=re.escape(photo.path) + ".*apt-get download "
                     + photo.package):
    _image_sources.check_photo(photo, str(tmp_path))
  path = tmp_path / photo.package / photo.path
  path.parent.mkdir(parents=True)
  path.write_bytes(b"not the photo")
  with pytest.raises(_image_sources.PhotoError,
                     match=re.escape(str(path)) + " .*has SHA-256 "):
    _image_sources.check_photo(photo, str(tmp_path))
  assert len(_image_sources.missing_photos(_image_sources.PHOTOS[:2],
                                           str(tmp_path))) == 2


def test_split_photos_partitions_deterministically():
  names = [f"pkg/p{i}" for i in range(28)]
  parts = image_benchmark.split_photos(names, seed=0)
  assert [len(parts[p]) for p in ("train", "val", "test")] == [17, 3, 8]
  assert sorted(sum(parts.values(), [])) == sorted(names)
  assert parts == image_benchmark.split_photos(list(reversed(names)), 0)
  assert parts != image_benchmark.split_photos(names, seed=1)
  # Three photos (the fallback): two to train, none to val, one to test.
  tiny = image_benchmark.split_photos(["a", "b", "c"], 0)
  assert [len(tiny[p]) for p in ("train", "val", "test")] == [2, 0, 1]


def test_match_moments_and_depth_to_space():
  rng = np.random.default_rng(0)
  # A narrow source range, so the matched fake is not clipped at 0 or 255.
  source = rng.integers(90, 160, (16, 16, 3)).astype(np.uint8)
  fake = rng.normal(0, 5, (16, 16, 3)) + np.asarray([10.0, 300.0, -20.0])
  out = _image_generators.match_moments(fake, source)
  assert out.dtype == np.uint8
  np.testing.assert_allclose(out.mean((0, 1)), source.mean((0, 1)), atol=0.6)
  np.testing.assert_allclose(out.std((0, 1)), source.std((0, 1)), rtol=0.02)
  # depth_to_space: channel (dy * 2 + dx) * C + c lands at (2y + dy, 2x + dx).
  x = np.arange(2 * 2 * 4, dtype=np.float32).reshape(1, 2, 2, 4)
  y = _image_generators.depth_to_space(x, 2)
  assert y.shape == (1, 4, 4, 1)
  np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 4, 5], [2, 3, 6, 7],
                                               [8, 9, 12, 13],
                                               [10, 11, 14, 15]])


def test_small_build_counts_labels_shapes_and_photo_split(built):
  splits = built.info.splits
  # The fallback's 3 photos: no val split (TFDS refuses empty splits).
  assert sorted(splits.keys()) == sorted(
      f"{s}_{p}" for s in ("genuine",) + FAMILIES for p in ("train", "test"))
  genuine = {p: _split(built, f"genuine_{p}") for p in ("train", "test")}
  photos = {p: {r["photo"].decode() for r in genuine[p]} for p in genuine}
  assert len(photos["train"]) == 2 and len(photos["test"]) == 1
  assert not photos["train"] & photos["test"]
  for part, records in genuine.items():
    assert 0 < len(records) <= 6 * len(photos[part])  # The per-photo cap.
    ids = sorted(r["utt_id"].decode().split("/", 1)[1] for r in records)
    for family in FAMILIES:
      fakes = _split(built, f"{family}_{part}")
      # One fake per genuine crop, from the same photos.
      assert sorted(r["utt_id"].decode().split("/", 1)[1]
                    for r in fakes) == ids
      assert {r["label"] for r in fakes} == {1}
      assert {r["family"].decode() for r in fakes} == {family}
    assert {r["label"] for r in records} == {0}
  record = genuine["train"][0]
  assert record["image"].dtype == np.uint8
  assert record["image"].shape == (32 * 32 * 3,)
  assert built.info.features["image"].to_json_content().encoding == "bytes"
  # Texture filter: every stored genuine crop has texture (the filter ran
  # on the 36-px working crop; the channel keeps most of it).
  energy = [image_benchmark.gradient_energy(r["image"].reshape(32, 32, 3))
            for r in genuine["train"]]
  assert min(energy) > 2.0


def test_fakes_keep_their_source_moments(built):
  # Matched moments: each fake's channel means sit within a few levels of
  # its own source crop's (JPEG q90 moves them a little).
  genuine = {r["utt_id"].decode().split("/", 1)[1]:
             r["image"].reshape(32, 32, 3).astype(float)
             for r in _split(built, "genuine_test")}
  for family in FAMILIES:
    for record in _split(built, f"{family}_test"):
      source = genuine[record["utt_id"].decode().split("/", 1)[1]]
      fake = record["image"].reshape(32, 32, 3).astype(float)
      np.testing.assert_allclose(fake.mean((0, 1)), source.mean((0, 1)),
                                 atol=3.0, err_msg=family)
      np.testing.assert_allclose(fake.std((0, 1)), source.std((0, 1)),
                                 rtol=0.2, atol=2.0, err_msg=family)
      assert not np.array_equal(fake, source), family


def test_build_is_deterministic(built, tmp_path):
  again = _small_builder(tmp_path)
  again.download_and_prepare()
  for split in ("genuine_test", "autoencoder_test", "decoder_d2s_train"):
    a = {r["utt_id"]: r["image"] for r in _split(built, split)}
    b = {r["utt_id"]: r["image"] for r in _split(again, split)}
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def _patched_make_builder(built, empty_dir):
  real = image_stream.make_builder

  def make_builder(families, photos="all", **kwargs):
    del kwargs  # The test's small settings instead of the defaults.
    return real(families, data_dir=os.path.dirname(os.path.dirname(
        os.path.dirname(str(built.data_dir)))), photos=photos,
                photos_dir=str(empty_dir), **SMALL)
  return make_builder


def test_fallback_stream_is_loud_and_follows_the_record_contract(
    built, tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(image_stream, "make_builder",
                      _patched_make_builder(built, tmp_path))
  stream = image_stream.image_benchmark_stream(fetch=False)
  assert stream.synthetic and stream.task_names == list(FAMILIES)
  err = capsys.readouterr().err
  assert "FALLING BACK TO THE 3 PHOTOS BUNDLED" in err
  assert "Bridge_by_Sander_Klootwijk.jpg" in err  # Names a missing photo.
  assert stream.sample_rate == 32 * 32 * 3
  assert tuple(stream.class_names) == ("real", "fake")
  tests = [task.split("test") for task in stream.tasks]
  genuine = [[s[i]["utt_id"] for i in range(len(s)) if s[i]["label"] == 0]
             for s in tests]
  assert genuine[0] == genuine[3] and genuine[0]
  record = tests[2][len(tests[2]) - 1]
  assert record["label"] == 1 and isinstance(record["utt_id"], str)
  assert record["utt_id"].startswith("decoder_d2s/")
  assert record["audio"].dtype == np.uint8
  assert record["audio"].shape == (32 * 32 * 3,)
  with pytest.raises(RuntimeError, match="Bridge_by_Sander_Klootwijk"):
    image_stream.image_benchmark_stream(fetch=False, fallback=False)


def test_stream_caps_and_family_order(built, tmp_path, monkeypatch):
  monkeypatch.setattr(image_stream, "make_builder",
                      _patched_make_builder(built, tmp_path))
  stream = image_stream.image_benchmark_stream(
      families=("nearest_x2", "jpeg_q30"), num_train=3, num_test=2,
      fetch=False)
  assert stream.task_names == ["nearest_x2", "jpeg_q30"]
  for task in stream.tasks:
    labels = {p: [task.split(p)[i]["label"] for i in range(len(task.split(p)))]
              for p in ("train", "test")}
    assert labels == {"train": [0, 0, 0, 1, 1, 1], "test": [0, 0, 1, 1]}
  with pytest.raises(ValueError, match="num_test"):
    image_stream.image_benchmark_stream(num_test=0, fetch=False)


def test_registry_and_config_errors(tmp_path):
  assert STREAMS["image_benchmark"] is image_stream.image_benchmark_stream
  with pytest.raises(ValueError, match="unknown family 'gan'"):
    make_stream({"name": "image_benchmark", "families": ("gan",),
                 "data_dir": str(tmp_path)})
  with pytest.raises(ValueError, match="repeats"):
    image_stream.make_builder(("jpeg_q30", "jpeg_q30"))
  with pytest.raises(ValueError, match="image_size"):
    image_stream.make_builder(image_size=30)


def test_new_version_builds_into_its_own_folder(built, monkeypatch):
  old_dir = str(built.data_dir)
  monkeypatch.setattr(image_benchmark.ImageBenchmark, "VERSION",
                      image_benchmark.tfds.core.Version("99.0.0"))
  root = os.path.dirname(os.path.dirname(os.path.dirname(old_dir)))
  newer = _small_builder(root)
  assert str(newer.data_dir) != old_dir and "99.0.0" in str(newer.data_dir)
  assert image_stream.is_built(built) and not image_stream.is_built(newer)


def test_default_builder_goes_under_the_data_dir(tmp_path):
  builder = image_stream.make_builder(data_dir=str(tmp_path / "cfg"))
  assert str(builder.data_dir).startswith(str(tmp_path / "cfg"))
  assert builder.builder_config.name == "default"
  assert builder.photos_dir == str(tmp_path / "cfg" / "image_photos")


def test_cached_default_build_splits_by_photo():
  builder = image_stream.make_builder()
  if not image_stream.is_built(builder):
    pytest.skip("default image benchmark not cached here (build it with "
                "python -m cljax.data.image_stream)")
  photos = {}
  for part in ("train", "val", "test"):
    records = _split(builder, f"genuine_{part}")
    photos[part] = {r["photo"].decode() for r in records}
    counts = {builder.info.splits[f"{s}_{part}"].num_examples
              for s in ("genuine",) + FAMILIES}
    assert counts == {len(records)}  # Every family: one fake per crop.
    assert len(records) <= 48 * len(photos[part])
  assert [len(photos[p]) for p in ("train", "val", "test")] == [17, 3, 8]
  assert not (photos["train"] & photos["test"] or photos["train"]
              & photos["val"] or photos["val"] & photos["test"])
