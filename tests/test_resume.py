"""Interrupted runs: SIGTERM saves and exits; SIGKILL loses at most the steps
since the last checkpoint; resuming reproduces the uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

from cljax.io.checkpoints import Checkpointer
from cljax.io.results import ResultMatrix
from cljax.io.writers import read_jsonl

from cli_helpers import REPO, cli_env, run_cli

STEPS_PER_TASK = 80
ARGS = ("--config=configs/finetune_audio.py:small",
        "--config.data.stream.num_tasks=2",
        f"--config.train.steps_per_task={STEPS_PER_TASK}",
        "--config.train.checkpoint_every=5", "--config.train.log_every=1",
        "--config.output.plots=False")


def _saved_steps(workdir) -> list[int]:
  folder = os.path.join(workdir, "checkpoints", "latest")
  if not os.path.isdir(folder):
    return []
  # Orbax renames a finished checkpoint to its bare step number.
  return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def _resumed_at(stderr: str) -> int:
  found = re.findall(r"Resuming .* \(global step (\d+)\)", stderr)
  assert len(found) == 1, stderr[-3000:]
  return int(found[0])


def _start(workdir) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, "-m", "cljax.main", *ARGS, f"--workdir={workdir}"],
      cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _wait_for_checkpoint(process, workdir, at_least: int,
                         timeout: float = 240) -> int:
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = [s for s in _saved_steps(workdir) if s >= at_least]
    if steps:
      return steps[0]
    if process.poll() is not None:
      raise AssertionError("The run ended before it could be interrupted:\n"
                           + process.stderr.read()[-3000:])
    time.sleep(0.02)
  process.kill()
  raise AssertionError(f"No checkpoint at step >= {at_least} in {timeout} s.")


def test_sigterm_then_sigkill_then_resume_reproduces_the_run(tmp_path):
  reference = tmp_path / "uninterrupted"
  run_cli("cljax.main", *ARGS, f"--workdir={reference}")

  workdir = tmp_path / "interrupted"
  # 1. SIGTERM in the middle of task 0: a checkpoint, a clean exit.
  process = _start(workdir)
  _wait_for_checkpoint(process, workdir, at_least=10)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
  assert "Interrupted at task 0" in stderr and "Traceback" not in stderr
  stopped_at = max(_saved_steps(workdir))
  assert 10 <= stopped_at < STEPS_PER_TASK

  # 2. Resume, then SIGKILL in the middle of task 1.
  process = _start(workdir)
  seen = _wait_for_checkpoint(process, workdir,
                              at_least=STEPS_PER_TASK + 20)
  process.kill()
  _, stderr = process.communicate(timeout=60)
  assert _resumed_at(stderr) == stopped_at  # It resumed where it stopped.
  partial = ResultMatrix.load(workdir / "results" / "results.json")
  assert partial.tasks_done == 1  # Killed inside task 1, as intended.
  # What orbax itself counts as the newest complete checkpoint.
  checkpointer = Checkpointer(str(workdir))
  newest = checkpointer.latest_step()
  checkpointer.close()
  assert seen <= newest < 2 * STEPS_PER_TASK

  # 3. Resume to the end: at most the steps since `newest` are redone.
  process = run_cli("cljax.main", *ARGS, f"--workdir={workdir}")
  assert _resumed_at(process.stderr) == newest

  expected = ResultMatrix.load(reference / "results" / "results.json")
  resumed = ResultMatrix.load(workdir / "results" / "results.json")
  assert resumed.tasks_done == expected.tasks_done == 2
  for metric in expected.metric_names:
    np.testing.assert_allclose(resumed.matrix(metric), expected.matrix(metric),
                               atol=1e-6, err_msg=metric)
    np.testing.assert_allclose(resumed.baseline(metric),
                               expected.baseline(metric), atol=1e-6)
  # The logs were truncated on resume: each step logged once, same losses
  # (log_every=1, so no partial window at the interruption changes them).
  expected_log = read_jsonl(reference / "train.jsonl")
  resumed_log = read_jsonl(workdir / "train.jsonl")
  assert [r["step"] for r in resumed_log] == [r["step"] for r in expected_log]
  np.testing.assert_allclose([r["loss"] for r in resumed_log],
                             [r["loss"] for r in expected_log], atol=1e-6)
  assert len(read_jsonl(workdir / "eval.jsonl")) == len(
      read_jsonl(reference / "eval.jsonl"))
