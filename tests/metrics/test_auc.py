"""Tests for cljax.metrics.auc and cljax.metrics.accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from cljax.metrics import accuracy
from cljax.metrics import balanced_accuracy
from cljax.metrics import roc_auc


def test_auc_hand_cases():
  # All equal: every (pos, neg) pair is a tie -> 1/2.
  assert roc_auc([3., 3., 3., 3.], [0, 1, 0, 1]) == 0.5
  # Separated (bona fide = class 0 scores higher) -> 1; inverted -> 0.
  assert roc_auc([.9, .8, .1, .2], [0, 0, 1, 1]) == 1.0
  assert roc_auc([.1, .2, .9, .8], [0, 0, 1, 1]) == 0.0
  # pos [.5, .8], neg [.6, .8]: pairs (.5,.6) lose 0, (.5,.8) lose 0,
  # (.8,.6) win 1, (.8,.8) tie 1/2 -> 1.5 / 4 = .375
  assert roc_auc([.5, .8, .6, .8], [0, 0, 1, 1]) == pytest.approx(.375)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_matches_sklearn_with_ties_and_several_fake_classes(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 4, size=500)  # class 0 bona fide, 1..3 fakes
  # Rounding to one decimal forces many ties across classes.
  scores = np.round(rng.normal(size=500) + (labels == 0), 1)
  assert np.unique(scores).size < 100
  expected = sk_metrics.roc_auc_score(labels == 0, scores)
  assert roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
  expected_2 = sk_metrics.roc_auc_score(labels == 2, scores)
  assert roc_auc(scores, labels, positive_label=2) == pytest.approx(
      expected_2, abs=1e-12)


@pytest.mark.parametrize("labels, missing", [
    ([0, 0, 0], "no spoof trials"),
    ([1, 2, 1], "no genuine trials"),
])
def test_auc_empty_class_raises(labels, missing):
  with pytest.raises(ValueError, match=missing):
    roc_auc([.1, .2, .3], labels)


def test_auc_non_finite_raises():
  with pytest.raises(ValueError, match="1 non-finite"):
    roc_auc([.1, np.nan, .3], [0, 1, 1])


def test_accuracy_hand_cases():
  # 3 of 4 right -> .75
  assert accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == pytest.approx(.75)
  assert accuracy(np.array([1]), np.array([1])) == 1.0


def test_balanced_accuracy_hand_case():
  # labels: class 0 x2, class 1 x6. Predict all 1:
  # recall_0 = 0/2 = 0, recall_1 = 6/6 = 1 -> mean .5, while plain
  # accuracy is 6/8 = .75.
  labels = [0, 0, 1, 1, 1, 1, 1, 1]
  predictions = [1] * 8
  assert balanced_accuracy(predictions, labels) == pytest.approx(.5)
  assert accuracy(predictions, labels) == pytest.approx(.75)
  # A predicted-only class (2) is ignored: recall_0 = 1/2, recall_1 = 5/6
  # -> (1/2 + 5/6) / 2 = 2/3.
  predictions = [0, 2, 1, 1, 1, 1, 1, 2]
  assert balanced_accuracy(predictions, labels) == pytest.approx(2 / 3)


def test_balanced_accuracy_matches_sklearn():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, size=200)
  predictions = np.where(rng.random(200) < .7, labels,
                         rng.integers(0, 3, size=200))
  assert balanced_accuracy(predictions, labels) == pytest.approx(
      sk_metrics.balanced_accuracy_score(labels, predictions))


def test_accuracy_errors():
  with pytest.raises(ValueError, match="empty"):
    accuracy([], [])
  with pytest.raises(ValueError, match="argmax"):
    accuracy(np.zeros((3, 2)), [0, 1, 0])
  with pytest.raises(ValueError, match="one entry per trial"):
    balanced_accuracy([0, 1], [0, 1, 1])
