"""Equal error rate exactly as the official ASVspoof evaluation code computes it.

``compute_det_curve`` and ``compute_eer`` reproduce ``eval_metrics.py`` of the
ASVspoof 2019/2021 evaluation packages step for step (stable mergesort, the
``-0.001`` first threshold, ``argmin |frr - far|``), so an EER reported by
cljax is the number the challenge scorer would give for the same scores.
``equal_error_rate`` is the entry point for gathered (scores, labels) arrays.

Convention everywhere: bona fide = target, and a HIGHER score means MORE
genuine (cljax scores are the log-odds of class 0, the bona fide class).
"""

from __future__ import annotations

import numpy as np


def as_float_vector(values, what: str) -> np.ndarray:
  """Returns ``values`` as a finite 1-D float64 array or raises ValueError.

  Args:
    values: array-like of scores.
    what: the argument's name, for the error message.
  """
  array = np.asarray(values, dtype=np.float64)
  if array.ndim != 1:
    raise ValueError(
        f"{what} must be a 1-D array of per-trial scores, got shape "
        f"{array.shape}. Reduce logits to one score per trial first (e.g. "
        f"the log-odds of the bona fide class).")
  bad = int(np.count_nonzero(~np.isfinite(array)))
  if bad:
    raise ValueError(
        f"{what} holds {bad} non-finite value(s) (NaN or inf) out of "
        f"{array.size}. Metrics need finite scores: check the model for "
        f"divergence or the score reduction for log(0).")
  return array


def as_label_vector(labels, size: int, what: str = "labels") -> np.ndarray:
  """Returns ``labels`` as a 1-D integer array of length ``size``.

  Args:
    labels: array-like of integer class ids.
    size: the number of trials the labels must match.
    what: the argument's name, for the error message.
  """
  array = np.asarray(labels)
  if array.ndim != 1 or array.size != size:
    raise ValueError(
        f"{what} must be a 1-D array with one entry per trial ({size}), got "
        f"shape {array.shape}.")
  if array.size and not np.issubdtype(array.dtype, np.integer):
    if not np.all(np.equal(np.mod(array, 1), 0)):
      raise ValueError(
          f"{what} must hold integer class ids, got dtype {array.dtype} with "
          f"non-integer values. Pass the class index, not a probability.")
    array = array.astype(np.int64)
  return array


def compute_det_curve(target_scores, nontarget_scores
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """DET curve as in ASVspoof ``eval_metrics.compute_det_curve``.

  With all ``n = n_tar + n_non`` scores sorted ascending by a stable
  mergesort (targets are concatenated first, so on a tie a target sorts
  BEFORE a nontarget), let ``tar(k)`` be the number of targets among the
  first ``k`` sorted trials. Then, for ``k = 0..n``:

    frr[k] = tar(k) / n_tar                    (targets at or below thr[k])
    far[k] = (n_non - (k - tar(k))) / n_non    (nontargets above thr[k])
    thr[0] = min(score) - 0.001,  thr[k] = k-th smallest score (k >= 1).

  So ``frr`` rises from 0 to 1 and ``far`` falls from 1 to 0: the decision
  is "accept as bona fide iff score > thr[k]", except that ties are split by
  the sort order above rather than all going one way.

  Args:
    target_scores: 1-D scores of bona fide (target) trials; higher = more
      genuine.
    nontarget_scores: 1-D scores of spoof (nontarget) trials.

  Returns:
    ``(frr, far, thresholds)``, each of length ``n + 1``.

  Raises:
    ValueError: if either set is empty or holds a non-finite score.
  """
  target_scores = as_float_vector(target_scores, "target_scores")
  nontarget_scores = as_float_vector(nontarget_scores, "nontarget_scores")
  n_target, n_nontarget = target_scores.size, nontarget_scores.size
  for size, name in ((n_target, "target (bona fide)"),
                     (n_nontarget, "nontarget (spoof)")):
    if size == 0:
      raise ValueError(
          f"EER needs both genuine and spoof trials, but the {name} score "
          f"set is empty. Evaluate on a split that contains both classes.")
  n_scores = n_target + n_nontarget
  all_scores = np.concatenate((target_scores, nontarget_scores))
  labels = np.concatenate((np.ones(n_target), np.zeros(n_nontarget)))
  # Stable sort: the official code's tie handling depends on it.
  indices = np.argsort(all_scores, kind="mergesort")
  labels = labels[indices]
  tar_trial_sums = np.cumsum(labels)
  nontarget_trial_sums = n_nontarget - (
      np.arange(1, n_scores + 1) - tar_trial_sums)
  frr = np.concatenate((np.atleast_1d(0), tar_trial_sums / n_target))
  far = np.concatenate((np.atleast_1d(1), nontarget_trial_sums / n_nontarget))
  thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001),
                               all_scores[indices]))
  return frr, far, thresholds


def compute_eer(target_scores, nontarget_scores) -> tuple[float, float]:
  """EER and its threshold as in ASVspoof ``eval_metrics.compute_eer``.

    k*  = argmin_k |frr[k] - far[k]|   (first index on ties, as np.argmin)
    EER = (frr[k*] + far[k*]) / 2,     threshold = thr[k*]

  See ``compute_det_curve`` for frr, far, thr. EER is a fraction in [0, 1];
  lower is better. Note what the official tie handling implies: a detector
  that gives every trial the same score gets EER = 1, not 0.5 (the sort puts
  all targets below all nontargets).

  Args:
    target_scores: 1-D bona fide scores; higher = more genuine.
    nontarget_scores: 1-D spoof scores.

  Returns:
    ``(eer, threshold)`` as Python floats.
  """
  frr, far, thresholds = compute_det_curve(target_scores, nontarget_scores)
  min_index = np.argmin(np.abs(frr - far))
  eer = np.mean((frr[min_index], far[min_index]))
  return float(eer), float(thresholds[min_index])


def equal_error_rate(scores, labels, genuine_label: int = 0) -> float:
  """EER of per-trial scores against integer labels (ASVspoof algorithm).

  Trials with ``labels == genuine_label`` are targets (bona fide); every
  other label is a nontarget, so several spoof classes (one per attack or
  generator) pool into one spoof set, as the challenge does.

  Args:
    scores: 1-D scores, higher = more genuine (e.g. log-odds of class 0).
    labels: 1-D integer class ids, same length.
    genuine_label: the class id of bona fide trials.

  Returns:
    EER as a fraction in [0, 1] (0.05 = 5 %); lower is better.

  Raises:
    ValueError: on shape mismatch, non-finite scores, or when the labels
      contain no genuine or no spoof trial.
  """
  scores = as_float_vector(scores, "scores")
  labels = as_label_vector(labels, scores.size)
  is_target = labels == genuine_label
  n_target = int(np.count_nonzero(is_target))
  if n_target == 0 or n_target == labels.size:
    missing = (f"no genuine trials (labels == {genuine_label})" if n_target == 0
               else f"no spoof trials (labels != {genuine_label})")
    raise ValueError(
        f"EER needs both genuine and spoof trials, but there are {missing} "
        f"among {labels.size} trial(s). Evaluate on a split that contains "
        f"both classes, or check genuine_label.")
  eer, _ = compute_eer(scores[is_target], scores[~is_target])
  return eer
