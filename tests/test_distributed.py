"""Multi-process runs: a real two-process CPU run, and the slicing it relies on.

The end-to-end test starts two ``cljax.main`` processes (one CPU device
each) joined by ``jax.distributed`` over localhost, with gloo as the CPU
collectives (jax's default), and compares them with one process holding two
CPU devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import jax
import numpy as np
import portpicker
import pytest

from cljax import distributed
from cljax.data import loader
from cljax.io.results import ResultMatrix
from cljax.io.writers import read_jsonl
from cljax.registry import ConfigError

from cli_helpers import REPO, cli_env, run_cli

# Two tasks of 6 steps, a loss record every 2 steps: seconds of training;
# the rest is start-up and compilation.
ARGS = ("--config=configs/finetune_audio.py:small",
        "--config.data.stream.num_tasks=2",
        "--config.train.steps_per_task=6", "--config.train.log_every=2",
        "--config.output.plots=False")


def _start(workdir, port: int, process_id: int) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, "-m", "cljax.main", *ARGS, f"--workdir={workdir}",
       "--distributed", f"--coordinator_address=localhost:{port}",
       "--num_processes=2", f"--process_id={process_id}"],
      cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def test_two_processes_match_one_process_with_two_devices(tmp_path):
  port = portpicker.pick_unused_port()
  workdir = tmp_path / "multi"
  processes = [_start(workdir, port, i) for i in range(2)]
  outputs = []
  try:
    for process in processes:
      outputs.append(process.communicate(timeout=150))
  finally:
    for process in processes:  # Only ours, and only if still running.
      if process.poll() is None:
        process.kill()
        process.communicate()
  for i, (process, (stdout, stderr)) in enumerate(zip(processes, outputs)):
    assert process.returncode == 0, (
        f"process {i} exited {process.returncode}\n{stdout[-3000:]}\n"
        f"{stderr[-6000:]}")
    assert f"process {i} of 2; mesh {{'data': 2}}" in stderr
  # Only process 0 prints the summary and writes the records: one line per
  # step and per evaluation, not two.
  assert "Finished finetune_audio-small" in outputs[0][0]
  assert "Finished" not in outputs[1][0]
  train = read_jsonl(workdir / "train.jsonl")
  assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
  assert len(read_jsonl(workdir / "eval.jsonl")) == 2 + 2 * 2
  assert sorted(os.listdir(workdir / "checkpoints" / "tasks")) == ["0", "1"]

  single = tmp_path / "single"
  run_cli("cljax.main", *ARGS, f"--workdir={single}", num_cpu_devices=2)
  # The same mesh shape and per-device programs; the gradient all-reduce
  # sums two operands, which no collective can reorder (a + b == b + a in
  # IEEE arithmetic). So the runs agree to the bit unless a process read
  # other rows than its own share of the global batch (then the losses
  # differ at 1e-3 and more); rtol 1e-6 only absorbs printing.
  loss_multi = [r["loss"] for r in train]
  loss_single = [r["loss"] for r in read_jsonl(single / "train.jsonl")]
  np.testing.assert_allclose(loss_multi, loss_single, rtol=1e-6)
  multi = ResultMatrix.load(workdir / "results" / "results.json")
  reference = ResultMatrix.load(single / "results" / "results.json")
  for metric in ("eer", "auc", "accuracy"):
    np.testing.assert_allclose(multi.matrix(metric),
                               reference.matrix(metric), atol=1e-6)
    np.testing.assert_allclose(multi.baseline(metric),
                               reference.baseline(metric), atol=1e-6)


def test_process_slice_one_process_is_the_whole_batch():
  assert distributed.process_slice(16) == slice(0, 16)
  batch = {"audio": np.arange(8).reshape(4, 2), "utt_id": list("abcd"),
           "note": "kept"}
  rows = distributed.local_rows(batch)
  assert rows["utt_id"] == list("abcd") and rows["note"] == "kept"
  np.testing.assert_array_equal(rows["audio"], batch["audio"])


def test_process_slice_rejects_a_batch_that_does_not_split():
  three_devices = types.SimpleNamespace(devices=np.empty(3, object))
  with pytest.raises(ValueError, match="multiples of the device count"):
    distributed.process_slice(16, three_devices)


def test_process_shares_of_a_train_batch_are_its_rows():
  """Rows [0, 4) and [4, 8) built apart are the whole batch's rows, crops
  included: what two processes each read of one global batch."""
  # Record i is [i*100 + ramp]: 50 samples cropped to 20 at hashed offsets.
  source = [{"audio": (np.full(50, i) * 100 + np.arange(50)).astype(np.int16),
             "label": i % 2, "utt_id": f"u{i}"} for i in range(12)]
  kwargs = dict(batch_size=8, crop_length=20, num_steps=4, seed=3)
  whole = loader.train_dataset([source], **kwargs)
  first = loader.train_dataset([source], rows=slice(0, 4), **kwargs)
  second = loader.train_dataset([source], rows=slice(4, 8), **kwargs)
  for step in range(4):  # 32 rows from 12 records: three epochs' shuffles.
    assert first[step]["audio"].shape == (4, 20)
    for key in ("audio", "label"):
      np.testing.assert_array_equal(
          np.concatenate([first[step][key], second[step][key]]),
          whole[step][key])
  with pytest.raises(ValueError, match="contiguous"):
    loader.train_dataset([source], rows=slice(4, 4), **kwargs)


def test_requested_by_environment():
  assert distributed.requested_by_environment({}) is None
  assert "JAX_COORDINATOR_ADDRESS" in distributed.requested_by_environment(
      {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})
  slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n[1-2]",
           "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}
  # A one-task SLURM job (an interactive allocation) stays single-process.
  assert distributed.requested_by_environment(
      {**slurm, "SLURM_NTASKS": "1"}) is None
  assert "2 tasks" in distributed.requested_by_environment(
      {**slurm, "SLURM_NTASKS": "2"})
  assert distributed.requested_by_environment(
      {"TPU_WORKER_HOSTNAMES": "localhost"}) is None  # One TPU VM (Colab).
  assert "TPU" in distributed.requested_by_environment(
      {"TPU_WORKER_HOSTNAMES": "w-0,w-1"})


def test_initialize_single_process_and_bad_settings():
  assert distributed.initialize(environ={}) is False
  assert not jax.distributed.is_initialized()
  with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES='two'"):
    distributed.initialize(True, environ={"JAX_NUM_PROCESSES": "two"})
  with pytest.raises(ConfigError, match=r"process id 2 is outside \[0, 2\)"):
    distributed.initialize(environ={"JAX_COORDINATOR_ADDRESS": "h:1",
                                    "JAX_NUM_PROCESSES": "2",
                                    "JAX_PROCESS_ID": "2"})
  assert not jax.distributed.is_initialized()


def test_initialize_passes_settings_and_explains_jax_refusals(monkeypatch):
  """What reaches jax.distributed.initialize (replaced by a recorder: the
  real one refuses once this test process has used a device)."""
  calls = []

  def fake_initialize(**kwargs):
    calls.append(kwargs)
    if kwargs["coordinator_address"] is None:  # What jax does with no cluster.
      raise ValueError("coordinator_address should be defined.")

  monkeypatch.setattr(jax.distributed, "initialize", fake_initialize)
  assert distributed.initialize(environ={
      "JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
      "JAX_PROCESS_ID": "3"}) is True
  # All three known: cluster detection off, so a SLURM allocation around
  # the run cannot cut this process down to one GPU.
  assert calls[-1] == {"coordinator_address": "10.0.0.1:1234",
                       "num_processes": 4, "process_id": 3,
                       "initialization_timeout": 300,
                       "cluster_detection_method": "deactivate"}
  # Some missing: jax fills them in from the cluster it detects.
  assert distributed.initialize(True, coordinator_address="h:1",
                                environ={}) is True
  assert calls[-1]["cluster_detection_method"] is None
  assert calls[-1]["num_processes"] is None
  with pytest.raises(ConfigError) as error:
    distributed.initialize(True, environ={})
  assert str(error.value).startswith(
      "Cannot start the multi-process run (--distributed): coordinator_"
      "address should be defined. Outside SLURM")
  assert "--coordinator_address=HOST:PORT" in str(error.value)
