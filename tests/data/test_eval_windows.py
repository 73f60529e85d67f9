"""Tests for full-utterance (sliding-window) evaluation in the loader."""

from __future__ import annotations

import numpy as np
import pytest

from cljax.data import loader


def _ramp_source(lengths, labels=None):
  """Record i's audio is 1000 * i + arange(length): windows reveal offsets."""
  labels = labels or [i % 2 for i in range(len(lengths))]
  return [{"audio": (1000 * i + np.arange(n)).astype(np.int16),
           "label": labels[i], "utt_id": f"u{i}"}
          for i, n in enumerate(lengths)]


def test_window_starts():
  # 2.5 windows of 10 -> 3 windows, the last flush with the end.
  np.testing.assert_array_equal(loader.window_starts(25, 10, 10), [0, 10, 15])
  np.testing.assert_array_equal(loader.window_starts(30, 10, 10), [0, 10, 20])
  np.testing.assert_array_equal(loader.window_starts(10, 10, 10), [0])
  np.testing.assert_array_equal(loader.window_starts(4, 10, 10), [0])
  np.testing.assert_array_equal(loader.window_starts(25, 10, 5),
                                [0, 5, 10, 15])


def test_every_window_once_in_order_with_mask():
  # Utterances of 2.5, 1, 0.4 and 2 windows (W = 10) -> 3 + 1 + 1 + 2 = 7.
  source = _ramp_source([25, 10, 4, 20])
  batches = list(loader.eval_windows(source, batch_size=3, window_length=10))
  assert len(batches) == 3
  for batch in batches:
    assert batch["audio"].shape == (3, 10) and batch["audio"].dtype == np.int16
    assert batch["utt_index"].dtype == np.int32
  utt_index = np.concatenate([b["utt_index"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  np.testing.assert_array_equal(utt_index, [0, 0, 0, 1, 2, 3, 3, -1, -1])
  np.testing.assert_array_equal(mask, [True] * 7 + [False] * 2)
  audio = np.concatenate([b["audio"] for b in batches])
  starts = [0, 10, 15, 0, 0, 0, 10]
  for row, (utt, start) in enumerate(zip(utt_index[:7], starts)):
    if utt == 2:  # Shorter than a window: wrap-padded.
      np.testing.assert_array_equal(audio[row],
                                    np.resize(2000 + np.arange(4), 10))
    else:
      np.testing.assert_array_equal(
          audio[row], 1000 * utt + start + np.arange(10))
  np.testing.assert_array_equal(audio[7:], 0)
  labels = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(labels[:7], [0, 0, 0, 1, 0, 1, 1])
  ids = sum((b["utt_id"] for b in batches), [])
  assert ids == ["u0"] * 3 + ["u1", "u2", "u3", "u3", "", ""]


def test_pooled_mean_and_vote():
  source = _ramp_source([25, 10, 4, 20])
  batches = list(loader.eval_windows(source, batch_size=4, window_length=10))
  utt_index = np.concatenate([b["utt_index"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  # A fake scorer: the window's first sample; padding gets a huge value
  # that must not leak into any mean.
  audio = np.concatenate([b["audio"] for b in batches]).astype(np.float64)
  scores = np.where(mask, audio[:, 0], 1e9)
  pooled = loader.pool_window_scores(scores, utt_index, mask, len(source))
  np.testing.assert_allclose(pooled, [(0 + 10 + 15) / 3, 1000, 2000,
                                      (3000 + 3010) / 2])
  votes = np.array([1, 0, 1, 0, 1, 0, 1, 5])
  np.testing.assert_array_equal(
      loader.pool_window_scores(votes, utt_index, mask, len(source),
                                reduce="vote"),
      [1, 0, 1, 0])  # u3 ties 0 vs 1 -> the smaller class.


def test_pool_rejects_missing_utterances():
  with pytest.raises(ValueError, match="no window"):
    loader.pool_window_scores(np.ones(2), np.array([0, 2]),
                              np.array([True, True]), 3)
  with pytest.raises(ValueError, match="same shape"):
    loader.pool_window_scores(np.ones(2), np.array([0]), np.array([True]), 1)


def test_hop_and_float_sources():
  source = [{"audio": np.arange(25, dtype=np.float32), "label": 1,
             "utt_id": "f"}]
  batch = next(loader.eval_windows(source, batch_size=8, window_length=10,
                                   hop_length=5))
  assert batch["audio"].dtype == np.float32
  np.testing.assert_array_equal(batch["audio"][:4, 0], [0, 5, 10, 15])
  np.testing.assert_array_equal(batch["mask"], [True] * 4 + [False] * 4)
  with pytest.raises(ValueError, match="hop_length"):
    next(loader.eval_windows(source, batch_size=8, window_length=10,
                             hop_length=0))


class _CountingSource:
  def __init__(self, records):
    self.records, self.reads = records, 0

  def __len__(self):
    return len(self.records)

  def __getitem__(self, index):
    self.reads += 1
    return self.records[index]


def test_memory_cache_reads_each_record_once_within_budget():
  records = [{"audio": np.full(10, i, np.int16), "label": i % 2,
              "utt_id": f"u{i}"} for i in range(8)]
  source = _CountingSource(records)
  ds = loader.train_dataset([source], batch_size=4, crop_length=10,
                            num_steps=8, seed=0)  # 4 epochs.
  for k in range(8):
    ds[k]  # pylint: disable=pointless-statement
  assert source.reads == 8
  # A budget of 3 records (20 bytes each): 3 cached, 5 read every epoch.
  source = _CountingSource(records)
  ds = loader.train_dataset([source], batch_size=4, crop_length=10,
                            num_steps=8, seed=0, cache_bytes=60)
  batches = [ds[k]["audio"] for k in range(8)]
  assert source.reads == 3 + 5 * 4
  uncached = loader.train_dataset([records], batch_size=4, crop_length=10,
                                  num_steps=8, seed=0, cache_bytes=0)
  for k in range(8):  # The cache never changes what is read.
    np.testing.assert_array_equal(uncached[k]["audio"], batches[k])
