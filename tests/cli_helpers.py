"""Running cljax's command-line tools in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A two-task fine-tune run that takes seconds.
SMALL_TWO_TASKS = ("--config=configs/finetune_audio.py:small",
                   "--config.data.stream.num_tasks=2")


def cli_env(num_cpu_devices: int | None = None) -> dict[str, str]:
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  env["WANDB_MODE"] = "offline"
  env["WANDB_SILENT"] = "true"
  if num_cpu_devices:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count="
                        f"{num_cpu_devices}").strip()
  return env


def run_cli(module: str, *args: str, timeout: float = 300,
            num_cpu_devices: int | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
  """Runs ``python -m <module> <args>`` from the repo root; returns it."""
  process = subprocess.run(
      [sys.executable, "-m", module, *args], cwd=REPO, env=cli_env(
          num_cpu_devices), capture_output=True, text=True, timeout=timeout)
  if check and process.returncode != 0:
    raise AssertionError(
        f"{module} {' '.join(args)} exited {process.returncode}\n"
        f"--- stdout ---\n{process.stdout[-4000:]}\n"
        f"--- stderr ---\n{process.stderr[-6000:]}")
  return process
