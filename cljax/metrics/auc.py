"""Area under the ROC curve of per-trial scores, ties counted as half.

Matches ``sklearn.metrics.roc_auc_score(labels == positive_label, scores)``
via the Mann-Whitney rank formula, without needing scikit-learn at runtime.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from cljax.metrics.eer import as_float_vector
from cljax.metrics.eer import as_label_vector


def roc_auc(scores, labels, positive_label: int = 0) -> float:
  """ROC AUC = P(score of a positive > score of a negative) + P(tie) / 2.

  Computed with average ranks r_i of all n scores (ties share their mean
  rank), over the n_pos positives:

    AUC = (sum_{i positive} r_i - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)

  Positive = ``labels == positive_label`` (bona fide, class 0, by default);
  every other label is negative, so several spoof classes pool together.
  Since cljax scores are "higher = more genuine", a perfect detector has
  AUC 1, chance is 0.5, a constant score gives exactly 0.5; higher is better.

  Args:
    scores: 1-D finite scores, higher = more likely ``positive_label``.
    labels: 1-D integer class ids, same length.
    positive_label: the class treated as positive.

  Returns:
    AUC as a fraction in [0, 1].

  Raises:
    ValueError: on shape mismatch, non-finite scores, or when one side
      (positive or negative) has no trial.
  """
  scores = as_float_vector(scores, "scores")
  labels = as_label_vector(labels, scores.size)
  is_positive = labels == positive_label
  n_positive = int(np.count_nonzero(is_positive))
  n_negative = labels.size - n_positive
  if n_positive == 0 or n_negative == 0:
    missing = (f"no genuine trials (labels == {positive_label})"
               if n_positive == 0
               else f"no spoof trials (labels != {positive_label})")
    raise ValueError(
        f"AUC needs both genuine and spoof trials, but there are {missing} "
        f"among {labels.size} trial(s). Evaluate on a split that contains "
        f"both classes, or check positive_label.")
  ranks = stats.rankdata(scores, method="average")
  # Float64 throughout: the rank sum is exact up to ~2**53, far beyond any
  # evaluation set, so no precision is lost before the final division.
  u_statistic = ranks[is_positive].sum() - n_positive * (n_positive + 1) / 2
  return float(u_statistic / (n_positive * n_negative))
