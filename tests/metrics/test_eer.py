"""Tests for cljax.metrics.eer against hand arithmetic and sklearn's ROC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from cljax.metrics import compute_det_curve
from cljax.metrics import compute_eer
from cljax.metrics import equal_error_rate


def test_perfectly_separated_is_zero():
  # targets [2, 3], nontargets [0, 1]; sorted labels [0, 0, 1, 1]
  # tar_sums = [0, 0, 1, 2]; k - tar_sums = [1, 2, 2, 2]
  # non_sums = 2 - [1, 2, 2, 2] = [1, 0, 0, 0]
  # frr = [0, 0, 0, .5, 1]; far = [1, .5, 0, 0, 0]
  # |frr - far| = [1, .5, 0, .5, 1] -> index 2: eer = (0 + 0) / 2 = 0,
  # threshold = thresholds[2] = second-smallest score = 1.
  frr, far, thresholds = compute_det_curve([2.0, 3.0], [0.0, 1.0])
  np.testing.assert_allclose(frr, [0, 0, 0, .5, 1])
  np.testing.assert_allclose(far, [1, .5, 0, 0, 0])
  np.testing.assert_allclose(thresholds, [-0.001, 0, 1, 2, 3])
  assert compute_eer([2.0, 3.0], [0.0, 1.0]) == (0.0, 1.0)


def test_perfectly_inverted_is_one():
  # targets [0, 1], nontargets [2, 3]; sorted labels [1, 1, 0, 0]
  # tar_sums = [1, 2, 2, 2]; non_sums = 2 - ([1,2,3,4] - tar_sums)
  #          = 2 - [0, 0, 1, 2] = [2, 2, 1, 0]
  # frr = [0, .5, 1, 1, 1]; far = [1, 1, 1, .5, 0]
  # |frr - far| = [1, .5, 0, .5, 1] -> index 2: eer = (1 + 1) / 2 = 1,
  # threshold = thresholds[2] = 1.
  assert compute_eer([0.0, 1.0], [2.0, 3.0]) == (1.0, 1.0)


def test_three_vs_three_one_overlap():
  # targets [.5, .8, .9], nontargets [.1, .2, .6]
  # sorted: .1N .2N .5T .6N .8T .9T -> labels [0, 0, 1, 0, 1, 1]
  # tar_sums = [0, 0, 1, 1, 2, 3]; k - tar_sums = [1, 2, 2, 3, 3, 3]
  # non_sums = 3 - that = [2, 1, 1, 0, 0, 0]
  # frr = [0, 0, 0, 1/3, 1/3, 2/3, 1]; far = [1, 2/3, 1/3, 1/3, 0, 0, 0]
  # |frr - far| = [1, 2/3, 1/3, 0, 1/3, 2/3, 1] -> index 3:
  # eer = (1/3 + 1/3) / 2 = 1/3, threshold = thresholds[3] = .5
  eer, threshold = compute_eer([.5, .8, .9], [.1, .2, .6])
  assert eer == pytest.approx(1 / 3)
  assert threshold == pytest.approx(.5)


def test_all_equal_scores_give_one():
  # 2 targets, 3 nontargets, every score 0. The stable sort keeps the
  # concatenation order, targets first: labels [1, 1, 0, 0, 0]
  # tar_sums = [1, 2, 2, 2, 2]; k - tar_sums = [0, 0, 1, 2, 3]
  # non_sums = 3 - that = [3, 3, 2, 1, 0]
  # frr = [0, .5, 1, 1, 1, 1]; far = [1, 1, 1, 2/3, 1/3, 0]
  # |frr - far| = [1, .5, 0, 1/3, 2/3, 1] -> index 2: eer = (1 + 1) / 2 = 1,
  # threshold = thresholds[2] = 0. (A constant detector scores 100 %, not
  # 50 %: that is what the official code reports.)
  eer, threshold = compute_eer(np.zeros(2), np.zeros(3))
  assert eer == 1.0
  assert threshold == 0.0


def test_partial_tie_uses_stable_order():
  # targets [1, 1], nontargets [1, 0]; all_scores = [1T, 1T, 1N, 0N]
  # stable argsort -> 0N, 1T, 1T, 1N: labels [0, 1, 1, 0]
  # tar_sums = [0, 1, 2, 2]; k - tar_sums = [1, 1, 1, 2]
  # non_sums = 2 - that = [1, 1, 1, 0]
  # frr = [0, 0, .5, 1, 1]; far = [1, .5, .5, .5, 0]
  # |frr - far| = [1, .5, 0, .5, 1] -> index 2: eer = .5, threshold = 1
  assert compute_eer([1.0, 1.0], [1.0, 0.0]) == (0.5, 1.0)


def _brute_force_eer(target, nontarget):
  """Scans every threshold t in {-inf} + scores; accept iff score > t."""
  best = None
  for t in np.concatenate(([-np.inf], np.sort(np.concatenate(
      (target, nontarget))))):
    frr = np.mean(target <= t)
    far = np.mean(nontarget > t)
    if best is None or abs(frr - far) < best[0]:
      best = (abs(frr - far), (frr + far) / 2)
  return best[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_implementations(seed):
  rng = np.random.default_rng(seed)
  n_tar, n_non = 37, 211
  target = rng.normal(1.0, 1.0, n_tar)
  nontarget = rng.normal(-0.5, 1.3, n_non)
  assert np.unique(np.concatenate((target, nontarget))).size == n_tar + n_non
  eer, threshold = compute_eer(target, nontarget)

  # Independent: sklearn's ROC with bona fide positive, fnr = 1 - tpr.
  # Without ties the operating points are the same set, so the closest
  # fnr/fpr crossing must agree to within one trial's step of the coarser
  # class.
  labels = np.concatenate((np.ones(n_tar), np.zeros(n_non)))
  fpr, tpr, _ = sk_metrics.roc_curve(
      labels, np.concatenate((target, nontarget)), drop_intermediate=False)
  fnr = 1 - tpr
  k = np.argmin(np.abs(fnr - fpr))
  sk_eer = (fnr[k] + fpr[k]) / 2
  step = 1 / min(n_tar, n_non)
  assert abs(eer - sk_eer) <= step
  assert abs(eer - _brute_force_eer(target, nontarget)) <= step
  # The official EER lies inside the crossing's bracket of (far, frr).
  frr, far, _ = compute_det_curve(target, nontarget)
  i = np.argmin(np.abs(frr - far))
  assert min(frr[i], far[i]) <= eer <= max(frr[i], far[i])
  assert abs(frr[i] - far[i]) == pytest.approx(np.min(np.abs(fnr - fpr)))
  # The threshold is an operating point: accepting scores > threshold gives
  # exactly the frr and far at the EER index.
  assert np.mean(target <= threshold) == pytest.approx(frr[i])
  assert np.mean(nontarget > threshold) == pytest.approx(far[i])


def test_equal_error_rate_pools_several_fake_classes():
  # bona fide (0): [.5, .8, .9]; fakes of classes 1, 2, 3: [.1, .2, .6] ->
  # the 3-vs-3 case above, EER 1/3.
  scores = np.array([.1, .5, .2, .8, .6, .9])
  labels = np.array([1, 0, 2, 0, 3, 0])
  assert equal_error_rate(scores, labels) == pytest.approx(1 / 3)
  # genuine_label picks the target: class 3 ([.6]) vs the rest
  # [.1, .5, .2, .8, .9]. sorted: .1N .2N .5N .6T .8N .9N
  # tar_sums = [0, 0, 0, 1, 1, 1]; k - tar_sums = [1, 2, 3, 3, 4, 5]
  # non_sums = 5 - that = [4, 3, 2, 2, 1, 0]
  # frr = [0, 0, 0, 0, 1, 1, 1]; far = [1, .8, .6, .4, .4, .2, 0]
  # |frr - far| = [1, .8, .6, .4, .6, .8, 1] -> index 3: eer = .2
  assert equal_error_rate(scores, labels, genuine_label=3) == pytest.approx(.2)


def test_equal_error_rate_matches_compute_eer_on_float_labels():
  scores = np.array([.1, .5, .2, .8])
  assert equal_error_rate(scores, np.array([1., 0., 1., 0.])) == (
      compute_eer([.5, .8], [.1, .2])[0])


@pytest.mark.parametrize("labels, missing", [
    ([0, 0, 0], "no spoof trials"),
    ([1, 2, 1], "no genuine trials"),
])
def test_empty_class_raises(labels, missing):
  with pytest.raises(ValueError, match=missing) as error:
    equal_error_rate([.1, .2, .3], labels)
  assert "both genuine and spoof" in str(error.value)


def test_empty_score_set_raises():
  with pytest.raises(ValueError, match="nontarget .spoof. score set is empty"):
    compute_eer([.1, .2], [])
  with pytest.raises(ValueError, match="target .bona fide. score set is empty"):
    compute_eer([], [.1])


def test_non_finite_scores_raise_with_count():
  with pytest.raises(ValueError, match="2 non-finite"):
    equal_error_rate([.1, np.nan, np.inf, .3], [0, 1, 0, 1])


def test_shape_errors():
  with pytest.raises(ValueError, match="1-D"):
    equal_error_rate(np.zeros((2, 2)), [0, 1])
  with pytest.raises(ValueError, match="one entry per trial"):
    equal_error_rate([.1, .2, .3], [0, 1])
  with pytest.raises(ValueError, match="integer class ids"):
    equal_error_rate([.1, .2], [0.3, 0.7])
