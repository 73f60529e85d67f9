"""The result matrix of a continual run and its on-disk form, results.json.

``ResultMatrix`` collects ``R[i, j]`` (metric on task j's test split after
training task i) one row per finished task, plus the untrained model's row
(the FWT baseline), for every evaluated metric. ``save`` writes::

  <results_dir>/results.json          the source of truth (format below)
  <results_dir>/matrix_<metric>.csv   one table per metric
  <results_dir>/summary.csv           metric,summary,value rows

results.json (``format`` 1)::

  {"format": 1, "method": "finetune", "config_name": "finetune_audio",
   "seed": 0, "task_names": ["t0", "t1", "t2"], "tasks_done": 2,
   "metrics": {"eer": {"higher_is_better": false,
                       "matrix": [[T floats], ...],   # tasks_done rows
                       "baseline": [T floats] or null}},
   "summaries": {"eer": {"average_final": ..., ...}}}

Values are the metric's native units (fractions for EER/AUC/accuracy).
A NaN value (a cell that was not evaluated, or a summary with no terms) is
written as JSON ``null`` so the file stays standard JSON; it reads back as
NaN. ``summaries`` is derived data: it is recomputed from the matrices when
written and ignored when read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import tempfile
from typing import Any, Callable, Mapping, Sequence

import numpy as np

FORMAT_VERSION = 1
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.csv"
UNTRAINED_LABEL = "untrained"
# Literal backslash: the corner cell reads "trained_on\tested_on".
CORNER_LABEL = "trained_on\\tested_on"


def matrix_csv_name(metric: str) -> str:
  """File name of a metric's result-matrix CSV inside the results folder."""
  return f"matrix_{metric}.csv"


def metric_direction(metric: str) -> bool:
  """``higher_is_better`` of a metric registered in ``cljax.metrics``."""
  from cljax.metrics import METRICS  # pylint: disable=g-import-not-at-top
  if metric not in METRICS:
    raise ValueError(
        f"Metric {metric!r} is not in cljax.metrics.METRICS "
        f"({', '.join(sorted(METRICS))}), so its direction is unknown. "
        f"Declare it: ResultMatrix(..., metrics={{{metric!r}: True/False}}) "
        f"(True when higher is better).")
  return bool(METRICS[metric].higher_is_better)


def is_percent_metric(metric: str) -> bool:
  """True when tables and plots show ``100 * value`` for ``metric``."""
  from cljax.metrics import METRICS  # pylint: disable=g-import-not-at-top
  entry = METRICS.get(metric)
  return bool(getattr(entry, "percent", False)) if entry is not None else False


def atomic_write(path: str | os.PathLike[str],
                 write: Callable[[Any], None], *, binary: bool = False) -> str:
  """Calls ``write(file)`` on a temporary file, then ``os.replace``s it.

  A reader (or a resumed run after SIGKILL) sees either the old file or the
  new one, never a half-written one.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
      dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with (os.fdopen(fd, "wb") if binary else
          os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> str:
  """Writes ``text`` to ``path`` atomically (see ``atomic_write``)."""
  return atomic_write(path, lambda f: f.write(text))


def _to_json_number(value: float) -> float | None:
  """NaN -> None (JSON null); everything else a plain Python float."""
  value = float(value)
  return None if math.isnan(value) else value


def _from_json_number(value: Any, where: str) -> float:
  """JSON null -> NaN; numbers -> float; anything else is an error."""
  if value is None:
    return math.nan
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f"{where}: expected a number or null, got {value!r}.")
  return float(value)


@dataclasses.dataclass
class MetricResults:
  """One metric's rows of the result matrix.

  Attributes:
    higher_is_better: the metric's direction (False for EER).
    matrix: one list of T values per finished task, in training order.
    baseline: the untrained model's T values, or None if not evaluated.
  """
  higher_is_better: bool
  matrix: list[list[float]] = dataclasses.field(default_factory=list)
  baseline: list[float] | None = None


@dataclasses.dataclass
class ResultMatrix:
  """Result matrices (one per metric) of one continual run.

  Build it with the task names (and, optionally, the metrics with their
  directions: ``metrics={"eer": False, "accuracy": True}``), call
  ``set_baseline`` once with the untrained model's evaluation (optional) and
  ``add_row`` after each task, then ``save`` it. Without ``metrics``, the
  metrics are the keys of the first row (or baseline) added, with their
  directions from ``cljax.metrics.METRICS``. Their order is kept; the first
  is the one reports use by default.

  Attributes:
    task_names: the stream's T task names, in training order.
    method: the strategy name, e.g. "finetune"; reports group runs by it.
    config_name: the config (file or variant) name; reports use it to tell
      apart runs of one method with different configs.
    seed: the run's seed; reports average over seeds.
    memory_bytes: bytes of the strategy's replay memory (0 without one;
      None where unknown).
    metrics: metric name -> its rows. The constructor also accepts
      metric name -> higher_is_better (bool) to declare the metrics before
      any row; required for metrics not in ``cljax.metrics.METRICS``.
  """
  task_names: list[str]
  method: str = ""
  config_name: str = ""
  seed: int | None = None
  memory_bytes: int | None = None
  metrics: dict[str, MetricResults] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    self.task_names = [str(name) for name in self.task_names]
    if not self.task_names:
      raise ValueError("ResultMatrix needs at least one task name.")
    if len(set(self.task_names)) != len(self.task_names):
      raise ValueError(
          f"ResultMatrix task_names must be unique (they label the matrix "
          f"rows and columns), got {self.task_names}. Rename the tasks in "
          f"the stream.")
    declared = {}
    for metric, entry in dict(self.metrics).items():
      if isinstance(entry, MetricResults):
        declared[str(metric)] = entry
      elif isinstance(entry, (bool, np.bool_)):
        declared[str(metric)] = MetricResults(higher_is_better=bool(entry))
      else:
        raise ValueError(
            f"ResultMatrix metrics[{metric!r}] must be its higher_is_better "
            f"(True/False) or a MetricResults, got {entry!r}.")
    rows = {len(entry.matrix) for entry in declared.values()}
    if len(rows) > 1:
      raise ValueError(f"ResultMatrix metrics have different row counts "
                       f"{sorted(rows)}; every metric needs one row per task "
                       f"done.")
    self.metrics = declared

  # ---------------------------------------------------------------- building

  @property
  def num_tasks(self) -> int:
    return len(self.task_names)

  @property
  def tasks_done(self) -> int:
    """Rows recorded so far (every metric has the same number)."""
    if not self.metrics:
      return 0
    return len(next(iter(self.metrics.values())).matrix)

  @property
  def finished(self) -> bool:
    return self.tasks_done == self.num_tasks

  @property
  def metric_names(self) -> list[str]:
    return list(self.metrics)

  @property
  def has_baseline(self) -> bool:
    """True once ``set_baseline`` was called (or a baseline was loaded)."""
    return any(entry.baseline is not None for entry in self.metrics.values())

  def _values_by_metric(self, metrics_by_task: Sequence[Mapping[str, float]],
                        what: str) -> dict[str, list[float]]:
    """Transposes ``[{metric: value} per task]`` into ``{metric: [T values]}``.

    Checks there is one dict per task and that every dict has exactly the
    metrics of this matrix (fixing them on the first call).
    """
    if isinstance(metrics_by_task, Mapping) or len(metrics_by_task) != (
        self.num_tasks):
      raise ValueError(
          f"ResultMatrix.{what} expects a list of {self.num_tasks} dicts (one "
          f"per task: {self.task_names}, each {{metric: value}}), got "
          f"{type(metrics_by_task).__name__} of length "
          f"{len(metrics_by_task)}. Evaluate every task, seen or not.")
    expected = list(self.metrics) or list(metrics_by_task[0])
    if not expected:
      raise ValueError(f"ResultMatrix.{what}: the first task's dict has no "
                       f"metrics; pass e.g. {{'eer': 0.1}}.")
    for name, values in zip(self.task_names, metrics_by_task):
      if set(values) != set(expected):
        raise ValueError(
            f"ResultMatrix.{what}: task {name!r} has metrics "
            f"{sorted(values)}, expected {sorted(expected)}. Every task must "
            f"report the same metrics (pass only metric values, not counts "
            f"such as num_examples).")
    by_metric = {}
    for metric in expected:
      row = []
      for name, values in zip(self.task_names, metrics_by_task):
        value = float(values[metric])
        if math.isinf(value):
          raise ValueError(
              f"ResultMatrix.{what}: {metric} on task {name!r} is {value}; "
              f"values must be finite, or NaN for a task not evaluated.")
        row.append(value)
      by_metric[metric] = row
    if not self.metrics:
      for metric in expected:
        self.metrics[metric] = MetricResults(
            higher_is_better=metric_direction(metric))
    return by_metric

  def add_row(self, metrics_by_task: Sequence[Mapping[str, float]]) -> None:
    """Appends the row for the task just trained.

    Args:
      metrics_by_task: one ``{metric: value}`` dict per task of the stream
        (seen and unseen), in task order.
    """
    if self.finished and self.metrics:
      raise ValueError(
          f"ResultMatrix already has all {self.num_tasks} rows; a resumed run "
          f"must call truncate(tasks_done) before adding rows again.")
    for metric, row in self._values_by_metric(metrics_by_task,
                                              "add_row").items():
      self.metrics[metric].matrix.append(row)

  def set_baseline(self, metrics_by_task: Sequence[Mapping[str, float]]
                   ) -> None:
    """Sets the untrained model's row (for FWT), same format as ``add_row``."""
    for metric, row in self._values_by_metric(metrics_by_task,
                                              "set_baseline").items():
      self.metrics[metric].baseline = row

  def truncate(self, tasks_done: int) -> None:
    """Keeps the first ``tasks_done`` rows (resume from an earlier task)."""
    if not 0 <= tasks_done <= self.tasks_done:
      raise ValueError(f"truncate({tasks_done}): must be in [0, "
                       f"{self.tasks_done}] (the rows recorded).")
    for results in self.metrics.values():
      del results.matrix[tasks_done:]

  # ----------------------------------------------------------------- reading

  def _get(self, metric: str) -> MetricResults:
    if metric not in self.metrics:
      raise KeyError(f"Metric {metric!r} was not recorded; this run has "
                     f"{self.metric_names or 'no metrics yet'}.")
    return self.metrics[metric]

  def matrix(self, metric: str) -> np.ndarray:
    """The recorded rows as a float64 array of shape (tasks_done, T)."""
    rows = self._get(metric).matrix
    return np.asarray(rows, dtype=np.float64).reshape(len(rows),
                                                      self.num_tasks)

  def baseline(self, metric: str) -> np.ndarray | None:
    """The untrained model's values, shape (T,), or None."""
    baseline = self._get(metric).baseline
    return None if baseline is None else np.asarray(baseline, np.float64)

  def summaries(self) -> dict[str, dict[str, float]]:
    """``cljax.metrics.matrix.summarize`` of each metric's matrix.

    For a finished run this is the summary of the full T x T matrix. For an
    unfinished run (k = tasks_done < T rows) it is the summary of the square
    top-left k x k block (tasks 0..k-1 only, baseline cut to k) — the run
    "as if the stream had ended after task k-1" — so a partial run's numbers
    never mix in columns of tasks it has not trained. Empty with no rows.
    """
    # Lazy: cljax.metrics is only needed once there is something to summarize.
    from cljax.metrics.matrix import summarize  # pylint: disable=g-import-not-at-top
    k = self.tasks_done
    if k == 0:
      return {}
    summaries = {}
    for metric, results in self.metrics.items():
      baseline = self.baseline(metric)
      summaries[metric] = {
          key: float(value) for key, value in summarize(
              self.matrix(metric)[:, :k], results.higher_is_better,
              None if baseline is None else baseline[:k]).items()}
    return summaries

  # ----------------------------------------------------------- serialization

  def to_dict(self) -> dict[str, Any]:
    """The results.json object (NaN as None)."""
    return {
        "format": FORMAT_VERSION,
        "method": self.method,
        "config_name": self.config_name,
        "seed": self.seed,
        "memory_bytes": self.memory_bytes,
        "task_names": list(self.task_names),
        "tasks_done": self.tasks_done,
        "metrics": {
            metric: {
                "higher_is_better": results.higher_is_better,
                "matrix": [[_to_json_number(v) for v in row]
                           for row in results.matrix],
                "baseline": (None if results.baseline is None else
                             [_to_json_number(v) for v in results.baseline]),
            } for metric, results in self.metrics.items()},
        "summaries": {
            metric: {key: _to_json_number(value)
                     for key, value in summary.items()}
            for metric, summary in self.summaries().items()},
    }

  def to_json(self) -> str:
    # allow_nan=False: NaN is already None, so this only guards standard JSON.
    return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

  @classmethod
  def from_dict(cls, data: Mapping[str, Any],
                source: str = "results.json") -> ResultMatrix:
    """Parses a results.json object; errors name ``source`` and the field."""
    if not isinstance(data, Mapping):
      raise ValueError(f"{source}: expected a JSON object, got "
                       f"{type(data).__name__}.")
    version = data.get("format")
    if version != FORMAT_VERSION:
      raise ValueError(
          f"{source}: format={version!r}, this cljax reads format "
          f"{FORMAT_VERSION}. Rewrite the file with a matching cljax version.")
    for key in ("task_names", "metrics"):
      if key not in data:
        raise ValueError(f"{source}: missing field {key!r}.")
    result = cls(task_names=list(data["task_names"]),
                 method=str(data.get("method", "")),
                 config_name=str(data.get("config_name", "")),
                 seed=data.get("seed"),
                 memory_bytes=data.get("memory_bytes"))
    T = result.num_tasks
    tasks_done = data.get("tasks_done")
    for metric, entry in data["metrics"].items():
      where = f"{source}: metrics.{metric}"
      if not isinstance(entry, Mapping) or "matrix" not in entry or (
          "higher_is_better" not in entry):
        raise ValueError(f"{where}: needs 'higher_is_better' and 'matrix'.")
      rows = []
      for i, row in enumerate(entry["matrix"]):
        if len(row) != T:
          raise ValueError(f"{where}.matrix[{i}] has {len(row)} values, "
                           f"expected {T} (one per task).")
        rows.append([_from_json_number(v, f"{where}.matrix[{i}]")
                     for v in row])
      baseline = entry.get("baseline")
      if baseline is not None:
        if len(baseline) != T:
          raise ValueError(f"{where}.baseline has {len(baseline)} values, "
                           f"expected {T}.")
        baseline = [_from_json_number(v, f"{where}.baseline")
                    for v in baseline]
      if rows and len(rows) != (tasks_done if tasks_done is not None
                                else len(rows)):
        raise ValueError(f"{where}.matrix has {len(rows)} rows but "
                         f"tasks_done={tasks_done}.")
      if result.metrics and len(rows) != result.tasks_done:
        raise ValueError(f"{where}.matrix has {len(rows)} rows; other metrics "
                         f"have {result.tasks_done}.")
      result.metrics[str(metric)] = MetricResults(
          higher_is_better=bool(entry["higher_is_better"]), matrix=rows,
          baseline=baseline)
    if tasks_done is not None and tasks_done != result.tasks_done:
      raise ValueError(f"{source}: tasks_done={tasks_done} but the matrices "
                       f"have {result.tasks_done} rows.")
    return result

  @classmethod
  def from_json(cls, text: str, source: str = "results.json") -> ResultMatrix:
    try:
      data = json.loads(text)
    except json.JSONDecodeError as error:
      raise ValueError(f"{source} is not valid JSON ({error}). Rebuild it from "
                       f"eval.jsonl or rerun the last task.") from error
    return cls.from_dict(data, source)

  @classmethod
  def load(cls, path: str | os.PathLike[str]) -> ResultMatrix:
    """Reads results.json; ``path`` may be the file, a results folder or a run.
    """
    path = os.fspath(path)
    candidates = [path, os.path.join(path, RESULTS_FILE),
                  os.path.join(path, "results", RESULTS_FILE)]
    for candidate in candidates:
      if os.path.isfile(candidate):
        with open(candidate, encoding="utf-8") as f:
          return cls.from_json(f.read(), source=candidate)
    raise FileNotFoundError(
        f"No results.json at {path} (looked for {', '.join(candidates[1:])}). "
        f"Pass a run folder written by cljax (<workdir>/results/results.json).")

  # ------------------------------------------------------------------ tables

  def matrix_csv(self, metric: str) -> str:
    """The matrix as CSV: "untrained" row first (if any), then task rows.

    Values are the native units at full precision (``repr``), "nan" for NaN.
    """
    results = self._get(metric)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([CORNER_LABEL] + self.task_names)
    if results.baseline is not None:
      writer.writerow([UNTRAINED_LABEL] + [repr(v) for v in results.baseline])
    for name, row in zip(self.task_names, results.matrix):
      writer.writerow([name] + [repr(v) for v in row])
    return out.getvalue()

  def summary_csv(self) -> str:
    """Rows ``metric,summary,value`` for every metric and summary."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "summary", "value"])
    for metric, summary in self.summaries().items():
      for key, value in summary.items():
        writer.writerow([metric, key, repr(value)])
    return out.getvalue()

  def save(self, results_dir: str | os.PathLike[str],
           write_json: bool = True) -> list[str]:
    """Writes results.json, matrix_<metric>.csv and summary.csv atomically.

    Args:
      results_dir: usually ``<workdir>/results``; created if missing.
      write_json: False rewrites only the derived CSVs (what a report does,
        leaving the run's results.json untouched).

    Returns:
      The paths written, results.json first when written.
    """
    results_dir = os.fspath(results_dir)
    paths = []
    if write_json:
      paths.append(atomic_write_text(os.path.join(results_dir, RESULTS_FILE),
                                     self.to_json()))
    for metric in self.metrics:
      paths.append(atomic_write_text(
          os.path.join(results_dir, matrix_csv_name(metric)),
          self.matrix_csv(metric)))
    paths.append(atomic_write_text(os.path.join(results_dir, SUMMARY_FILE),
                                   self.summary_csv()))
    return paths
