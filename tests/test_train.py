"""Pieces of the loop that strategies use directly."""

from __future__ import annotations

import numpy as np

from cljax import presets, train


def test_task_boundary_batches_cover_each_record_once():
  config = presets.audio_experiment("small")
  exp = train.build_experiment(config)
  batches = list(train.evaluation_batches(exp, "val", [0, 2]))
  masks = np.concatenate([np.asarray(b["mask"]) for b in batches])
  labels = np.concatenate([np.asarray(b["label"]) for b in batches])[masks]
  sizes = [len(exp.stream.tasks[t].split("val")) for t in (0, 2)]
  assert masks.sum() == sum(sizes) == 2 * 2 * 8  # 8 per class per task.
  assert np.bincount(labels).tolist() == [16, 16]
  assert all(b["audio"].shape == (config.data.eval_batch_size,
                                  exp.eval_length) for b in batches)
  assert set(batches[0]) == {"audio", "label", "mask"}  # Ids stay on host.
