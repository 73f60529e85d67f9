"""Tests for cljax.io.writers: JSONL logs, resume truncation, TB and wandb."""

from __future__ import annotations

import json
import logging
import os
import struct
import time

import numpy as np
import pytest

from cljax.io.writers import MetricWriter
from cljax.io.writers import read_jsonl


def _train(step, task=0, loss=1.0):
  return {"task": task, "task_name": f"t{task}", "step": step,
          "task_step": step, "loss": loss, "lr": 1e-3}


def _eval(step, after_task, task, eer):
  return {"after_task": after_task, "task": task, "task_name": f"t{task}",
          "step": step, "eer": eer, "num_examples": 10}


def test_writes_one_json_object_per_line(tmp_path):
  with MetricWriter(tmp_path) as writer:
    writer.write_train(_train(1, loss=np.float32(0.5)))
    writer.write_train(_train(2, loss=np.array(0.25)))
    writer.write_eval(_eval(2, 0, 1, np.float64(0.125)))
  train = read_jsonl(tmp_path / "train.jsonl")
  assert [r["step"] for r in train] == [1, 2]
  assert train[0]["loss"] == 0.5 and train[1]["loss"] == 0.25
  assert read_jsonl(tmp_path / "eval.jsonl") == [_eval(2, 0, 1, 0.125)]
  assert (tmp_path / "train.jsonl").read_text().count("\n") == 2


def test_records_are_flushed_before_close(tmp_path):
  writer = MetricWriter(tmp_path)
  writer.write_train(_train(7))
  # Another reader (or a SIGKILL now) sees the record without close().
  assert read_jsonl(tmp_path / "train.jsonl")[0]["step"] == 7
  writer.close()


def test_record_without_step_is_rejected(tmp_path):
  with MetricWriter(tmp_path) as writer:
    with pytest.raises(ValueError, match="'step'"):
      writer.write_train({"loss": 1.0})


def test_truncated_last_line_is_dropped_with_warning(tmp_path, caplog):
  path = tmp_path / "train.jsonl"
  path.write_text(json.dumps(_train(1)) + "\n" + json.dumps(_train(2)) + "\n"
                  + '{"task": 0, "step": 3, "lo')
  with caplog.at_level(logging.WARNING):
    records = read_jsonl(path)
  assert [r["step"] for r in records] == [1, 2]
  assert "truncated last line" in caplog.text and ":3:" in caplog.text


def test_corrupt_middle_line_names_the_line(tmp_path):
  path = tmp_path / "eval.jsonl"
  path.write_text(json.dumps(_eval(1, 0, 0, 0.1)) + "\n\n{oops\n"
                  + json.dumps(_eval(2, 0, 1, 0.2)) + "\n")
  with pytest.raises(ValueError, match=r"eval.jsonl:3: not a JSON object"):
    read_jsonl(path)
  path.write_text("[1, 2]\n" + json.dumps(_eval(1, 0, 0, 0.1)) + "\n")
  with pytest.raises(ValueError, match=r":1: .*expected a JSON object"):
    read_jsonl(path)


def test_missing_file(tmp_path):
  assert read_jsonl(tmp_path / "none.jsonl", missing_ok=True) == []
  with pytest.raises(FileNotFoundError):
    read_jsonl(tmp_path / "none.jsonl")


def test_append_after_a_killed_writer_repairs_the_tail(tmp_path):
  path = tmp_path / "train.jsonl"
  # A cut record that does not parse is dropped; one that parses is kept.
  path.write_text(json.dumps(_train(1)) + "\n" + '{"step": 2, "lo')
  with MetricWriter(tmp_path) as writer:
    writer.write_train(_train(3))
  assert [r["step"] for r in read_jsonl(path)] == [1, 3]
  path.write_text(json.dumps(_train(1)) + "\n" + json.dumps(_train(2)))
  with MetricWriter(tmp_path) as writer:
    writer.write_train(_train(3))
  assert [r["step"] for r in read_jsonl(path)] == [1, 2, 3]


def test_truncate_after_keeps_records_up_to_step(tmp_path):
  with MetricWriter(tmp_path) as writer:
    for step in range(0, 50, 10):
      writer.write_train(_train(step))
    writer.write_eval(_eval(0, -1, 0, 0.5))
    writer.write_eval(_eval(20, 0, 0, 0.1))
    writer.write_eval(_eval(40, 1, 0, 0.2))
    kept = writer.truncate_after(20)
    assert kept == (3, 2)
    # The writer keeps appending to the rewritten file.
    writer.write_train(_train(30, loss=0.7))
  train = read_jsonl(tmp_path / "train.jsonl")
  assert [r["step"] for r in train] == [0, 10, 20, 30]
  assert train[-1]["loss"] == 0.7
  assert [r["step"] for r in read_jsonl(tmp_path / "eval.jsonl")] == [0, 20]
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def _read_tensorboard_events(logdir):
  """All events of tensorboardX event files (TFRecord framing)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  events = []
  for name in sorted(os.listdir(logdir)):
    data = (logdir / name).read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      events.append(event_pb2.Event.FromString(
          data[offset + 12:offset + 12 + length]))
      offset += 12 + length + 4
  return events


def _read_tensorboard_scalars(logdir):
  """(tag, step, value) of every scalar in ``logdir``."""
  return [(value.tag, event.step, value.simple_value)
          for event in _read_tensorboard_events(logdir)
          for value in event.summary.value]


def test_tensorboard_scalars(tmp_path):
  with MetricWriter(tmp_path, tensorboard=True) as writer:
    writer.write_train(_train(5, loss=0.5))
    writer.write_eval(_eval(5, 0, 1, 0.25))
  scalars = _read_tensorboard_scalars(tmp_path / "tensorboard")
  assert ("train/loss", 5, 0.5) in scalars
  assert ("eval/eer/t1", 5, 0.25) in scalars
  tags = {tag for tag, _, _ in scalars}
  assert "train/step" not in tags and "eval/num_examples/t1" not in tags
  assert "train/task_name" not in tags  # strings are not scalars


def test_truncate_after_purges_tensorboard_events(tmp_path):
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  with MetricWriter(tmp_path, tensorboard=True) as writer:
    writer.write_train(_train(10))
    writer.write_train(_train(20))
    writer.truncate_after(10)
    writer.write_train(_train(11))
  starts = [event.step for event in
            _read_tensorboard_events(tmp_path / "tensorboard")
            if event.session_log.status == event_pb2.SessionLog.START]
  # TensorBoard drops earlier events with step >= a START event's step.
  assert starts == [11]


def test_wandb_offline_needs_no_network(tmp_path, monkeypatch):
  pytest.importorskip("wandb")
  monkeypatch.setenv("WANDB_SILENT", "true")
  monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
  monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
  monkeypatch.delenv("WANDB_MODE", raising=False)
  (tmp_path / "config.json").write_text(json.dumps({"seed": 3}))
  writer = MetricWriter(tmp_path, wandb={"project": "cljax-test"})
  run = writer._wandb_run  # pylint: disable=protected-access
  assert run.offline and run.config["seed"] == 3
  writer.write_train(_train(1, loss=0.5))
  writer.write_eval(_eval(2, 0, 0, 0.125))
  # wandb commits a step's row once a later step (or finish) arrives.
  assert run.summary["train/loss"] == 0.5
  writer.close()
  runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
  assert len(runs) == 1
  # wandb-core writes the transaction log from its own process and may still
  # be flushing when finish() returns on a loaded machine (CI saw the bare
  # header once): wait for the record, but fail if it never lands.
  deadline = time.monotonic() + 60
  while (b"eval/eer/t0" not in runs[0].read_bytes()
         and time.monotonic() < deadline):
    time.sleep(0.5)
  assert b"eval/eer/t0" in runs[0].read_bytes()


def test_wandb_unknown_option_is_named(tmp_path):
  with pytest.raises(ValueError, match=r"\['projekt'\]"):
    MetricWriter(tmp_path, wandb={"projekt": "x"})
