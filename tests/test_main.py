"""``python -m cljax.main`` end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os

import numpy as np

from cljax.io.results import ResultMatrix
from cljax.io.writers import read_jsonl

from cli_helpers import SMALL_TWO_TASKS, run_cli


def test_two_task_run_writes_everything(small_finetune_run):
  workdir, process = small_finetune_run
  results = ResultMatrix.load(os.path.join(workdir, "results", "results.json"))
  assert results.task_names == ["task0", "task1"] or len(results.task_names) == 2
  assert results.tasks_done == 2
  eer = results.matrix("eer")
  assert eer.shape == (2, 2) and np.all((eer >= 0) & (eer <= 1))
  assert results.baseline("eer") is not None
  # The summary table and the paths are printed at the end.
  assert "average_final" in process.stdout and "bwt" in process.stdout
  for name in ("results:", "plots:", "checkpoints:"):
    assert name in process.stdout
  assert "SYNTHETIC DATA" in process.stderr
  for path in ("config.json", "train.jsonl", "eval.jsonl",
               "results/matrix_eer.csv", "results/summary.csv",
               "plots/matrix_eer.png", "plots/curves_eer.png", "plots/loss.png",
               "checkpoints/tasks/0", "checkpoints/tasks/1"):
    assert os.path.exists(os.path.join(workdir, path)), path
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  assert config["data"]["stream"]["num_tasks"] == 2
  train_records = read_jsonl(os.path.join(workdir, "train.jsonl"))
  steps = [r["step"] for r in train_records]
  assert steps == sorted(set(steps)) and steps[-1] == 2 * 12
  assert all(np.isfinite(r["loss"]) for r in train_records)
  evals = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  # Baseline row (-1) and one row per task, each over both tasks.
  assert sorted((r["after_task"], r["task"]) for r in evals) == [
      (-1, 0), (-1, 1), (0, 0), (0, 1), (1, 0), (1, 1)]
  for record in evals:
    if record["after_task"] >= 0:
      assert record["eer"] == results.matrix("eer")[record["after_task"],
                                                    record["task"]]


def test_rerunning_a_finished_run_changes_nothing(small_finetune_run):
  workdir, _ = small_finetune_run
  before = ResultMatrix.load(os.path.join(workdir, "results", "results.json"))
  lines_before = len(read_jsonl(os.path.join(workdir, "train.jsonl")))
  process = run_cli("cljax.main", *SMALL_TWO_TASKS, f"--workdir={workdir}")
  after = ResultMatrix.load(os.path.join(workdir, "results", "results.json"))
  np.testing.assert_array_equal(before.matrix("eer"), after.matrix("eer"))
  assert len(read_jsonl(os.path.join(workdir, "train.jsonl"))) == lines_before
  assert "average_final" in process.stdout


def test_workdir_of_another_config_is_refused(small_finetune_run):
  workdir, _ = small_finetune_run
  process = run_cli("cljax.main", *SMALL_TWO_TASKS,
                    "--config.optimizer.learning_rate=0.01",
                    f"--workdir={workdir}", check=False)
  assert process.returncode == 2
  assert "holds a run of another config" in process.stderr
  assert "optimizer.learning_rate" in process.stderr
  assert "--force" in process.stderr


def test_force_moves_the_old_run_aside(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"seed": 123}))
  (workdir / "keep.txt").write_text("old results")
  run_cli("cljax.main", *SMALL_TWO_TASKS, "--config.data.stream.num_tasks=1",
          "--config.train.steps_per_task=2", "--config.output.plots=False",
          f"--workdir={workdir}", "--force")
  moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
  assert len(moved) == 1 and (moved[0] / "keep.txt").read_text() == "old results"
  assert (workdir / "results" / "results.json").exists()


def test_unknown_override_is_a_one_line_error():
  process = run_cli("cljax.main", *SMALL_TWO_TASKS,
                    "--config.optimizer.learnin_rate=0.1", check=False)
  assert process.returncode == 2
  assert "learnin_rate" in process.stderr and "learning_rate" in process.stderr
  assert "Traceback" not in process.stderr


def test_bad_value_is_refused_before_compiling(tmp_path):
  process = run_cli("cljax.main", *SMALL_TWO_TASKS,
                    "--config.optimizer.name=adamm",
                    f"--workdir={tmp_path / 'w'}", check=False)
  assert process.returncode == 2
  assert "config.optimizer.name='adamm'" in process.stderr
  assert "adamw" in process.stderr  # The valid choices are listed.
  assert not (tmp_path / "w").exists()


def test_nan_loss_stops_naming_task_step_and_checkpoint(tmp_path):
  process = run_cli("cljax.main", *SMALL_TWO_TASKS,
                    "--config.optimizer.name=sgd",
                    "--config.optimizer.learning_rate=1e30",
                    f"--workdir={tmp_path / 'nan'}", check=False)
  assert process.returncode == 2, process.stderr[-3000:]
  assert "The loss became nan at task 0" in process.stderr or (
      "The loss became inf at task 0" in process.stderr)
  assert "global step" in process.stderr
  assert os.path.join("checkpoints", "latest", "0") in process.stderr
  assert "learning_rate" in process.stderr


def test_init_from_starts_from_the_saved_model(small_finetune_run, tmp_path):
  source, _ = small_finetune_run
  run_cli("cljax.main", *SMALL_TWO_TASKS, "--config.train.steps_per_task=1",
          f"--config.init_from={source}", f"--workdir={tmp_path / 'warm'}")
  trained = ResultMatrix.load(os.path.join(source, "results", "results.json"))
  warm = ResultMatrix.load(tmp_path / "warm" / "results" / "results.json")
  # The warm start's untrained baseline is the source run's final model.
  np.testing.assert_allclose(warm.baseline("eer"), trained.matrix("eer")[-1],
                             atol=1e-7)
  np.testing.assert_allclose(warm.baseline("auc"), trained.matrix("auc")[-1],
                             atol=1e-7)
