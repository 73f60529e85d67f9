r"""Compares runs side by side; rebuilds each run's tables and plots.

Usage::

  python -m cljax.report RUN [RUN ...] [--out DIR] [--metric eer] \
      [--format markdown|csv] [--norebuild]

Each RUN is a run folder (holding results/results.json) or any folder above
run folders (e.g. a sweep); results.json files are found recursively.

For every run, results/matrix_<metric>.csv, results/summary.csv and
plots/{matrix,curves}_<metric>.png, plots/loss.png are rebuilt from
results/results.json and train.jsonl (results.json itself is not touched).
Then runs are grouped by method (by config name where one method was run
with several configs) and each summary of --metric is shown as mean ± std
over seeds. Unfinished runs are listed and left out of the means.
comparison_<metric>.md and comparison_<metric>.csv go to --out (default:
the first RUN if it is a sweep folder, else the runs' common parent); the
table is also printed (--format selects markdown or csv).

Flags:
  --out: folder for comparison_<metric>.{md,csv}.
  --metric: metric to compare (default: the first metric of the first run).
  --format: what to print: markdown (default) or csv.
  --[no]rebuild: rebuild each run's CSVs and plots (default true).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import sys
from typing import Any, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from cljax.io.results import atomic_write_text
from cljax.io.results import is_percent_metric
from cljax.io.results import RESULTS_FILE
from cljax.io.results import ResultMatrix
from cljax.io.writers import read_jsonl

# Summaries in the comparison, in column order.
SUMMARY_COLUMNS = ("average_final", "bwt", "forgetting", "in_domain",
                   "next_domain", "average_incremental", "fwt")
# Folders inside a run that never hold runs; skipping them keeps the search
# fast over checkpoints with thousands of files.
_SKIP_DIRS = frozenset({"checkpoints", "tensorboard", "wandb", "plots",
                        "results", "__pycache__"})

# A private flag set: the sweep tool imports this module, and global flags
# named --out / --metric would collide with its own.
_FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "Folder for comparison_<metric>.{md,csv}.",
                    flag_values=_FLAGS)
flags.DEFINE_string("metric", None, "Metric to compare (default: the first "
                    "metric of the first run).", flag_values=_FLAGS)
flags.DEFINE_enum("format", "markdown", ["markdown", "csv"],
                  "What to print to stdout.", flag_values=_FLAGS)
flags.DEFINE_bool("rebuild", True, "Rebuild each run's CSVs and plots.",
                  flag_values=_FLAGS)


class ReportError(ValueError):
  """A RUN argument or a run folder cannot be reported; names the path."""


@dataclasses.dataclass
class Run:
  """A run folder and its parsed results.json."""
  path: str
  results: ResultMatrix

  @property
  def finished(self) -> bool:
    return self.results.finished


# ----------------------------------------------------------------- finding


def _is_run_dir(path: str) -> bool:
  return os.path.isfile(os.path.join(path, "results", RESULTS_FILE))


def find_run_dirs(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
  """Run folders under each path (a run folder, a results.json or a sweep).

  Order: the arguments' order, runs sorted by path within one argument;
  a run reached twice is listed once.

  Raises:
    ReportError: a path does not exist or holds no results.json.
  """
  found: list[str] = []
  for path in map(os.fspath, paths):
    if not os.path.exists(path):
      raise ReportError(f"{path}: no such file or folder.")
    if os.path.isfile(path):
      if os.path.basename(path) != RESULTS_FILE:
        raise ReportError(f"{path}: pass a run folder, a sweep folder or a "
                          f"{RESULTS_FILE}.")
      # <run>/results/results.json -> <run>
      runs = [os.path.dirname(os.path.dirname(os.path.abspath(path)))]
    elif _is_run_dir(path):
      runs = [path]
    else:
      runs = []
      for root, dirs, _ in os.walk(path):
        if _is_run_dir(root):
          runs.append(root)
          dirs.clear()  # Runs do not nest.
          continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
      if not runs:
        raise ReportError(
            f"{path}: no results/{RESULTS_FILE} in it or below it. Pass a run "
            f"folder (the --workdir of a run that finished at least one "
            f"task) or a folder of such runs.")
    for run in sorted(runs):
      if os.path.abspath(run) not in map(os.path.abspath, found):
        found.append(run)
  return found


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Run]:
  """Finds and parses every run under ``paths``."""
  runs = []
  for run_dir in find_run_dirs(paths):
    try:
      runs.append(Run(run_dir, ResultMatrix.load(run_dir)))
    except ValueError as error:
      raise ReportError(str(error)) from error
  return runs


def default_out_dir(paths: Sequence[str | os.PathLike[str]],
                    run_dirs: Sequence[str]) -> str:
  """The first path if it is a sweep folder, else the runs' common parent."""
  first = os.fspath(paths[0])
  if os.path.isdir(first) and not _is_run_dir(first):
    return first
  parents = [os.path.dirname(os.path.abspath(run)) for run in run_dirs]
  return os.path.commonpath(parents)


# --------------------------------------------------------------- rebuilding


def rebuild_run(run_dir: str, results: ResultMatrix | None = None
                ) -> list[str]:
  """Rewrites a run's derived files from results.json and train.jsonl.

  Writes results/matrix_<metric>.csv, results/summary.csv,
  plots/matrix_<metric>.png, plots/curves_<metric>.png and plots/loss.png
  (the loss plot only when train.jsonl has loss records).

  Returns:
    The paths written.
  """
  # Plots import matplotlib (slow); only the rebuild needs it.
  from cljax.io import plots  # pylint: disable=g-import-not-at-top
  if results is None:
    results = ResultMatrix.load(run_dir)
  written = results.save(os.path.join(run_dir, "results"), write_json=False)
  plot_dir = os.path.join(run_dir, "plots")
  if results.tasks_done:
    for metric, entry in results.metrics.items():
      kwargs = dict(R=results.matrix(metric), task_names=results.task_names,
                    metric=metric, higher_is_better=entry.higher_is_better,
                    baseline=results.baseline(metric))
      written.append(plots.plot_matrix(
          path=os.path.join(plot_dir, f"matrix_{metric}.png"), **kwargs))
      written.append(plots.plot_curves(
          path=os.path.join(plot_dir, f"curves_{metric}.png"), **kwargs))
  train_path = os.path.join(run_dir, "train.jsonl")
  records = read_jsonl(train_path, missing_ok=True)
  if any("loss" in record for record in records):
    written.append(plots.plot_loss(records, os.path.join(plot_dir,
                                                         "loss.png")))
  else:
    logging.info("%s: no loss records; skipping loss.png.", train_path)
  return written


# ---------------------------------------------------------------- comparing


def _labels(runs: Sequence[Run]) -> list[str]:
  """Group label per run: the method, or the config name where one method
  appears with several configs (so those configs are not averaged together).
  """
  configs: dict[str, set[str]] = {}
  for run in runs:
    configs.setdefault(run.results.method, set()).add(run.results.config_name)
  labels = []
  for run in runs:
    method, config = run.results.method, run.results.config_name
    if len(configs[method]) > 1:
      labels.append(config or method or "(no method)")
    else:
      labels.append(method or config or "(no method)")
  return labels


def _format(value: float, std: float, n: int, percent: bool) -> str:
  if n == 0 or math.isnan(value):
    return "n/a"
  scale = 100.0 if percent else 1.0
  digits = 2 if percent else 4
  text = f"{scale * value:.{digits}f}"
  if n > 1 and not math.isnan(std):
    text += f" ± {scale * std:.{digits}f}"
  return text


def compare(run_dirs: Sequence[str | os.PathLike[str]],
            metric: str | None = None,
            out: str | os.PathLike[str] | None = None
            ) -> tuple[str, list[dict[str, Any]]]:
  """Mean ± std over seeds of each summary of ``metric``, per method.

  Reads only; does not rebuild the runs' tables and plots (``rebuild_run``
  does).

  Args:
    run_dirs: run folders, results.json files, or folders of runs.
    metric: the metric to compare; default: the first metric of the first
      run.
    out: if given, also write comparison_<metric>.{md,csv} into this folder.

  Returns:
    (markdown, rows). ``rows`` has one dict per group, in label order, with
    keys label, metric, method, config_name, n (finished runs averaged),
    seeds, n_unfinished, runs (paths), and for each summary S in SUMMARY_COLUMNS
    ``S`` (the mean) and ``S_std`` (sample std, ddof=1; NaN for n < 2), in
    the metric's native units (fractions for EER); NaN when n = 0 or the
    summary is undefined (e.g. fwt without a baseline). The markdown shows
    the same numbers, in percent for percent metrics.

  Raises:
    ReportError: no runs, a run lacks the metric, or runs of one group
      were trained on different task streams.
  """
  markdown, rows = compare_runs(load_runs(run_dirs), metric)
  if out is not None:
    write_comparison(os.fspath(out), rows[0]["metric"], markdown, rows)
  return markdown, rows


def compare_runs(runs: Sequence[Run], metric: str | None = None
                 ) -> tuple[str, list[dict[str, Any]]]:
  """``compare`` on runs already loaded (see ``compare``)."""
  if not runs:
    raise ReportError("No runs to compare.")
  if metric is None:
    metric = next((m for run in runs for m in run.results.metric_names), None)
    if metric is None:
      raise ReportError(f"{runs[0].path}: results.json records no metric.")
  for run in runs:
    if metric not in run.results.metrics:
      raise ReportError(
          f"{run.path}: results.json has no metric {metric!r} (it has "
          f"{run.results.metric_names}). Choose one with --metric.")
  higher = {run.results.metrics[metric].higher_is_better for run in runs}
  if len(higher) > 1:
    raise ReportError(f"Runs disagree on whether {metric} is higher-is-"
                      f"better; check their results.json files.")
  higher_is_better = higher.pop()
  percent = is_percent_metric(metric)

  groups: dict[str, list[Run]] = {}
  for label, run in zip(_labels(runs), runs):
    groups.setdefault(label, []).append(run)

  rows, notes, unfinished = [], [], []
  streams = set()
  for label in sorted(groups):
    members = groups[label]
    task_lists = {tuple(run.results.task_names) for run in members}
    if len(task_lists) > 1:
      raise ReportError(
          f"Runs of {label!r} use different task streams, so their numbers "
          f"cannot be averaged: "
          + "; ".join(f"{run.path}: {run.results.task_names}"
                      for run in members)
          + ". Compare them in separate reports.")
    streams |= task_lists
    done = [run for run in members if run.finished]
    for run in members:
      if not run.finished:
        unfinished.append((label, run))
    seeds = [run.results.seed for run in done]
    repeated = sorted({str(s) for s in seeds if seeds.count(s) > 1})
    if repeated:
      notes.append(f"{label}: seed(s) {', '.join(repeated)} appear in more "
                   f"than one finished run (copies of one run?); each counts.")
    row: dict[str, Any] = {
        "label": label,
        "metric": metric,
        "method": members[0].results.method,
        "config_name": members[0].results.config_name,
        "n": len(done),
        "seeds": seeds,
        "n_unfinished": len(members) - len(done),
        "runs": [run.path for run in done],
        "memory_bytes": max((run.results.memory_bytes or 0 for run in done),
                            default=0),
    }
    summaries = [run.results.summaries()[metric] for run in done]
    for key in SUMMARY_COLUMNS:
      values = np.array([s[key] for s in summaries], dtype=np.float64)
      row[key] = float(np.mean(values)) if values.size else math.nan
      row[f"{key}_std"] = (float(np.std(values, ddof=1)) if values.size > 1
                           else math.nan)
    rows.append(row)

  if len(streams) > 1:
    notes.append("Groups were trained on different task streams; compare "
                 "their numbers with care.")
  for label, run in unfinished:
    logging.warning("%s (%s, seed %s) is unfinished: %d/%d tasks done; left "
                    "out of the means.", run.path, label, run.results.seed,
                    run.results.tasks_done, run.results.num_tasks)
  return _markdown(metric, higher_is_better, percent, rows, unfinished,
                   notes), rows


def _markdown(metric: str, higher_is_better: bool, percent: bool,
              rows: Sequence[dict[str, Any]],
              unfinished: Sequence[tuple[str, Run]],
              notes: Sequence[str]) -> str:
  direction = "higher" if higher_is_better else "lower"
  unit = "%, " if percent else ""
  # A memory column only where some method keeps a replay memory.
  memory = any(row.get("memory_bytes") for row in rows)
  lines = [f"## {metric}: mean ± std over seeds ({unit}{direction} is better)",
           "",
           "| method | n | " + " | ".join(SUMMARY_COLUMNS)
           + (" | memory (MB)" if memory else "") + " |",
           "|:--|--:|" + "--:|" * (len(SUMMARY_COLUMNS) + memory)]
  for row in rows:
    cells = [_format(row[key], row[f"{key}_std"], row["n"], percent)
             for key in SUMMARY_COLUMNS]
    if memory:
      cells.append(f"{row.get('memory_bytes', 0) / 1e6:.1f}")
    lines.append(f"| {row['label']} | {row['n']} | " + " | ".join(cells)
                 + " |")
  bad_bwt = "negative" if higher_is_better else "positive"
  lines += [
      "",
      f"n: finished runs averaged; ± is the sample std over them (ddof=1), "
      f"left out for n = 1. bwt and fwt keep the sign of their formula (for "
      f"{metric}, {bad_bwt} bwt means forgetting); forgetting > 0 always "
      f"means forgotten. fwt is n/a for runs without an untrained baseline.",
  ]
  if unfinished:
    lines += ["", "**Unfinished runs (left out of the means):**", ""]
    for label, run in unfinished:
      lines.append(f"- `{run.path}` ({label}, seed {run.results.seed}): "
                   f"{run.results.tasks_done}/{run.results.num_tasks} tasks "
                   f"done")
  if notes:
    lines += ["", "**Notes:**", ""] + [f"- {note}" for note in notes]
  return "\n".join(lines) + "\n"


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
  """The comparison rows as CSV (native units, full precision)."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  header = ["label", "method", "config_name", "n", "seeds", "n_unfinished",
            "memory_bytes"]
  for key in SUMMARY_COLUMNS:
    header += [key, f"{key}_std"]
  writer.writerow(header)
  for row in rows:
    line = [row["label"], row["method"], row["config_name"], row["n"],
            ";".join(map(str, row["seeds"])), row["n_unfinished"],
            row.get("memory_bytes", 0)]
    for key in SUMMARY_COLUMNS:
      line += [repr(row[key]), repr(row[f"{key}_std"])]
    writer.writerow(line)
  return out.getvalue()


def write_comparison(out_dir: str, metric: str, markdown: str,
                     rows: Sequence[dict[str, Any]]) -> tuple[str, str]:
  """Writes comparison_<metric>.md and .csv into ``out_dir``."""
  md_path = atomic_write_text(
      os.path.join(out_dir, f"comparison_{metric}.md"), markdown)
  csv_path = atomic_write_text(
      os.path.join(out_dir, f"comparison_{metric}.csv"), rows_to_csv(rows))
  return md_path, csv_path


# --------------------------------------------------------------------- main


def _parse(argv: Sequence[str]) -> list[str]:
  """Parses this module's flags; returns [program, RUN...]."""
  for name in _FLAGS:
    _FLAGS[name].unparse()  # Repeated in-process calls start from defaults.
  rest = _FLAGS(list(argv), known_only=True)
  if any(arg.startswith("-") for arg in rest[1:]):
    # absl's own flags (--verbosity, ...); an unknown flag fails here.
    rest = flags.FLAGS(rest)
  return rest


def main(argv: Sequence[str]) -> int:
  """Command-line entry; ``argv`` is [program, RUN..., flags...].

  Returns:
    0 on success, 1 on a reportable error (printed to stderr).
  """
  try:
    positional = _parse(argv)[1:]
  except flags.Error as error:
    print(f"cljax.report: {error}", file=sys.stderr)
    return 1
  if not positional:
    print("cljax.report: pass at least one RUN folder. Usage: python -m "
          "cljax.report RUN [RUN ...] [--out DIR] [--metric eer]",
          file=sys.stderr)
    return 1
  try:
    runs = load_runs(positional)
    if _FLAGS.rebuild:
      for run in runs:
        written = rebuild_run(run.path, run.results)
        logging.info("%s: rebuilt %d tables and plots.", run.path,
                     len(written))
    markdown, rows = compare_runs(runs, _FLAGS.metric)
    metric = rows[0]["metric"]
    out_dir = _FLAGS.out or default_out_dir(
        positional, [run.path for run in runs])
    md_path, csv_path = write_comparison(out_dir, metric, markdown, rows)
  except (ReportError, ValueError, FileNotFoundError) as error:
    print(f"cljax.report: {error}", file=sys.stderr)
    return 1
  print(markdown if _FLAGS.format == "markdown" else rows_to_csv(rows),
        end="")
  print(f"\nwrote {md_path} and {csv_path}", file=sys.stderr)
  return 0


def _app_flags_parser(argv: list[str]) -> list[str]:
  # app.run needs the global flags parsed (it reads --verbosity etc.); main
  # parses this module's flags itself so it also works when called directly.
  try:
    flags.FLAGS(_FLAGS(list(argv), known_only=True))
  except flags.Error as error:
    print(f"cljax.report: {error}", file=sys.stderr)
    sys.exit(1)
  return argv


if __name__ == "__main__":
  app.run(main, flags_parser=_app_flags_parser)
