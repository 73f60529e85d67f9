"""Continual-learning summaries of a result matrix R (reference definitions).

``R[i, j]`` is a metric on task j's test split after training on tasks
0..i (i, j in 0..T-1), including tasks not trained yet (j > i). ``b[j]`` is
the untrained (initial) model's metric on task j, needed only for FWT.

Each summary is the plain formula on R, so its sign follows the metric:
for higher-is-better metrics (accuracy, AUC) a negative BWT means
forgetting; for lower-is-better metrics (EER) a positive BWT means
forgetting. ``forgetting`` is the one exception: it takes
``higher_is_better`` and is mirrored so that positive always means "forgot".

A summary with no terms (e.g. BWT for T = 1) is NaN, not an error. A NaN
entry in R (a cell that was not evaluated) makes exactly the summaries that
use that cell NaN; nothing is skipped silently.
"""

from __future__ import annotations

import math

import numpy as np


def _check_matrix(R) -> np.ndarray:
  """Returns R as a square float64 matrix whose entries are finite or NaN."""
  matrix = np.asarray(R, dtype=np.float64)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not matrix.size:
    raise ValueError(
        f"The result matrix R must be square T x T with T >= 1 (row i = after "
        f"training task i, column j = evaluated on task j), got shape "
        f"{matrix.shape}. Evaluate every task after every training task.")
  infinite = int(np.count_nonzero(np.isinf(matrix)))
  if infinite:
    raise ValueError(
        f"The result matrix R holds {infinite} infinite value(s); entries "
        f"must be finite, or NaN for a cell that was not evaluated.")
  return matrix


def _mean(values) -> float:
  """Mean of ``values``; NaN for an empty set, without numpy's warning."""
  values = np.asarray(values, dtype=np.float64)
  return float(np.mean(values)) if values.size else math.nan


def average_final(R) -> float:
  """Average metric over all tasks after the last task.

    A_final = (1 / T) * sum_j R[T-1, j]

  Same direction as the metric (higher is better for accuracy, lower for
  EER).
  """
  R = _check_matrix(R)
  return _mean(R[-1])


def average_incremental(R) -> float:
  """Average over training steps of the mean on the tasks seen so far.

    A_inc = (1 / T) * sum_i ( (1 / (i+1)) * sum_{j<=i} R[i, j] )

  Same direction as the metric.
  """
  R = _check_matrix(R)
  return _mean([_mean(R[i, :i + 1]) for i in range(R.shape[0])])


def bwt(R) -> float:
  """Backward transfer (Lopez-Paz & Ranzato, 2017), raw formula.

    BWT = (1 / (T-1)) * sum_{j<T-1} (R[T-1, j] - R[j, j])

  Sign follows the metric: for accuracy/AUC negative = forgetting; for EER
  positive = forgetting. NaN for T = 1.
  """
  R = _check_matrix(R)
  T = R.shape[0]
  return _mean([R[T - 1, j] - R[j, j] for j in range(T - 1)])


def fwt(R, baseline) -> float:
  """Forward transfer (Lopez-Paz & Ranzato, 2017), raw formula.

    FWT = (1 / (T-1)) * sum_{j>0} (R[j-1, j] - b[j])

  b[j] is the untrained model's metric on task j. Sign follows the metric:
  for accuracy/AUC positive = earlier tasks helped task j zero-shot; for EER
  negative = helped. NaN for T = 1 or when ``baseline`` is None.

  Args:
    R: T x T result matrix.
    baseline: length-T vector b, or None.
  """
  R = _check_matrix(R)
  if baseline is None:
    return math.nan
  b = np.asarray(baseline, dtype=np.float64)
  T = R.shape[0]
  if b.shape != (T,):
    raise ValueError(
        f"baseline must hold the untrained model's metric on each of the "
        f"{T} tasks (shape ({T},)), got shape {b.shape}.")
  if np.any(np.isinf(b)):
    raise ValueError("baseline holds an infinite value; entries must be "
                     "finite, or NaN for a task that was not evaluated.")
  return _mean([R[j - 1, j] - b[j] for j in range(1, T)])


def forgetting(R, higher_is_better: bool = True) -> float:
  """Average forgetting (Chaudhry et al., 2018); positive always = forgot.

  Higher-is-better metrics (accuracy, AUC):
    F = (1 / (T-1)) * sum_{j<T-1} max_{l<T-1} (R[l, j] - R[T-1, j])
  Lower-is-better metrics (EER), mirrored:
    F = (1 / (T-1)) * sum_{j<T-1} max_{l<T-1} (R[T-1, j] - R[l, j])

  i.e. the gap between the best value task j ever had before the last step
  and its final value. As in Chaudhry et al., l runs over ALL rows before
  the last, including rows l < j from before task j was trained, so a good
  zero-shot value that is later lost also counts. Can be negative when the
  final value beats every earlier one. NaN for T = 1.

  Args:
    R: T x T result matrix.
    higher_is_better: the metric's direction (True for accuracy/AUC, False
      for EER).
  """
  R = _check_matrix(R)
  T = R.shape[0]
  sign = 1.0 if higher_is_better else -1.0
  # max over l of sign * (R[l, j] - R[T-1, j]) covers both forms.
  return _mean([np.max(sign * (R[:T - 1, j] - R[T - 1, j]))
                for j in range(T - 1)])


def in_domain(R) -> float:
  """CLEAR in-domain: mean of the diagonal, (1 / T) * sum_i R[i, i].

  Same direction as the metric.
  """
  R = _check_matrix(R)
  return _mean(np.diag(R))


def next_domain(R) -> float:
  """CLEAR next-domain: mean of the superdiagonal, zero-shot on the next task.

    ND = (1 / (T-1)) * sum_{i<T-1} R[i, i+1]

  Same direction as the metric. NaN for T = 1.
  """
  R = _check_matrix(R)
  return _mean(np.diag(R, k=1))


def backward_transfer(R) -> float:
  """CLEAR backward transfer: mean of the strict lower triangle.

    BwT = (2 / (T (T-1))) * sum_{i>j} R[i, j]

  A level, not a difference (unlike ``bwt``): how good the model is on
  tasks it has already left behind. Same direction as the metric. NaN for
  T = 1.
  """
  R = _check_matrix(R)
  return _mean(R[np.tril_indices(R.shape[0], k=-1)])


def forward_transfer(R) -> float:
  """CLEAR forward transfer: mean of the strict upper triangle.

    FwT = (2 / (T (T-1))) * sum_{i<j} R[i, j]

  A level, not a difference (unlike ``fwt``): how good the model is on
  tasks it has not trained on yet. Same direction as the metric. NaN for
  T = 1.
  """
  R = _check_matrix(R)
  return _mean(R[np.triu_indices(R.shape[0], k=1)])


def summarize(R, higher_is_better: bool, baseline=None) -> dict[str, float]:
  """All summaries of R in one dict (see each function for its formula).

  Keys: average_final, average_incremental, bwt, fwt, forgetting, in_domain,
  next_domain, backward_transfer, forward_transfer. ``fwt`` is always
  present and is NaN when ``baseline`` is None, so tables keep the same
  columns. Only ``forgetting`` uses ``higher_is_better``; every other value
  keeps the raw sign of its formula.

  Args:
    R: T x T result matrix, finite or NaN.
    higher_is_better: the metric's direction.
    baseline: optional length-T vector of the untrained model's metric.
  """
  R = _check_matrix(R)
  return {
      "average_final": average_final(R),
      "average_incremental": average_incremental(R),
      "bwt": bwt(R),
      "fwt": fwt(R, baseline),
      "forgetting": forgetting(R, higher_is_better),
      "in_domain": in_domain(R),
      "next_domain": next_domain(R),
      "backward_transfer": backward_transfer(R),
      "forward_transfer": forward_transfer(R),
  }
