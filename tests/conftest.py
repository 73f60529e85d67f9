"""Shared fixtures."""

from __future__ import annotations

import subprocess

import pytest

from cli_helpers import SMALL_TWO_TASKS, run_cli


@pytest.fixture(scope="session")
def small_finetune_run(tmp_path_factory) -> tuple[str, subprocess.CompletedProcess]:
  """One finished run of configs/finetune_audio.py:small, shared by tests."""
  workdir = str(tmp_path_factory.mktemp("runs") / "finetune-small")
  process = run_cli("cljax.main", *SMALL_TWO_TASKS, f"--workdir={workdir}")
  return workdir, process
