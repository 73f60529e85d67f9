"""The digits stream: 10 classes, tasks that differ, deterministic records."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cljax.data import loader
from cljax.data.digits import digits_stream
from cljax.data.streams import STREAMS


def _matrix(source):
  return np.stack([source[i]["audio"] for i in range(len(source))])


def test_shapes_labels_and_splits():
  stream = digits_stream(num_tasks=3)
  assert STREAMS["digits"] is digits_stream
  assert stream.num_classes == 10 and stream.sample_rate == 64
  assert len(stream) == 3 and stream.task_names[0] == "original"
  task = stream.tasks[0]
  sizes = {name: len(task.split(name)) for name in ("train", "val", "test")}
  assert sum(sizes.values()) == 1797
  assert 1000 < sizes["train"] < 1150 and 150 < sizes["val"] < 210
  record = task.split("train")[0]
  assert record["audio"].shape == (64,) and record["audio"].dtype == np.float32
  labels = {task.split("test")[i]["label"] for i in range(sizes["test"])}
  assert labels == set(range(10))
  # Task 0 is the images themselves, scaled to [0, 1].
  digits = load_digits()
  train0 = _matrix(task.split("train"))
  assert train0.min() == 0.0 and train0.max() == 1.0
  first = task.split("train")[0]
  matches = np.flatnonzero(np.all(
      np.isclose(digits.data / 16.0, first["audio"]), axis=1))
  assert first["label"] in digits.target[matches]
  # Train and test never share an image.
  train_rows = {tuple(r) for r in train0}
  test_rows = {tuple(r) for r in _matrix(task.split("test"))}
  assert len(train_rows & test_rows) < 5  # Exact duplicate images exist.


def test_tasks_differ_and_are_permutations_of_the_same_images():
  stream = digits_stream(num_tasks=3, transform="permute")
  x0, x1, x2 = (_matrix(t.split("train")) for t in stream.tasks)
  assert not np.allclose(x0, x1) and not np.allclose(x1, x2)
  # Same images, pixels moved: each row's sorted values are unchanged.
  np.testing.assert_array_equal(np.sort(x0, axis=1), np.sort(x1, axis=1))
  y0 = [r["label"] for r in (stream.tasks[0].split("train")[i]
                             for i in range(len(x0)))]
  y1 = [r["label"] for r in (stream.tasks[1].split("train")[i]
                             for i in range(len(x1)))]
  assert y0 == y1


def test_rotate_transform():
  stream = digits_stream(num_tasks=4, transform="rotate")
  assert stream.task_names == ["original", "rotate90", "rotate180",
                               "rotate270"]
  x0 = _matrix(stream.tasks[0].split("test")).reshape(-1, 8, 8)
  x2 = _matrix(stream.tasks[2].split("test")).reshape(-1, 8, 8)
  # 180 degrees: exact flip of both axes.
  np.testing.assert_allclose(x2, x0[:, ::-1, ::-1], atol=1e-5)


def test_deterministic_and_seeded():
  a = _matrix(digits_stream(num_tasks=2, seed=3).tasks[1].split("train"))
  b = _matrix(digits_stream(num_tasks=2, seed=3).tasks[1].split("train"))
  c = _matrix(digits_stream(num_tasks=2, seed=4).tasks[1].split("train"))
  np.testing.assert_array_equal(a, b)
  assert a.shape != c.shape or not np.array_equal(a, c)


def test_the_loader_reads_one_whole_image_per_record():
  stream = digits_stream(num_tasks=1)
  source = stream.tasks[0].split("train")
  ds = loader.train_dataset([source], batch_size=8,
                            crop_length=stream.sample_rate * 1, num_steps=2,
                            seed=0)
  batch = ds[0]
  assert batch["audio"].shape == (8, 64)
  assert batch["audio"].dtype == np.float32
  rows = {tuple(source[i]["audio"]) for i in range(len(source))}
  assert all(tuple(row) in rows for row in batch["audio"])


def test_bad_fields_name_the_config_field():
  with pytest.raises(ValueError, match="transform"):
    digits_stream(transform="blur")
  with pytest.raises(ValueError, match="train_fraction"):
    digits_stream(train_fraction=0.95, val_fraction=0.1)


def test_the_digits_config_runs_end_to_end(tmp_path):
  import json
  from cli_helpers import run_cli
  run_cli("cljax.main", "--config=configs/rwm_digits.py:small,finetune",
          f"--workdir={tmp_path / 'run'}", "--config.output.progress=none",
          "--config.output.plots=False")
  with open(tmp_path / "run" / "results" / "results.json") as f:
    results = json.load(f)
  text = json.dumps(results)
  assert "accuracy" in text and "eer" not in text
