"""Task similarity, clustering and grouped streams."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cljax import grouping
from cljax.data import grouped
from cljax.data.stream import Stream, Task
from cli_helpers import run_cli


def _constructed_tasks(seed=0, per_class=60, dim=8):
  """Six tasks whose fakes come from three generators (two tasks each):
  tasks t and t + 3 share a fake direction; bona fide is shared by all."""
  rng = np.random.default_rng(seed)
  directions = np.eye(dim)[:3] * 4.0
  embeddings, labels = [], []
  for task in range(6):
    genuine = rng.normal(size=(per_class, dim))
    fake = directions[task % 3] + rng.normal(size=(per_class, dim))
    embeddings.append(np.concatenate([genuine, fake]))
    labels.append(np.repeat([0, 1], per_class))
  return embeddings, labels


@pytest.mark.parametrize("measure,threshold", [("cosine", 0.3),
                                               ("frechet", 0.5)])
def test_embedding_measures_recover_the_constructed_groups(measure,
                                                           threshold):
  embeddings, labels = _constructed_tasks()
  distances = {"cosine": grouping.cosine_distances,
               "frechet": grouping.frechet_distances}[measure]
  distance, similarity = distances(embeddings, labels)
  assert np.allclose(distance, distance.T) and np.all(np.diag(distance) == 0)
  assert grouping.cluster(distance, threshold) == [[0, 3], [1, 4], [2, 5]]
  # Same generator: more similar than any other pair.
  assert similarity[0, 3] > max(similarity[0, 1], similarity[0, 2])


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(20000, 2))
  # Shifted copy: exactly ||shift||^2 (same covariance).
  assert grouping.frechet_distance(a, a + [3.0, 4.0]) == pytest.approx(
      25.0, rel=1e-4)
  # Isotropic Gaussians N(0, I) and N(0, 4I) in 2-D: Tr(I + 4I - 2*2I) = 1
  # per dimension -> 2 (sampling error ~1 %).
  b = 2.0 * rng.normal(size=(20000, 2))
  assert grouping.frechet_distance(a, b) == pytest.approx(2.0, rel=0.05)
  with pytest.raises(ValueError, match="at least 2 embeddings"):
    grouping.frechet_distance(a[:1], b)


def test_transfer_distances_and_cluster_order():
  # Trained on row, tested on column: tasks 0 and 2 transfer to each other.
  eer = np.array([[0.05, 0.5, 0.10],
                  [0.45, 0.02, 0.5],
                  [0.20, 0.5, 0.04]])
  distance, similarity = grouping.transfer_distances(eer)
  # S = 1 - 2 EER, averaged with its transpose: S[0, 2] = (0.8 + 0.6) / 2.
  assert similarity[0, 2] == pytest.approx(0.7)
  assert distance[0, 2] == pytest.approx(0.3)
  assert grouping.cluster(distance, 0.5) == [[0, 2], [1]]
  assert grouping.cluster(distance, 0.01) == [[0], [1], [2]]
  with pytest.raises(ValueError, match="square"):
    grouping.cluster(np.zeros((2, 3)), 0.5)


class _Source(list):
  pass


def _stream():
  tasks = [Task(name=name, splits={
      "train": _Source([{"utt_id": f"{name}-{i}"} for i in range(n)]),
      "test": _Source([{"utt_id": f"{name}-t"}])})
           for name, n in (("a", 2), ("b", 3), ("c", 1))]
  return Stream(name="toy", tasks=tasks, class_names=("bonafide", "spoof"),
                sample_rate=16000)


def test_grouped_stream_concatenates_members_in_order():
  stream = grouped.group_tasks(_stream(), [["a", "c"], [1]])
  assert stream.task_names == ["a+c", "b"]
  merged = stream.tasks[0].split("train")
  assert [merged[i]["utt_id"] for i in range(len(merged))] == [
      "a-0", "a-1", "c-0"]
  assert stream.tasks[0].metadata["members"] == ["a", "c"]
  with pytest.raises(IndexError):
    merged[3]  # pylint: disable=pointless-statement


@pytest.mark.parametrize("groups,message", [
    ([["a", "zz"], ["b", "c"]], "does not have"),
    ([["a", "b"], ["b", "c"]], "exactly one group"),
    ([["a", "b"]], "leaves out tasks \\['c'\\]"),
    ([["a"], [], ["b", "c"]], "groups\\[1\\] is empty"),
])
def test_grouped_stream_errors_name_the_field(groups, message):
  with pytest.raises(ValueError, match=message):
    grouped.group_tasks(_stream(), groups)


def test_group_cli_writes_groups_a_run_can_train_on(tmp_path):
  out = str(tmp_path / "groups")
  process = run_cli("cljax.group", "--config=configs/finetune_audio.py:small",
                    "--config.data.stream.num_tasks=4", f"--workdir={out}",
                    "--measure=cosine", "--steps=6",
                    "--config.output.progress=none")
  assert process.returncode == 0, process.stderr[-2000:]
  for name in ("similarity.csv", "distance.csv", "similarity.png",
               "dendrogram.png", "groups.json"):
    assert os.path.exists(os.path.join(out, name)), name
  with open(os.path.join(out, "groups.json")) as f:
    saved = json.load(f)
  assert sorted(sum(saved["groups"], [])) == sorted(saved["tasks"])
  similarity = np.loadtxt(os.path.join(out, "similarity.csv"), delimiter=",",
                          skiprows=1, usecols=range(1, 5))
  np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-6)
  # A run trains on the groups: as many tasks as groups.
  run = str(tmp_path / "run")
  process = run_cli("cljax.main", "--config=configs/finetune_audio.py:small",
                    "--config.data.stream.num_tasks=4", f"--workdir={run}",
                    f"--config.data.groups={out}/groups.json",
                    "--config.output.progress=none",
                    "--config.output.plots=False")
  assert process.returncode == 0, process.stderr[-2000:]
  with open(os.path.join(run, "results", "results.json")) as f:
    results = json.load(f)
  assert results["task_names"] == ["+".join(g) for g in saved["groups"]]
  # The groups file must fit the stream it is used with.
  process = run_cli("cljax.main", "--config=configs/finetune_audio.py:small",
                    "--config.data.stream.num_tasks=3",
                    f"--workdir={tmp_path / 'bad'}",
                    f"--config.data.groups={out}/groups.json",
                    "--config.output.progress=none", check=False)
  assert process.returncode != 0 and "Traceback" not in process.stderr
  assert "run cljax.group on this config's stream" in process.stderr
