"""One code path for one device or many: the batch sharded on a `data` axis."""

from __future__ import annotations

import numpy as np

from cljax.io.results import ResultMatrix
from cljax.io.writers import read_jsonl

from cli_helpers import run_cli

ARGS = ("--config=configs/finetune_audio.py:small",
        "--config.data.stream.num_tasks=2", "--config.train.log_every=1",
        "--config.output.plots=False")


def test_four_cpu_devices_match_one(tmp_path):
  one = run_cli("cljax.main", *ARGS, f"--workdir={tmp_path / 'one'}")
  four = run_cli("cljax.main", *ARGS, f"--workdir={tmp_path / 'four'}",
                 num_cpu_devices=4)
  assert "CpuDevice(id=3)" in four.stderr and "CpuDevice(id=1)" not in (
      one.stderr)
  loss_one = [r["loss"] for r in read_jsonl(tmp_path / "one" / "train.jsonl")]
  loss_four = [r["loss"] for r in read_jsonl(tmp_path / "four" /
                                             "train.jsonl")]
  assert len(loss_one) == len(loss_four) == 24
  # Same math, different reduction order: equal to float32 round-off.
  np.testing.assert_allclose(loss_four, loss_one, rtol=1e-4, atol=1e-5)
  r_one = ResultMatrix.load(tmp_path / "one" / "results" / "results.json")
  r_four = ResultMatrix.load(tmp_path / "four" / "results" / "results.json")
  np.testing.assert_allclose(r_four.matrix("auc"), r_one.matrix("auc"),
                             atol=0.02)
