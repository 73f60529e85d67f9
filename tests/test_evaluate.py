"""``python -m cljax.evaluate``: score files from saved checkpoints."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cljax import metrics
from cljax.io.results import ResultMatrix

from cli_helpers import run_cli


def _read_scores(path):
  utt_ids, scores, labels = [], [], []
  with open(path) as f:
    for line in f:
      utt_id, score, label = line.split()
      utt_ids.append(utt_id)
      scores.append(float(score))
      labels.append(0 if label == "bonafide" else 1)
  return utt_ids, np.array(scores), np.array(labels)


@pytest.mark.parametrize("task", [0, 1])
def test_score_files_reproduce_the_result_matrix(small_finetune_run, task,
                                                 tmp_path):
  workdir, _ = small_finetune_run
  out = tmp_path / f"scores{task}"
  process = run_cli("cljax.evaluate", f"--workdir={workdir}", f"--task={task}",
                    f"--out={out}")
  results = ResultMatrix.load(os.path.join(workdir, "results",
                                           "results.json"))
  for tested, name in enumerate(results.task_names):
    utt_ids, scores, labels = _read_scores(out / f"{name}.txt")
    assert len(set(utt_ids)) == len(utt_ids) == 32  # 16 per class, each once.
    assert sorted(set(labels)) == [0, 1]
    # Recomputed from the written file (6-decimal scores): the same EER the
    # run recorded for (trained through task, tested on task).
    assert metrics.equal_error_rate(scores, labels) == pytest.approx(
        results.matrix("eer")[task, tested], abs=1e-9)
  with open(out / "metrics.json") as f:
    table = json.load(f)["metrics"]
  for tested, name in enumerate(results.task_names):
    assert table[name]["auc"] == pytest.approx(
        results.matrix("auc")[task, tested], abs=1e-6)
  assert "score files:" in process.stdout


def test_missing_task_checkpoint_is_a_clear_error(small_finetune_run):
  workdir, _ = small_finetune_run
  process = run_cli("cljax.evaluate", f"--workdir={workdir}", "--task=7",
                    check=False)
  assert process.returncode == 2
  assert "No checkpoint for the end of task 7" in process.stderr
  assert "saved task ends: [0, 1]" in process.stderr


def test_not_a_run_folder(tmp_path):
  process = run_cli("cljax.evaluate", f"--workdir={tmp_path}", check=False)
  assert process.returncode == 2
  assert "config.json not found" in process.stderr
