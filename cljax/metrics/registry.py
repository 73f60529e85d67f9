"""Named metrics for ``config.eval.metrics``, computed from gathered outputs.

Each ``Metric`` maps ``(scores, labels, predictions)`` to one float and says
which way is better and how tables print it. Values are always fractions
in [0, 1] internally (EER 0.05 = 5 %); ``format_value`` turns them into
percent for tables. Inputs follow one convention:

* ``scores``: 1-D, higher = more genuine (log-odds of class 0, bona fide);
* ``labels``: 1-D integer class ids, 0 = bona fide, anything else = spoof;
* ``predictions``: 1-D argmax class ids.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

import numpy as np

from cljax.metrics.accuracy import accuracy
from cljax.metrics.accuracy import balanced_accuracy
from cljax.metrics.auc import roc_auc
from cljax.metrics.eer import equal_error_rate
from cljax.registry import ConfigError

MetricFn = Callable[[np.ndarray | None, np.ndarray, np.ndarray | None], float]


class Metric(NamedTuple):
  """A named metric.

  Attributes:
    name: the key used in ``config.eval.metrics``.
    fn: ``fn(scores, labels, predictions) -> float``; a metric reads only the
      inputs listed in ``needs``.
    higher_is_better: direction; also selects the ``forgetting`` form in
      ``cljax.metrics.matrix``.
    percent: True when tables print 100 * value (all four built-ins are
      rates, reported in percent as in the ASVspoof and CL literature).
    needs: which of "scores" / "predictions" ``fn`` reads, so a missing
      input fails with a message naming the metric.
  """
  name: str
  fn: MetricFn
  higher_is_better: bool
  percent: bool
  needs: tuple[str, ...]


METRICS: dict[str, Metric] = {
    "eer": Metric(
        "eer", lambda scores, labels, _: equal_error_rate(scores, labels),
        higher_is_better=False, percent=True, needs=("scores",)),
    "auc": Metric(
        "auc", lambda scores, labels, _: roc_auc(scores, labels),
        higher_is_better=True, percent=True, needs=("scores",)),
    "accuracy": Metric(
        "accuracy", lambda _, labels, predictions: accuracy(predictions, labels),
        higher_is_better=True, percent=True, needs=("predictions",)),
    "balanced_accuracy": Metric(
        "balanced_accuracy",
        lambda _, labels, predictions: balanced_accuracy(predictions, labels),
        higher_is_better=True, percent=True, needs=("predictions",)),
}


def get_metric(name: str) -> Metric:
  """Returns ``METRICS[name]``; unknown names raise ConfigError."""
  if name not in METRICS:
    raise ConfigError(
        f"config.eval.metrics: unknown metric {name!r}. Valid metrics: "
        f"{', '.join(sorted(METRICS))}.")
  return METRICS[name]


def compute_metrics(names: Iterable[str], scores, labels,
                    predictions=None) -> dict[str, float]:
  """Computes each named metric on one evaluation split.

  All names are checked before anything is computed, so a typo in
  ``config.eval.metrics`` fails before the (slow) metrics run.

  Args:
    names: metric names, e.g. ``config.eval.metrics``.
    scores: 1-D scores, higher = more genuine, or None if no named metric
      needs them.
    labels: 1-D integer class ids (0 = bona fide).
    predictions: 1-D argmax class ids, or None if no named metric needs
      them.

  Returns:
    ``{name: value}`` in the order given, values as fractions in [0, 1].
  """
  if isinstance(names, str):
    # A bare string would iterate per character: "eer" -> "e", "e", "r".
    raise ConfigError(
        f"config.eval.metrics must be a list of names, got the string "
        f"{names!r}. Write [{names!r}].")
  metrics = [get_metric(name) for name in names]
  inputs = {"scores": scores, "predictions": predictions}
  results = {}
  for metric in metrics:
    for needed in metric.needs:
      if inputs[needed] is None:
        raise ValueError(
            f"Metric {metric.name!r} needs {needed}, but {needed}=None was "
            f"passed to compute_metrics. Pass the gathered {needed}, or drop "
            f"{metric.name!r} from config.eval.metrics.")
    results[metric.name] = metric.fn(scores, labels, predictions)
  return results


def format_value(metric: str | Metric, value: float, digits: int = 2) -> str:
  """Formats a metric value (or a difference of values) for a table.

  Percent metrics print ``100 * value`` without a "%" sign (put the unit in
  the column header), e.g. EER 0.0512 -> "5.12"; differences such as BWT
  become percentage points the same way. NaN prints as "n/a".

  Args:
    metric: a name in ``METRICS`` or a ``Metric``.
    value: the fraction to format.
    digits: decimals after the point.
  """
  if isinstance(metric, str):
    metric = get_metric(metric)
  if value is None or math.isnan(value):
    return "n/a"
  scale = 100.0 if metric.percent else 1.0
  return f"{scale * value:.{digits}f}"
