"""Tests for cljax.report: finding runs, mean ± std over seeds, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cljax import report
from cljax.io.results import ResultMatrix

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["A01", "A02", "A03"]

# Hand-made EER matrices: MATRICES[method][seed] (rows = after task i).
MATRICES = {
    "finetune": [
        np.array([[0.02, 0.30, 0.40], [0.25, 0.03, 0.35], [0.30, 0.20, 0.01]]),
        np.array([[0.04, 0.28, 0.42], [0.21, 0.05, 0.33], [0.26, 0.22, 0.03]]),
    ],
    "rwm": [
        np.array([[0.03, 0.20, 0.30], [0.05, 0.04, 0.25], [0.06, 0.05, 0.02]]),
        np.array([[0.05, 0.22, 0.28], [0.07, 0.06, 0.27], [0.08, 0.09, 0.04]]),
    ],
}
BASELINE = np.array([0.5, 0.48, 0.52])


def _write_run(workdir, method, seed, R, config_name=None, rows=None,
               train=True):
  result = ResultMatrix(NAMES, method=method,
                        config_name=config_name or f"{method}_audio",
                        seed=seed)
  result.set_baseline([{"eer": b, "accuracy": 1 - b} for b in BASELINE])
  for row in R[:rows]:
    result.add_row([{"eer": v, "accuracy": 1 - v} for v in row])
  result.save(os.path.join(workdir, "results"))
  if train:
    with open(os.path.join(workdir, "train.jsonl"), "w") as f:
      for step in range(30):
        f.write(json.dumps({"task": step // 10, "task_name": NAMES[step // 10],
                            "step": step, "loss": 1.0 / (1 + step % 10)})
                + "\n")
  return workdir


@pytest.fixture
def sweep(tmp_path):
  """runs/<method>/seed<k> for 2 methods x 2 seeds, plus an unfinished run."""
  for method, matrices in MATRICES.items():
    for seed, R in enumerate(matrices):
      _write_run(tmp_path / "sweep" / method / f"seed{seed}", method, seed, R)
  _write_run(tmp_path / "sweep" / "rwm" / "seed2", "rwm", 2, MATRICES["rwm"][0],
             rows=1)
  # Files a real run has that the search must skip or ignore.
  os.makedirs(tmp_path / "sweep" / "rwm" / "seed0" / "checkpoints" / "3")
  return tmp_path / "sweep"


def _expected(method, key):
  """Per-seed summary by hand (REFERENCE.md formulas), then mean and std."""
  per_seed = []
  for R in MATRICES[method]:
    T = len(R)
    per_seed.append({
        "average_final": R[-1].mean(),
        "bwt": np.mean([R[-1, j] - R[j, j] for j in range(T - 1)]),
        # EER is lower-is-better: forgetting = max_l (R[T-1, j] - R[l, j]).
        "forgetting": np.mean([np.max(R[-1, j] - R[:T - 1, j])
                               for j in range(T - 1)]),
        "in_domain": np.diag(R).mean(),
        "next_domain": np.diag(R, 1).mean(),
        "average_incremental": np.mean([R[i, :i + 1].mean()
                                        for i in range(T)]),
        "fwt": np.mean([R[j - 1, j] - BASELINE[j] for j in range(1, T)]),
    }[key])
  return np.mean(per_seed), np.std(per_seed, ddof=1)


def test_find_run_dirs(sweep, tmp_path):
  runs = report.find_run_dirs([sweep])
  assert [os.path.relpath(r, sweep) for r in runs] == [
      "finetune/seed0", "finetune/seed1", "rwm/seed0", "rwm/seed1",
      "rwm/seed2"]
  # A run folder, a results.json path and duplicates.
  one = sweep / "rwm" / "seed0"
  assert report.find_run_dirs(
      [one, one / "results" / "results.json"]) == [str(one)]
  (tmp_path / "empty").mkdir()
  with pytest.raises(report.ReportError, match="empty: no results/results"):
    report.find_run_dirs([tmp_path / "empty"])
  with pytest.raises(report.ReportError, match="no such file"):
    report.find_run_dirs([tmp_path / "missing"])


def test_compare_mean_std_over_seeds(sweep):
  markdown, rows = report.compare([sweep], None)  # default metric: eer
  assert [row["label"] for row in rows] == ["finetune", "rwm"]
  by_label = {row["label"]: row for row in rows}
  assert by_label["finetune"]["n"] == 2 and by_label["rwm"]["n"] == 2
  assert by_label["rwm"]["n_unfinished"] == 1
  assert by_label["rwm"]["seeds"] == [0, 1]
  for method in MATRICES:
    for key in report.SUMMARY_COLUMNS:
      mean, std = _expected(method, key)
      assert by_label[method][key] == pytest.approx(mean, abs=1e-12), key
      assert by_label[method][f"{key}_std"] == pytest.approx(std, abs=1e-12)
  # Markdown: percent, mean ± std, and the unfinished run named.
  mean, std = _expected("rwm", "average_final")
  assert f"{100 * mean:.2f} ± {100 * std:.2f}" in markdown
  assert "| rwm | 2 |" in markdown
  assert "Unfinished runs" in markdown
  assert f"{os.path.join(str(sweep), 'rwm', 'seed2')}" in markdown
  assert "1/3 tasks done" in markdown


def test_compare_other_metric_and_errors(sweep, tmp_path):
  markdown, rows = report.compare([sweep], "accuracy", out=tmp_path / "cmp")
  assert (tmp_path / "cmp" / "comparison_accuracy.md").read_text() == markdown
  assert (tmp_path / "cmp" / "comparison_accuracy.csv").exists()
  R = MATRICES["finetune"]
  assert rows[0]["average_final"] == pytest.approx(
      np.mean([(1 - r[-1]).mean() for r in R]))
  with pytest.raises(report.ReportError, match="no metric 'auc'"):
    report.compare([sweep], "auc")


def test_same_method_different_configs_get_separate_rows(tmp_path):
  for seed in (0, 1):
    _write_run(tmp_path / f"a{seed}", "ewc", seed, MATRICES["rwm"][seed],
               config_name="ewc_lambda1", train=False)
    _write_run(tmp_path / f"b{seed}", "ewc", seed, MATRICES["finetune"][seed],
               config_name="ewc_lambda100", train=False)
  _, rows = report.compare([tmp_path], "eer")
  assert [(r["label"], r["n"]) for r in rows] == [("ewc_lambda1", 2),
                                                  ("ewc_lambda100", 2)]


def test_single_seed_has_no_std_and_stream_mismatch_is_an_error(tmp_path):
  _write_run(tmp_path / "r0", "finetune", 0, MATRICES["finetune"][0],
             train=False)
  markdown, rows = report.compare([tmp_path / "r0"])
  assert np.isnan(rows[0]["bwt_std"]) and "±" not in markdown.split("\n")[4]
  other = ResultMatrix(["x", "y"], method="finetune",
                       config_name="finetune_audio", seed=1)
  other.add_row([{"eer": 0.1}, {"eer": 0.2}])
  other.add_row([{"eer": 0.1}, {"eer": 0.2}])
  other.save(tmp_path / "r1" / "results")
  with pytest.raises(report.ReportError, match="different task streams"):
    report.compare([tmp_path])


def test_rebuild_run_writes_tables_and_plots(sweep):
  run = sweep / "finetune" / "seed0"
  before = (run / "results" / "results.json").read_text()
  written = report.rebuild_run(str(run))
  names = {os.path.relpath(p, run) for p in written}
  assert {"results/matrix_eer.csv", "results/summary.csv",
          "plots/matrix_eer.png", "plots/curves_eer.png",
          "plots/matrix_accuracy.png", "plots/loss.png"} <= names
  assert (run / "results" / "results.json").read_text() == before


def test_cli_end_to_end(sweep, tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "-m", "cljax.report", str(sweep), "--out", str(out),
       "--metric", "eer"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  assert "| finetune | 2 |" in proc.stdout
  assert "unfinished" in proc.stderr  # the warning, not only the file
  markdown = (out / "comparison_eer.md").read_text()
  assert markdown == proc.stdout
  with open(out / "comparison_eer.csv", newline="") as f:
    rows = {row["label"]: row for row in csv.DictReader(f)}
  for method in MATRICES:
    mean, std = _expected(method, "bwt")
    assert float(rows[method]["bwt"]) == pytest.approx(mean, abs=1e-12)
    assert float(rows[method]["bwt_std"]) == pytest.approx(std, abs=1e-12)
  assert rows["rwm"]["n_unfinished"] == "1" and rows["rwm"]["seeds"] == "0;1"
  assert (sweep / "rwm" / "seed1" / "plots" / "matrix_eer.png").exists()
  assert (sweep / "rwm" / "seed1" / "results" / "summary.csv").exists()


def test_main_in_process_defaults_and_csv_format(sweep, capsys):
  assert report.main(["report", str(sweep), "--format", "csv",
                      "--norebuild"]) == 0
  printed = capsys.readouterr().out
  assert printed.startswith("label,method,")
  # Default --out: the sweep folder given.
  assert (sweep / "comparison_eer.csv").read_text() == printed
  # Flags from the previous call do not leak into the next one.
  assert report.main(["report", str(sweep / "rwm" / "seed0"),
                      "--norebuild"]) == 0
  assert capsys.readouterr().out.startswith("## eer")
  assert (sweep / "rwm" / "comparison_eer.md").exists()  # common parent


def test_main_reports_missing_results_json(tmp_path, capsys):
  (tmp_path / "not_a_run").mkdir()
  assert report.main(["report", str(tmp_path / "not_a_run")]) == 1
  assert str(tmp_path / "not_a_run") in capsys.readouterr().err
  assert report.main(["report"]) == 1
  assert report.main(["report", str(tmp_path), "--bogus"]) == 1


def test_memory_column_appears_only_with_a_replay_memory(tmp_path):
  for seed, R in enumerate(MATRICES["finetune"]):
    _write_run(tmp_path / "a" / f"seed{seed}", "finetune", seed, R)
  markdown, rows = report.compare([tmp_path / "a"], None)
  assert "memory" not in markdown and rows[0]["memory_bytes"] == 0
  for seed, R in enumerate(MATRICES["rwm"]):
    workdir = _write_run(tmp_path / "b" / f"seed{seed}", "er", seed, R)
    path = os.path.join(workdir, "results", "results.json")
    result = ResultMatrix.load(path)
    result.memory_bytes = 320_020_000
    result.save(os.path.dirname(path))
  markdown, rows = report.compare([tmp_path / "a", tmp_path / "b"], None)
  assert "| memory (MB) |" in markdown
  assert "| er | 2 |" in markdown and markdown.count("| 320.0 |") == 1
  assert "| 0.0 |" in markdown  # fine-tune keeps none.
  table = list(csv.DictReader(io.StringIO(report.rows_to_csv(rows))))
  assert {row["label"]: row["memory_bytes"] for row in table} == {
      "finetune": "0", "er": "320020000"}
