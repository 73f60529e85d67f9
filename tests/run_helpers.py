"""Configs and loop runs shared by the strategy tests."""

from __future__ import annotations

import json
import os
import pathlib
import runpy

import numpy as np

from cljax import train
from cli_helpers import run_cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name: str, variant: str | None = None):
  """``configs/<name>.py``'s ``get_config(variant)``."""
  return runpy.run_path(str(REPO / "configs" / f"{name}.py"))["get_config"](
      variant)


def memory_bytes_per_example(exp: train.Experiment) -> int:
  """Bytes one training example takes in a replay memory."""
  spec = train.train_example_spec(exp)
  return sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize
             for s in spec.values())


def run_small_config(name: str, workdir: str, *extra: str) -> str:
  """Runs ``configs/<name>.py:small`` on two tasks in a subprocess; returns
  ``workdir`` after checking the run finished and wrote its results."""
  process = run_cli("cljax.main", f"--config=configs/{name}.py:small",
                    "--config.data.stream.num_tasks=2",
                    f"--workdir={workdir}", "--config.output.progress=none",
                    "--config.output.plots=False", *extra)
  assert process.returncode == 0, process.stderr[-2000:]
  assert os.path.exists(os.path.join(workdir, "results", "results.json"))
  return workdir


def train_records(workdir: str, key: str) -> list[dict]:
  """The ``train.jsonl`` records of ``workdir`` that log ``key``."""
  with open(os.path.join(workdir, "train.jsonl")) as f:
    return [record for record in map(json.loads, f) if key in record]


def assert_teacher_term_starts_after_the_first_task(workdir: str,
                                                    key: str) -> list[dict]:
  """Task 0 has no teacher (loss == CE); task 1's extra term adds to it.

  Returns task 1's records for further checks.
  """
  records = train_records(workdir, key)
  first = [r for r in records if r["task"] == 0]
  later = [r for r in records if r["task"] == 1]
  assert first and later, f"no records logging {key!r} in {workdir}"
  for record in first:
    assert abs(record["loss"] - record["cross_entropy"]) <= 1e-6 * max(
        1.0, abs(record["loss"])), record
  assert all(r["loss"] > r["cross_entropy"] for r in later)
  return later
