"""``python -m cljax.sweep``: configs x seeds into one folder, then compared."""

from __future__ import annotations

import numpy as np

from cljax.io.results import ResultMatrix

from cli_helpers import run_cli


def test_sweep_runs_every_job_and_compares(tmp_path):
  sweep = tmp_path / "sweep"
  args = ("--configs=configs/finetune_audio.py:small,"
          "configs/joint_audio.py:small", "--seeds=0",
          "--set=data.stream.num_tasks=2", "--set=train.steps_per_task=4",
          "--set=output.plots=False", f"--workdir={sweep}")
  process = run_cli("cljax.sweep", *args, timeout=600)
  finetune = ResultMatrix.load(sweep / "finetune_audio-small-seed0")
  joint = ResultMatrix.load(sweep / "joint_audio-small-seed0")
  assert finetune.method == "finetune" and joint.method == "joint"
  assert finetune.finished and joint.finished
  table = (sweep / "comparison_eer.md").read_text()
  assert "| finetune |" in table and "| joint |" in table
  expected = np.mean(finetune.matrix("eer")[-1]) * 100
  assert f"{expected:.2f}" in table  # average_final of the finetune run.
  assert "| finetune |" in process.stdout
  # Re-running skips the finished runs.
  again = run_cli("cljax.sweep", *args, timeout=600)
  assert again.stdout.count("is finished; skipping") == 2


def test_variants_with_commas_survive_the_configs_list():
  from cljax import config_schema
  assert config_schema.split_config_list(
      ["configs/cored_image.py:small", "kd", "efficientnet",
       "configs/kd_ewc_image.py:small", "configs/rwm_audio.py"]) == [
           "configs/cored_image.py:small,kd,efficientnet",
           "configs/kd_ewc_image.py:small", "configs/rwm_audio.py"]
