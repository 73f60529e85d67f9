"""Writes a run's train/eval logs: JSONL always, TensorBoard and wandb opt-in.

The JSONL files are the run's record (reports and resume read them)::

  <workdir>/train.jsonl  {"task": 0, "task_name": ..., "step": 120, "loss": ...}
  <workdir>/eval.jsonl   {"after_task": 0, "task": 1, "task_name": ...,
                          "step": 120, "eer": ..., "num_examples": ...}

``step`` is the global step in both. One JSON object per line, flushed per
record, so a killed run loses at most the line being written; ``read_jsonl``
drops such a truncated last line with a warning, and ``MetricWriter`` repairs
the file before appending to it. Non-finite floats are written as Python's
json writes them (``NaN``, ``Infinity``), which ``read_jsonl`` reads back.
"""

from __future__ import annotations

import json
import numbers
import os
from typing import Any, Mapping

from absl import logging
import numpy as np

from cljax.io.results import atomic_write_text

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
TENSORBOARD_DIR = "tensorboard"

# Eval-record keys that identify the evaluation rather than measure it; every
# other numeric key is a metric and goes to eval/<metric>/<task_name>.
_EVAL_ID_KEYS = frozenset(
    {"after_task", "task", "task_name", "step", "num_examples"})
_WANDB_OPTIONS = frozenset({"project", "entity", "name", "group", "tags",
                            "notes", "id", "resume", "job_type", "mode",
                            "config"})


def _to_builtin(value: Any) -> Any:
  """json.dumps fallback for numpy / JAX scalars and arrays."""
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
    return np.asarray(value).tolist()
  raise TypeError(
      f"Cannot write {type(value).__name__} ({value!r}) to a JSONL log; log "
      f"numbers, strings, lists or dicts.")


def _scalar(value: Any) -> float | None:
  """A loggable float for TensorBoard/wandb, or None for non-scalars."""
  if isinstance(value, bool):
    return float(value)
  if isinstance(value, numbers.Number):
    return float(value)
  if isinstance(value, np.generic) or (
      hasattr(value, "__array__") and np.ndim(value) == 0):
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.number) or array.dtype == bool:
      return float(array)
  return None


def read_jsonl(path: str | os.PathLike[str],
               missing_ok: bool = False) -> list[dict[str, Any]]:
  """Reads one JSON object per line.

  Blank lines are skipped. A last line that does not parse is what a killed
  writer leaves behind: it is dropped with a warning. A bad line anywhere
  else is corruption and raises.

  Args:
    path: the .jsonl file.
    missing_ok: return [] instead of raising when the file does not exist.

  Returns:
    The records, in file order.

  Raises:
    ValueError: a line other than the last is not a JSON object; the message
      names the file and the 1-based line number.
  """
  path = os.fspath(path)
  if missing_ok and not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  # The index of the last line with content: the only one allowed to be cut.
  last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
  records = []
  for index, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    except ValueError as error:
      if index == last:
        logging.warning(
            "%s:%d: dropping the truncated last line (%s); a killed run "
            "leaves one behind.", path, index + 1, error)
        continue
      raise ValueError(
          f"{path}:{index + 1}: not a JSON object ({error}). Delete or fix "
          f"that line; only a truncated last line is tolerated.") from error
    records.append(record)
  return records


def _repair_tail(path: str) -> None:
  """Makes ``path`` end with a newline before anything is appended to it.

  A killed writer can leave a last line without its newline; appending
  straight after it would glue two records into one corrupt middle line.
  A cut line that still parses gets its newline; one that does not is
  dropped (as ``read_jsonl`` would), with a warning.
  """
  if not os.path.exists(path) or os.path.getsize(path) == 0:
    return
  with open(path, "rb+") as f:
    f.seek(-1, os.SEEK_END)
    if f.read(1) == b"\n":
      return
    f.seek(0)
    data = f.read()
    start = data.rfind(b"\n") + 1
    tail = data[start:]
    try:
      json.loads(tail.decode("utf-8"))
      f.seek(0, os.SEEK_END)
      f.write(b"\n")
    except ValueError:
      logging.warning("%s: dropping a truncated last line before appending: "
                      "%r", path, tail[:200])
      f.truncate(start)


class MetricWriter:
  """Appends train/eval records to JSONL, and optionally TensorBoard/wandb.

  Usage::

    with MetricWriter(workdir, tensorboard=True) as writer:
      writer.write_train({"task": 0, "task_name": "A01", "step": 100,
                          "task_step": 100, "loss": 0.3, "lr": 1e-3})
      writer.write_eval({"after_task": 0, "task": 0, "task_name": "A01",
                         "step": 100, "eer": 0.05, "num_examples": 512})

  On resume, call ``truncate_after(checkpoint_step)`` first so records the
  killed run wrote after its last checkpoint are not duplicated.
  """

  def __init__(self, workdir: str | os.PathLike[str], tensorboard: bool = False,
               wandb: Mapping[str, Any] | None = None):
    """Creates the writer.

    Args:
      workdir: the run folder; created if missing.
      tensorboard: also write scalars with tensorboardX to
        ``<workdir>/tensorboard``.
      wandb: None for no wandb, else options for ``wandb.init``: project,
        entity, name, group, tags, notes, id, resume, job_type, mode
        (default "offline", which needs no network or account) and config
        (default: ``<workdir>/config.json`` if it exists).
    """
    self.workdir = os.fspath(workdir)
    os.makedirs(self.workdir, exist_ok=True)
    self.train_path = os.path.join(self.workdir, TRAIN_FILE)
    self.eval_path = os.path.join(self.workdir, EVAL_FILE)
    self._files: dict[str, Any] = {}
    self._tensorboard = None
    self._wandb_run = None
    if tensorboard:
      try:
        import tensorboardX  # pylint: disable=g-import-not-at-top
      except ImportError as error:
        raise ImportError(
            "tensorboard=True needs tensorboardX: pip install tensorboardX, "
            "or turn TensorBoard logging off in the config.") from error
      self._tensorboard_cls = tensorboardX.SummaryWriter
      self._tensorboard = self._tensorboard_cls(
          logdir=os.path.join(self.workdir, TENSORBOARD_DIR))
    if wandb is not None:
      self._wandb_run = self._init_wandb(dict(wandb))

  def _init_wandb(self, options: dict[str, Any]):
    unknown = sorted(set(options) - _WANDB_OPTIONS)
    if unknown:
      raise ValueError(
          f"wandb options {unknown} are not supported by MetricWriter. Valid "
          f"options: {', '.join(sorted(_WANDB_OPTIONS))}.")
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      raise ImportError("wandb logging needs the wandb package: pip install "
                        "wandb, or set the wandb option to None.") from error
    config = options.pop("config", None)
    config_path = os.path.join(self.workdir, "config.json")
    if config is None and os.path.exists(config_path):
      with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    mode = options.pop("mode", "offline")
    return wandb.init(mode=mode, dir=self.workdir, config=config, **options)

  def _append(self, key: str, path: str, record: Mapping[str, Any]) -> None:
    if "step" not in record:
      raise ValueError(f"{os.path.basename(path)} records need a 'step' (the "
                       f"global step); got keys {sorted(record)}.")
    line = json.dumps(dict(record), default=_to_builtin)
    handle = self._files.get(key)
    if handle is None:
      _repair_tail(path)
      handle = self._files[key] = open(path, "a", encoding="utf-8")
    # One write per record so a kill cuts at most this line.
    handle.write(line + "\n")
    handle.flush()

  def write_train(self, record: Mapping[str, Any]) -> None:
    """Appends a train record; scalars go to ``train/<key>`` at its step."""
    self._append("train", self.train_path, record)
    step = int(record["step"])
    scalars = {f"train/{key}": value for key, value in
               ((k, _scalar(v)) for k, v in record.items() if k != "step")
               if value is not None}
    self._log_scalars(scalars, step)

  def write_eval(self, record: Mapping[str, Any]) -> None:
    """Appends an eval record; metrics go to ``eval/<metric>/<task_name>``."""
    self._append("eval", self.eval_path, record)
    step = int(record["step"])
    task = record.get("task_name", record.get("task", "unknown"))
    scalars = {f"eval/{key}/{task}": value for key, value in
               ((k, _scalar(v)) for k, v in record.items()
                if k not in _EVAL_ID_KEYS)
               if value is not None}
    self._log_scalars(scalars, step)

  def _log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
    if not scalars:
      return
    if self._tensorboard is not None:
      for tag, value in scalars.items():
        self._tensorboard.add_scalar(tag, value, global_step=step)
      self._tensorboard.flush()
    if self._wandb_run is not None:
      self._wandb_run.log(dict(scalars), step=step)

  def truncate_after(self, step: int) -> tuple[int, int]:
    """Drops records with ``step`` > the given step (resume from a checkpoint).

    Both files are rewritten atomically; a truncated last line is dropped.
    TensorBoard is rewound too: its writer is reopened with
    ``purge_step=step + 1``, which tells TensorBoard to discard the old
    events after ``step``. wandb is not rewound (resume a wandb run by
    passing its ``id`` and ``resume="allow"``; it ignores steps it has
    already seen).

    Returns:
      (train records kept, eval records kept).
    """
    self._close_files()
    kept = []
    for path in (self.train_path, self.eval_path):
      records = read_jsonl(path, missing_ok=True)
      for line_number, record in enumerate(records, 1):
        if "step" not in record:
          raise ValueError(f"{path}: record {line_number} has no 'step'; "
                           f"cannot truncate. Fix or delete that record.")
      keep = [r for r in records if r["step"] <= step]
      if os.path.exists(path):
        atomic_write_text(path, "".join(
            json.dumps(r, default=_to_builtin) + "\n" for r in keep))
      kept.append(len(keep))
    if self._tensorboard is not None:
      self._tensorboard.close()
      self._tensorboard = self._tensorboard_cls(
          logdir=os.path.join(self.workdir, TENSORBOARD_DIR),
          purge_step=step + 1)
    return kept[0], kept[1]

  def _close_files(self) -> None:
    for handle in self._files.values():
      handle.close()
    self._files.clear()

  def close(self) -> None:
    """Closes the files, flushes TensorBoard and finishes the wandb run."""
    self._close_files()
    if self._tensorboard is not None:
      self._tensorboard.close()
      self._tensorboard = None
    if self._wandb_run is not None:
      self._wandb_run.finish()
      self._wandb_run = None

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

