"""Tests for cljax.io.results: ResultMatrix, results.json and its CSVs."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from cljax.io.results import ResultMatrix
from cljax.metrics.matrix import summarize

NAMES = ["A01", "A02", "A03"]


def _row(eer, acc):
  return [{"eer": e, "accuracy": a} for e, a in zip(eer, acc)]


def _full_run(seed=0):
  rng = np.random.default_rng(seed)
  result = ResultMatrix(NAMES, method="finetune", config_name="finetune_audio",
                        seed=seed)
  result.set_baseline(_row([0.5, 0.49, 0.51], [0.5, 0.5, 0.5]))
  for _ in NAMES:
    result.add_row(_row(rng.uniform(0, 0.5, 3), rng.uniform(0.5, 1, 3)))
  return result


def test_matrix_and_baseline_shapes_and_order():
  result = ResultMatrix(NAMES, seed=1)
  result.add_row(_row([0.1, 0.4, 0.45], [0.9, 0.6, 0.55]))
  result.add_row(_row([0.2, 0.05, 0.3], [0.8, 0.95, 0.7]))
  assert result.tasks_done == 2 and not result.finished
  assert result.metric_names == ["eer", "accuracy"]  # first row's key order
  np.testing.assert_array_equal(result.matrix("eer"),
                                [[0.1, 0.4, 0.45], [0.2, 0.05, 0.3]])
  assert result.matrix("eer").shape == (2, 3)
  assert result.baseline("eer") is None
  assert result.metrics["eer"].higher_is_better is False  # from METRICS
  assert result.metrics["accuracy"].higher_is_better is True


def test_json_round_trip_is_exact_including_nan(tmp_path):
  result = _full_run()
  result.metrics["eer"].matrix[0][2] = math.nan  # a cell not evaluated
  text = result.to_json()
  # Standard JSON: NaN is null, so a strict parser accepts it.
  json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
  assert json.loads(text)["metrics"]["eer"]["matrix"][0][2] is None
  again = ResultMatrix.from_json(text)
  assert again.to_json() == text
  for metric in ("eer", "accuracy"):
    np.testing.assert_array_equal(again.matrix(metric),
                                  result.matrix(metric))  # bitwise floats
    np.testing.assert_array_equal(again.baseline(metric),
                                  result.baseline(metric))
  assert (again.method, again.config_name, again.seed) == (
      "finetune", "finetune_audio", 0)

  paths = result.save(tmp_path / "results")
  assert os.path.basename(paths[0]) == "results.json"
  for loaded in (ResultMatrix.load(tmp_path),
                 ResultMatrix.load(tmp_path / "results"),
                 ResultMatrix.load(tmp_path / "results" / "results.json")):
    assert loaded.to_json() == text
  # Atomic writes leave no temporary files behind.
  assert sorted(os.listdir(tmp_path / "results")) == [
      "matrix_accuracy.csv", "matrix_eer.csv", "results.json", "summary.csv"]


def test_results_json_layout():
  data = json.loads(_full_run().to_json())
  assert data["format"] == 1
  assert data["task_names"] == NAMES and data["tasks_done"] == 3
  assert set(data["metrics"]["eer"]) == {"higher_is_better", "matrix",
                                         "baseline"}
  assert len(data["metrics"]["eer"]["matrix"]) == 3
  assert data["metrics"]["eer"]["baseline"] == [0.5, 0.49, 0.51]
  assert set(data["summaries"]["eer"]) == {
      "average_final", "average_incremental", "bwt", "fwt", "forgetting",
      "in_domain", "next_domain", "backward_transfer", "forward_transfer"}


def test_summaries_full_and_partial():
  result = _full_run()
  R = result.matrix("eer")
  expected = summarize(R, False, result.baseline("eer"))
  got = result.summaries()["eer"]
  assert got == pytest.approx(expected, nan_ok=True)
  assert got["average_final"] == pytest.approx(R[-1].mean())

  # Partial run: the square top-left block of the rows done.
  result.truncate(2)
  got = result.summaries()["eer"]
  assert got["average_final"] == pytest.approx(R[1, :2].mean())
  assert got["bwt"] == pytest.approx(R[1, 0] - R[0, 0])
  assert got["fwt"] == pytest.approx(R[0, 1] - 0.49)
  assert ResultMatrix(NAMES).summaries() == {}


def test_matrix_csv_has_untrained_first_and_task_labels(tmp_path):
  result = _full_run()
  result.truncate(2)
  result.save(tmp_path)
  with open(tmp_path / "matrix_eer.csv", newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["trained_on\\tested_on"] + NAMES
  assert [r[0] for r in rows[1:]] == ["untrained", "A01", "A02"]
  np.testing.assert_array_equal(
      np.array([r[1:] for r in rows[2:]], dtype=float), result.matrix("eer"))
  with open(tmp_path / "summary.csv", newline="") as f:
    summary = list(csv.reader(f))
  assert summary[0] == ["metric", "summary", "value"]
  values = {(m, k): float(v) for m, k, v in summary[1:]}
  assert values[("accuracy", "in_domain")] == pytest.approx(
      np.diag(result.matrix("accuracy")[:, :2]).mean())


def test_add_row_validates_input():
  result = ResultMatrix(NAMES)
  with pytest.raises(ValueError, match="list of 3 dicts"):
    result.add_row([{"eer": 0.1}])
  result.add_row([{"eer": 0.1}] * 3)
  with pytest.raises(ValueError, match="task 'A02' has metrics"):
    result.add_row([{"eer": 0.1}, {"eer": 0.1, "num_examples": 5},
                    {"eer": 0.2}])
  with pytest.raises(ValueError, match="finite"):
    result.add_row([{"eer": math.inf}] * 3)
  result.add_row([{"eer": 0.1}] * 3)
  result.add_row([{"eer": 0.1}] * 3)
  with pytest.raises(ValueError, match="truncate"):
    result.add_row([{"eer": 0.1}] * 3)
  with pytest.raises(ValueError, match="unique"):
    ResultMatrix(["a", "a"])


def test_unknown_metric_needs_direction():
  with pytest.raises(ValueError, match="Declare it"):
    ResultMatrix(["a"]).add_row([{"my_score": 1.0}])
  result = ResultMatrix(["a"], metrics={"my_score": True, "eer": False})
  assert result.metric_names == ["my_score", "eer"] and not result.tasks_done
  result.add_row([{"eer": 0.2, "my_score": 1.0}])
  assert result.metrics["my_score"].higher_is_better is True
  assert result.metric_names == ["my_score", "eer"]  # declared order kept
  with pytest.raises(ValueError, match="expected \\['eer', 'my_score'\\]"):
    result.set_baseline([{"eer": 0.2}])
  assert not result.has_baseline
  result.set_baseline([{"eer": 0.5, "my_score": 0.0}])
  assert result.has_baseline
  with pytest.raises(ValueError, match="higher_is_better"):
    ResultMatrix(["a"], metrics={"eer": "lower"})


def test_from_json_errors_name_the_field(tmp_path):
  data = json.loads(_full_run().to_json())
  with pytest.raises(ValueError, match="format=2"):
    ResultMatrix.from_dict({**data, "format": 2})
  bad = json.loads(json.dumps(data))
  bad["metrics"]["eer"]["matrix"][1] = [0.1]
  with pytest.raises(ValueError, match=r"metrics.eer.matrix\[1\] has 1"):
    ResultMatrix.from_dict(bad)
  with pytest.raises(ValueError, match="tasks_done=2"):
    ResultMatrix.from_dict({**data, "tasks_done": 2})
  path = tmp_path / "results.json"
  path.write_text("{not json")
  with pytest.raises(ValueError, match="results.json is not valid JSON"):
    ResultMatrix.load(path)
  with pytest.raises(FileNotFoundError, match="No results.json"):
    ResultMatrix.load(tmp_path / "nowhere")
