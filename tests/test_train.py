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


def test_unseen_tasks_are_scored_after_every_task(tmp_path, monkeypatch):
  """A test-only task is scored after each task and kept out of the matrix.

  The unseen task here is a copy of task 0's test split, so after every
  task its metrics must equal the result matrix's column 0.
  """
  import dataclasses
  import json

  from cljax.data import streams
  from cljax.data.stream import Task
  from cljax.data.synthetic import synthetic_audio_stream

  def with_unseen(**kwargs):
    stream = synthetic_audio_stream(**kwargs)
    copy = Task(name="unseen_copy",
                splits={"test": stream.tasks[0].split("test")})
    return dataclasses.replace(stream, unseen_tasks=(copy,))

  monkeypatch.setitem(streams.STREAMS, "synthetic_audio", with_unseen)
  config = presets.audio_experiment("small")
  config.train.steps_per_task = 3
  results = train.train_and_evaluate(config, str(tmp_path))
  saved = json.loads((tmp_path / "results" / "unseen.json").read_text())
  assert saved["unseen_tasks"] == ["unseen_copy"]
  assert saved["trained_tasks"] == results.task_names
  assert len(saved["after_task"]) == len(results.task_names) == 3
  eer = results.matrix("eer")
  for after, row in enumerate(saved["after_task"]):
    np.testing.assert_allclose(row["unseen_copy"]["eer"], eer[after, 0],
                               rtol=1e-6)
  # The matrix itself has only the trained tasks' columns.
  assert eer.shape == (3, 3)
