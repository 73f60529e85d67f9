"""Runs configs x seeds into one folder, then compares them.

  python -m cljax.sweep --configs=configs/finetune_audio.py:small,\
configs/joint_audio.py:small --seeds=0,1,2 --workdir=runs/sweep-small \
      [--parallel] [--set=optimizer.learning_rate=3e-4 ...]

Each (config, seed) runs ``python -m cljax.main`` in its own subprocess into
``<workdir>/<config>-seed<seed>``: one after another, or with ``--parallel``
one per accelerator (``CUDA_VISIBLE_DEVICES`` / ``TPU_VISIBLE_CHIPS``). A
finished run is skipped and an unfinished one resumes, so re-running a
sweep completes it. At the end, the ``cljax.report`` comparison of all runs
is printed and written into the sweep folder — what the seeds'
``run_all_train.py`` + ``parse_log_to_result.py`` did.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

from absl import app, flags

from cljax import config_schema
from cljax import report
from cljax.run import config_name

_CONFIGS = flags.DEFINE_list("configs", None, "Config files (with :variant).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds to run each config with.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep folder (default "
                               "runs/sweep-<time>).")
_SET = flags.DEFINE_multi_string("set", [], "Config override for every run, "
                                 "as field=value (e.g. train.log_every=50).")
_PARALLEL = flags.DEFINE_bool("parallel", False, "Run one job per visible "
                              "accelerator at a time.")
_METRIC = flags.DEFINE_string("metric", None, "Metric of the comparison "
                              "(default: each run's first metric).")


def jobs(configs, seeds, workdir):
  """(run folder, command) for each config x seed."""
  for config_arg in configs:
    for seed in seeds:
      run_dir = os.path.join(workdir, f"{config_name(config_arg)}-seed{seed}")
      command = [sys.executable, "-m", "cljax.main", f"--config={config_arg}",
                 f"--config.seed={int(seed)}", f"--workdir={run_dir}"]
      command += [f"--config.{override}" for override in _SET.value]
      yield run_dir, command


def _finished(run_dir: str) -> bool:
  from cljax.io.results import ResultMatrix
  path = os.path.join(run_dir, "results", "results.json")
  if not os.path.exists(path):
    return False
  results = ResultMatrix.load(path)
  return results.tasks_done == len(results.task_names)


def _accelerators() -> list[str]:
  import jax
  return [str(d.id) for d in jax.local_devices() if d.platform != "cpu"]


def run_sweep(configs, seeds, workdir, parallel=False) -> list[str]:
  """Runs every job; returns the run folders. Fails if any job failed."""
  os.makedirs(workdir, exist_ok=True)
  slots = _accelerators() if parallel else []
  if parallel and not slots:
    print("sweep: --parallel needs accelerators; none visible, running one "
          "job at a time.")
  todo = list(jobs(configs, seeds, workdir))
  failed, running = [], {}
  for run_dir, command in todo:
    if _finished(run_dir):
      print(f"sweep: {run_dir} is finished; skipping.")
      continue
    env = dict(os.environ)
    if slots:
      while len(running) >= len(slots):
        _wait_for_one(running, failed)
      slot = next(s for s in slots if s not in running.values())
      env["CUDA_VISIBLE_DEVICES"] = env["TPU_VISIBLE_CHIPS"] = slot
    print("sweep: " + " ".join(command), flush=True)
    process = subprocess.Popen(command, env=env)
    running[process] = env.get("CUDA_VISIBLE_DEVICES") if slots else None
    if not slots:
      _wait_for_one(running, failed)
  while running:
    _wait_for_one(running, failed)
  if failed:
    raise RuntimeError("sweep: these runs failed (see their log output): "
                       + ", ".join(failed))
  return [run_dir for run_dir, _ in todo]


def _wait_for_one(running, failed):
  """Waits until one running job ends; records it if it failed."""
  while True:
    for process in list(running):
      if process.poll() is not None:
        del running[process]
        if process.returncode != 0:
          failed.append(" ".join(process.args))
        return
    time.sleep(0.5)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _CONFIGS.value:
    raise app.UsageError("--configs is required.")
  workdir = _WORKDIR.value or os.path.join(
      "runs", "sweep-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
  run_dirs = run_sweep(config_schema.split_config_list(_CONFIGS.value),
                       _SEEDS.value, workdir, parallel=_PARALLEL.value)
  markdown, _ = report.compare(run_dirs, _METRIC.value, out=workdir)
  print(markdown)


if __name__ == "__main__":
  app.run(main)
