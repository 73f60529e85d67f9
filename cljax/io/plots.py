"""Draws a run's figures: result-matrix heatmap, per-task curves, train loss.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, not
pyplot: no display is needed, no global backend is switched under a user's
notebook, and nothing leaks between calls. Each function writes a PNG
atomically (temporary file, then ``os.replace``) and returns its path.

Colour convention of the heatmap: green is always "good" and red "bad",
whatever the metric's direction, so an EER table (lower is better) and an
accuracy table (higher is better) read the same way.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Mapping, Sequence

from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
import numpy as np

from cljax.io.results import atomic_write, is_percent_metric
from cljax.io.results import UNTRAINED_LABEL

# Value 1.0 of this map is the "good" end (green), 0.0 the "bad" end (red).
CMAP_NAME = "RdYlGn"
# How much unseen cells (task j not trained yet) are blended towards white.
UNSEEN_FADE = 0.55


def good_color(cmap_name: str = CMAP_NAME) -> tuple[float, float, float, float]:
  """RGBA of the best value in a heatmap (the colormap's top end)."""
  return tuple(colormaps[cmap_name](1.0))


def goodness(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
  """Maps values to [0, 1], 1 = best finite value, 0 = worst; NaN stays NaN.

  The range is the finite values' own min..max so that differences between
  methods show even when every value is, say, below 10 % EER.
  """
  values = np.asarray(values, dtype=np.float64)
  finite = values[np.isfinite(values)]
  if not finite.size:
    return np.full(values.shape, np.nan)
  low, high = float(finite.min()), float(finite.max())
  if high == low:
    scaled = np.where(np.isfinite(values), 1.0, np.nan)
  else:
    scaled = (values - low) / (high - low)
  return scaled if higher_is_better else 1.0 - scaled


def cell_colors(values: np.ndarray, higher_is_better: bool,
                cmap_name: str = CMAP_NAME) -> np.ndarray:
  """RGBA per cell (shape values.shape + (4,)); NaN cells are light grey."""
  score = goodness(values, higher_is_better)
  rgba = np.asarray(colormaps[cmap_name](np.nan_to_num(score, nan=0.0)))
  rgba[np.isnan(score)] = mcolors.to_rgba("0.9")
  return rgba


def _scale(metric: str) -> tuple[float, str]:
  """(factor, unit suffix) for displaying ``metric``."""
  return (100.0, " (%)") if is_percent_metric(metric) else (1.0, "")


def _format_cell(value: float, factor: float) -> str:
  if not math.isfinite(value):
    return "n/a"
  shown = factor * value
  return f"{shown:.1f}" if factor != 1.0 else f"{shown:.3g}"


def _save(fig: Figure, path: str | os.PathLike[str]) -> str:
  """Renders ``fig`` to a PNG at ``path`` atomically."""
  path = os.fspath(path)
  FigureCanvasAgg(fig)
  return atomic_write(path, lambda f: fig.savefig(
      f, format="png", dpi=100, bbox_inches="tight"), binary=True)


def _check_matrix(R, task_names: Sequence[str], baseline) -> tuple[
    np.ndarray, np.ndarray | None]:
  R = np.asarray(R, dtype=np.float64)
  T = len(task_names)
  if R.ndim != 2 or R.shape[1] != T or R.shape[0] > T:
    raise ValueError(
        f"R must have shape (rows_done <= {T}, {T}) to match the {T} task "
        f"names, got {R.shape}.")
  if R.shape[0] == 0 and baseline is None:
    raise ValueError("Nothing to plot: R has no rows (no task finished) and "
                     "there is no baseline.")
  if baseline is not None:
    baseline = np.asarray(baseline, dtype=np.float64)
    if baseline.shape != (T,):
      raise ValueError(f"baseline must have shape ({T},), got "
                       f"{baseline.shape}.")
  return R, baseline


def plot_matrix(R, task_names: Sequence[str], metric: str,
                higher_is_better: bool, path: str | os.PathLike[str],
                baseline=None, title: str | None = None) -> str:
  """Heatmap of the result matrix, one annotated cell per (trained, tested).

  Rows are "trained on" (the untrained baseline first when given), columns
  "tested on". Cells of tasks not trained yet (j > i, and the whole
  baseline row) are faded and hatched so seen/unseen reads at a glance.

  Args:
    R: (rows_done, T) matrix, rows_done <= T.
    task_names: the T task names.
    metric: metric name (percent metrics are shown x100).
    higher_is_better: the metric's direction; green is always best.
    path: PNG path to write.
    baseline: optional (T,) untrained values.
    title: figure title; default names the metric and direction.

  Returns:
    ``path``.
  """
  R, baseline = _check_matrix(R, task_names, baseline)
  T = len(task_names)
  rows = list(task_names[:R.shape[0]])
  values = R
  unseen = np.triu(np.ones((R.shape[0], T), dtype=bool), k=1)
  if baseline is not None:
    rows = [UNTRAINED_LABEL] + rows
    values = np.vstack([baseline[None], R])
    unseen = np.vstack([np.ones((1, T), dtype=bool), unseen])
  factor, unit = _scale(metric)

  rgba = cell_colors(values, higher_is_better)
  faded = rgba.copy()
  faded[..., :3] = rgba[..., :3] + UNSEEN_FADE * (1.0 - rgba[..., :3])
  shown = np.where(unseen[..., None], faded, rgba)

  fig = Figure(figsize=(1.6 + 0.85 * T, 1.2 + 0.55 * len(rows)))
  ax = fig.add_subplot()
  ax.imshow(shown, aspect="auto", interpolation="nearest")
  for i in range(values.shape[0]):
    for j in range(T):
      if unseen[i, j]:
        ax.add_patch(patches.Rectangle(
            (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
            edgecolor="0.6", linewidth=0))
      red, green, blue, _ = shown[i, j]
      luminance = 0.299 * red + 0.587 * green + 0.114 * blue
      ax.text(j, i, _format_cell(values[i, j], factor), ha="center",
              va="center", fontsize=9,
              color="white" if luminance < 0.45 else "black",
              fontstyle="italic" if unseen[i, j] else "normal")
  ax.set_xticks(range(T))
  # Rotate when the names would not fit side by side under their columns.
  rotate = T > 4 or max(len(name) for name in task_names) > 10
  ax.set_xticklabels(task_names, rotation=30 if rotate else 0,
                     ha="right" if rotate else "center")
  ax.set_yticks(range(len(rows)))
  ax.set_yticklabels(rows)
  ax.set_xlabel("tested on")
  ax.set_ylabel("trained on (up to)")
  direction = "higher" if higher_is_better else "lower"
  ax.set_title(title or f"{metric}{unit}: {direction} is better; hatched = "
               f"not trained yet", fontsize=10)

  finite = values[np.isfinite(values)]
  if finite.size:
    low, high = float(finite.min()), float(finite.max())
    cmap = colormaps[CMAP_NAME]
    mappable = ScalarMappable(
        norm=mcolors.Normalize(factor * low, factor * high if high > low
                               else factor * low + 1e-9),
        cmap=cmap if higher_is_better else cmap.reversed())
    fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04)
  return _save(fig, path)


def plot_curves(R, task_names: Sequence[str], metric: str,
                higher_is_better: bool, path: str | os.PathLike[str],
                baseline=None, title: str | None = None) -> str:
  """One line per test task across training stages.

  x = the stage ("untrained" first when a baseline is given, then "after
  task i"). Each line is dashed while its task is unseen and solid from the
  stage it was trained on, where a large marker and a vertical line sit.

  Args: as ``plot_matrix``.

  Returns:
    ``path``.
  """
  R, baseline = _check_matrix(R, task_names, baseline)
  T = len(task_names)
  factor, unit = _scale(metric)
  offset = 1 if baseline is not None else 0
  stages = ([UNTRAINED_LABEL] if baseline is not None else []) + [
      f"after {name}" for name in task_names[:R.shape[0]]]
  columns = np.vstack([baseline[None], R]) if baseline is not None else R

  fig = Figure(figsize=(2.5 + 0.9 * max(len(stages), 3), 4.5))
  ax = fig.add_subplot()
  palette = colormaps["tab10" if T <= 10 else "tab20"]
  x = np.arange(len(stages))
  for j, name in enumerate(task_names):
    color = palette(j % palette.N)
    y = factor * columns[:, j]
    trained_at = j + offset  # stage index right after training task j
    before = slice(0, min(trained_at + 1, len(stages)))
    ax.plot(x[before], y[before], linestyle="--", color=color, alpha=0.6)
    if trained_at < len(stages):
      ax.plot(x[trained_at:], y[trained_at:], linestyle="-", marker="o",
              markersize=4, color=color, label=f"test on {name}")
      ax.plot([trained_at], [y[trained_at]], marker="*", markersize=13,
              color=color, markeredgecolor="black", linestyle="none")
      ax.axvline(trained_at, color="0.8", linewidth=0.8, zorder=0)
    else:
      ax.plot([], [], linestyle="--", color=color,
              label=f"test on {name} (not trained)")
  ax.set_xticks(x)
  rotate = len(stages) > 4 or max(len(str(s)) for s in stages) > 10
  ax.set_xticklabels(stages, rotation=30 if rotate else 0,
                     ha="right" if rotate else "center")
  ax.set_xlabel("training stage")
  ax.set_ylabel(f"{metric}{unit}")
  direction = "higher" if higher_is_better else "lower"
  ax.set_title(title or f"{metric} per test task ({direction} is better; "
               f"dashed = not trained yet, star = just trained)", fontsize=10)
  ax.grid(axis="y", alpha=0.3)
  ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
  return _save(fig, path)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Number) and not isinstance(value, bool)


def task_boundaries_from_records(
    train_records: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
  """(first logged step, task name) of each task in the train records."""
  boundaries = []
  previous = object()
  for record in sorted(train_records, key=lambda r: r.get("step", 0)):
    task = record.get("task")
    if task != previous:
      boundaries.append((int(record.get("step", 0)),
                         str(record.get("task_name", task))))
      previous = task
  return boundaries


def plot_loss(train_records: Sequence[Mapping[str, Any]],
              path: str | os.PathLike[str],
              task_boundaries: Sequence[int | tuple[int, str]] | None = None,
              title: str | None = None) -> str:
  """Train loss against the global step, with task boundaries marked.

  Args:
    train_records: train.jsonl records with "step" and "loss" (records
      without a numeric loss are skipped; NaN/Inf losses leave a gap).
    path: PNG path to write.
    task_boundaries: global steps where tasks start, or (step, task name)
      pairs; default: where the records' "task" field changes.
    title: figure title.

  Returns:
    ``path``.

  Raises:
    ValueError: no record has a numeric "step" and "loss".
  """
  points = sorted((r["step"], r["loss"]) for r in train_records
                  if _is_number(r.get("step")) and _is_number(r.get("loss")))
  if not points:
    raise ValueError("plot_loss: no train record has numeric 'step' and "
                     "'loss'; check train.jsonl.")
  steps = np.array([p[0] for p in points], dtype=np.float64)
  losses = np.array([p[1] for p in points], dtype=np.float64)
  losses[~np.isfinite(losses)] = np.nan
  if task_boundaries is None:
    task_boundaries = task_boundaries_from_records(train_records)
  boundaries = [b if isinstance(b, tuple) else (int(b), "")
                for b in task_boundaries]

  fig = Figure(figsize=(9, 4))
  ax = fig.add_subplot()
  ax.plot(steps, losses, linewidth=0.9, color="tab:blue", label="loss")
  window = max(len(losses) // 50, 5)
  if len(losses) >= 4 * window and np.all(np.isfinite(losses)):
    # A moving average shows the trend under the per-batch noise; it is
    # computed per task so it does not smear the jump at a task boundary.
    edges = [b[0] for b in boundaries]
    segment = np.searchsorted(np.asarray(sorted(edges), np.float64), steps,
                              side="right")
    label = f"mean of {window}"
    for index in np.unique(segment):
      mask = segment == index
      if mask.sum() < window:
        continue
      smooth = np.convolve(losses[mask], np.ones(window) / window,
                           mode="valid")
      ax.plot(steps[mask][window - 1:], smooth, linewidth=1.6,
              color="tab:orange", label=label)
      label = None
  for step, name in boundaries:
    ax.axvline(step, color="0.4", linestyle=":", linewidth=1)
    if name:
      # Above the axes, so labels never sit on the curve.
      ax.text(step, 1.01, name, transform=ax.get_xaxis_transform(),
              va="bottom", ha="left", fontsize=8, color="0.3")
  positive = losses[np.isfinite(losses)]
  if positive.size and positive.min() > 0 and positive.max() / max(
      positive.min(), 1e-300) > 100:
    ax.set_yscale("log")  # Losses spanning decades are unreadable linearly.
  ax.set_xlabel("global step")
  ax.set_ylabel("train loss")
  ax.set_title(title or "train loss (dotted lines: task starts)", fontsize=10,
               pad=16)
  ax.grid(alpha=0.3)
  ax.legend(loc="upper right", fontsize=8)
  return _save(fig, path)


def plot_similarity(similarity, task_names: Sequence[str],
                    path: str | os.PathLike[str], measure: str,
                    groups: Sequence[Sequence[int]] = ()) -> str:
  """Heatmap of a task-similarity matrix, tasks in stream order.

  Cells are annotated; boxes outline the groups (``cluster``'s output).
  """
  values = np.asarray(similarity, np.float64)
  T = len(task_names)
  if values.shape != (T, T):
    raise ValueError(f"similarity has shape {values.shape}, expected "
                     f"({T}, {T}) for the task names.")
  fig = Figure(figsize=(1.8 + 0.7 * T, 1.4 + 0.6 * T))
  ax = fig.add_subplot()
  image = ax.imshow(values, cmap=CMAP_NAME, interpolation="nearest")
  fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  for i in range(T):
    for j in range(T):
      ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center",
              fontsize=7)
  for members in groups:
    if len(members) > 1 and members == list(range(members[0],
                                                  members[-1] + 1)):
      ax.add_patch(patches.Rectangle(
          (members[0] - 0.5, members[0] - 0.5), len(members), len(members),
          fill=False, edgecolor="black", linewidth=2))
  ax.set_xticks(range(T), task_names, rotation=45, ha="right")
  ax.set_yticks(range(T), task_names)
  ax.set_title(f"Task similarity ({measure})")
  return _save(fig, path)


def plot_dendrogram(links, task_names: Sequence[str],
                    path: str | os.PathLike[str], threshold: float,
                    measure: str) -> str:
  """The clustering's dendrogram with the cut threshold drawn."""
  import scipy.cluster.hierarchy  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(2.0 + 0.6 * len(task_names), 3.5))
  ax = fig.add_subplot()
  scipy.cluster.hierarchy.dendrogram(
      np.asarray(links), labels=list(task_names), ax=ax,
      color_threshold=threshold, leaf_rotation=45)
  ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1)
  ax.set_ylabel(f"distance ({measure})")
  ax.set_title(f"Task groups: cut at {threshold:g}")
  return _save(fig, path)
