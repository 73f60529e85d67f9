"""Tests for the grain train pipeline and the ordered eval batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cljax.data import loader
from cljax.data.synthetic import synthetic_audio_stream


def _indexed_source(num, length=50, dtype=np.int16, offset=0):
  """Record i's audio is [i, i, ...] (+ a ramp), so batches reveal indices."""
  return [{"audio": (np.full(length, i + offset) * 100
                     + np.arange(length) % 7).astype(dtype),
           "label": i % 2, "utt_id": f"u{i + offset}"} for i in range(num)]


def _indices(batch):
  return (batch["audio"][:, 0] // 100).astype(int).tolist()


def test_shapes_dtypes_and_length():
  ds = loader.train_dataset([_indexed_source(10)], batch_size=4,
                            crop_length=20, num_steps=7, seed=0)
  assert len(ds) == 7
  batch = ds[6]
  assert batch["audio"].shape == (4, 20) and batch["audio"].dtype == np.int16
  assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32
  floats = loader.train_dataset([_indexed_source(10, dtype=np.float64)],
                                batch_size=4, crop_length=20, num_steps=2,
                                seed=0)
  assert floats[0]["audio"].dtype == np.float32
  # Image streams' uint8 records stay uint8 (scaled on the device).
  images = loader.train_dataset([_indexed_source(10, dtype=np.uint8)],
                                batch_size=4, crop_length=20, num_steps=2,
                                seed=0)
  assert images[0]["audio"].dtype == np.uint8
  with pytest.raises(ValueError, match="mixes uint8 images"):
    loader.train_dataset(
        [_indexed_source(4, dtype=np.uint8),
         _indexed_source(4, dtype=np.float32, offset=4)], batch_size=8,
        crop_length=20, num_steps=1, seed=0)[0]


def test_deterministic_given_seed_and_step():
  make = lambda seed: loader.train_dataset(  # pylint: disable=g-long-lambda
      [_indexed_source(10)], batch_size=4, crop_length=20, num_steps=6,
      seed=seed)
  a, b, c = make(3), make(3), make(4)
  for k in (0, 5):
    np.testing.assert_array_equal(a[k]["audio"], b[k]["audio"])
  assert any(not np.array_equal(a[k]["audio"], c[k]["audio"])
             for k in range(6))


def test_each_epoch_is_a_new_permutation():
  ds = loader.train_dataset([_indexed_source(12)], batch_size=4,
                            crop_length=20, num_steps=9, seed=0)
  order = sum((_indices(ds[k]) for k in range(9)), [])
  epochs = [order[:12], order[12:24], order[24:]]
  for epoch in epochs:
    assert sorted(epoch) == list(range(12))
  assert epochs[0] != epochs[1] and epochs[1] != epochs[2]


def test_random_crop_is_a_window_of_the_record():
  source = [{"audio": np.arange(1000, dtype=np.int16), "label": 0,
             "utt_id": "long"}] * 8
  ds = loader.train_dataset([source], batch_size=8, crop_length=100,
                            num_steps=3, seed=0)
  starts = set()
  for k in range(3):
    for clip in ds[k]["audio"]:
      np.testing.assert_array_equal(clip, np.arange(clip[0], clip[0] + 100))
      starts.add(int(clip[0]))
  assert len(starts) > 10  # Offsets vary between records and epochs.


@pytest.mark.parametrize("pad_mode", ["wrap", "zero"])
def test_short_records_are_padded(pad_mode):
  source = [{"audio": np.array([1, 2, 3], np.int16), "label": 1,
             "utt_id": "short"}] * 2
  ds = loader.train_dataset([source], batch_size=2, crop_length=8,
                            num_steps=1, seed=0, pad_mode=pad_mode)
  want = [1, 2, 3, 1, 2, 3, 1, 2] if pad_mode == "wrap" else [1, 2, 3, 0, 0,
                                                              0, 0, 0]
  np.testing.assert_array_equal(ds[0]["audio"], [want, want])
  with pytest.raises(ValueError, match="pad_mode"):
    loader.train_dataset([source], batch_size=2, crop_length=8, num_steps=1,
                         seed=0, pad_mode="reflect")


def test_sources_are_concatenated():
  sources = [_indexed_source(6), _indexed_source(6, offset=6)]
  ds = loader.train_dataset(sources, batch_size=4, crop_length=20,
                            num_steps=3, seed=1)
  seen = sum((_indices(ds[k]) for k in range(3)), [])
  assert sorted(seen) == list(range(12))


def test_iterator_state_round_trip():
  ds = loader.train_dataset([_indexed_source(10)], batch_size=4,
                            crop_length=20, num_steps=8, seed=0)
  iterator = loader.train_iterator(ds)
  for _ in range(3):
    next(iterator)
  state = json.loads(json.dumps(iterator.get_state()))
  expected = next(iterator)
  resumed = loader.train_iterator(ds)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["audio"], expected["audio"])
  np.testing.assert_array_equal(expected["audio"], ds[3]["audio"])
  # start_step begins at batch k, and the iterator ends after num_steps.
  started = loader.train_iterator(ds, start_step=6)
  rest = list(started)
  assert len(rest) == 2
  np.testing.assert_array_equal(rest[0]["label"], ds[6]["label"])


def test_worker_iterator_state_round_trip():
  # Worker processes need a picklable source: the synthetic one is.
  stream = synthetic_audio_stream(num_tasks=1, train_per_class=8,
                                  test_per_class=1, val_per_class=0,
                                  seconds=0.1)
  ds = loader.train_dataset([stream.tasks[0].split("train")], batch_size=4,
                            crop_length=1600, num_steps=6, seed=0)
  iterator = loader.train_iterator(ds, worker_count=1)
  for _ in range(2):
    next(iterator)
  state = json.loads(json.dumps(iterator.get_state()))
  expected = next(iterator)
  np.testing.assert_array_equal(expected["audio"], ds[2]["audio"])
  resumed = loader.train_iterator(ds, worker_count=1)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["audio"], expected["audio"])
  started = loader.train_iterator(ds, worker_count=1, start_step=4)
  np.testing.assert_array_equal(next(started)["audio"], ds[4]["audio"])
  for it in (iterator, resumed, started):
    it.close()


def test_eval_batches_every_record_once_in_order():
  source = _indexed_source(10, length=30)
  source[3] = {**source[3], "audio": source[3]["audio"][:5]}
  batches = list(loader.eval_batches(source, batch_size=4, window_length=12))
  assert len(batches) == 3
  for batch in batches:
    assert batch["audio"].shape == (4, 12)
    assert batch["label"].dtype == np.int32 and batch["mask"].dtype == bool
  ids = [u for b in batches for u, m in zip(b["utt_id"], b["mask"]) if m]
  assert ids == [f"u{i}" for i in range(10)]
  last = batches[-1]
  np.testing.assert_array_equal(last["mask"], [True, True, False, False])
  assert last["utt_id"][2:] == ["", ""]
  np.testing.assert_array_equal(last["audio"][2:], 0)
  # First window_length samples; the 5-sample record is wrap-padded.
  np.testing.assert_array_equal(batches[0]["audio"][0], source[0]["audio"][:12])
  np.testing.assert_array_equal(batches[0]["audio"][3],
                                np.resize(source[3]["audio"], 12))
  zero = next(loader.eval_batches(source, batch_size=4, window_length=12,
                                  pad_mode="zero"))
  np.testing.assert_array_equal(zero["audio"][3, 5:], 0)


@pytest.mark.parametrize("audio", [
    np.zeros(0, np.int16), np.zeros((2, 10), np.int16),
    np.array([0.1, np.nan, 0.2], np.float32)])
def test_bad_records_name_utt_id_and_split(audio):
  source = _indexed_source(4)
  source[2] = {"audio": audio, "label": 0, "utt_id": "broken-utt"}
  with pytest.raises(ValueError, match=r"broken-utt.*'dev'"):
    list(loader.eval_batches(source, batch_size=2, window_length=8,
                             split="dev"))
  ds = loader.train_dataset([source], batch_size=4, crop_length=8,
                            num_steps=1, seed=0)
  with pytest.raises(ValueError, match=r"broken-utt.*'train'"):
    ds[0]  # pylint: disable=pointless-statement


def test_num_steps_for():
  sources = [_indexed_source(10), _indexed_source(7)]
  assert loader.num_steps_for(sources, batch_size=4, epochs=3) == 3 * 4
  with pytest.raises(ValueError, match="config.data.batch_size"):
    loader.num_steps_for(sources, batch_size=32, epochs=1)
  with pytest.raises(ValueError, match="config.data.batch_size"):
    loader.train_dataset(sources, batch_size=32, crop_length=8, num_steps=1,
                         seed=0)
