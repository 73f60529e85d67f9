"""Tests for cljax.metrics.registry: names, errors, formatting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cljax import metrics
from cljax.registry import ConfigError


def _outputs():
  # bona fide (0): [.5, .8, .9]; fakes (1, 2): [.1, .2, .6]
  scores = np.array([.1, .5, .2, .8, .6, .9])
  labels = np.array([1, 0, 2, 0, 1, 0])
  # score > .55 -> class 0, else class 1: predictions [1, 1, 1, 0, 0, 0].
  # Right: .1 (label 1), .8 and .9 (label 0). Wrong: .5 (label 0),
  # .2 (label 2), .6 (label 1).
  predictions = np.where(scores > .55, 0, 1)
  return scores, labels, predictions


def test_compute_metrics_values():
  scores, labels, predictions = _outputs()
  got = metrics.compute_metrics(
      ["eer", "auc", "accuracy", "balanced_accuracy"], scores, labels,
      predictions)
  assert list(got) == ["eer", "auc", "accuracy", "balanced_accuracy"]
  # The 3-vs-3 EER case worked out in test_eer.py: 1/3.
  assert got["eer"] == pytest.approx(1 / 3)
  # pos [.5, .8, .9] vs neg [.1, .2, .6]: wins 2 + 3 + 3 = 8 of 9 pairs.
  assert got["auc"] == pytest.approx(8 / 9)
  # predictions [1, 1, 1, 0, 0, 0] vs labels [1, 0, 2, 0, 1, 0]:
  # right at 0, 3, 5 -> 3/6
  assert got["accuracy"] == pytest.approx(0.5)
  # recall_0 = 2/3 (.5 missed), recall_1 = 1/2, recall_2 = 0 -> 7/18
  assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_directions_and_units():
  assert not metrics.METRICS["eer"].higher_is_better
  for name in ("auc", "accuracy", "balanced_accuracy"):
    assert metrics.METRICS[name].higher_is_better
  assert all(metric.percent for metric in metrics.METRICS.values())
  assert all(name == metric.name for name, metric in metrics.METRICS.items())


def test_unknown_metric_is_config_error_before_computing():
  scores, labels, predictions = _outputs()
  with pytest.raises(ConfigError, match="config.eval.metrics") as error:
    # "eer" would run fine; the typo must fail first regardless of order.
    metrics.compute_metrics(["eer", "err"], scores, labels, predictions)
  message = str(error.value)
  assert "'err'" in message
  for name in metrics.METRICS:
    assert name in message


def test_bare_string_is_config_error():
  scores, labels, predictions = _outputs()
  with pytest.raises(ConfigError, match=r"\['eer'\]"):
    metrics.compute_metrics("eer", scores, labels, predictions)


def test_missing_input_names_metric():
  scores, labels, _ = _outputs()
  assert metrics.compute_metrics(["eer"], scores, labels) == {
      "eer": pytest.approx(1 / 3)}
  with pytest.raises(ValueError, match="'accuracy' needs predictions"):
    metrics.compute_metrics(["accuracy"], scores, labels)


def test_format_value():
  assert metrics.format_value("eer", 0.0512) == "5.12"
  assert metrics.format_value(metrics.METRICS["auc"], 0.98765, digits=1) == (
      "98.8")
  assert metrics.format_value("accuracy", -0.025) == "-2.50"  # e.g. a BWT
  assert metrics.format_value("eer", math.nan) == "n/a"
  with pytest.raises(ConfigError):
    metrics.format_value("f1", 0.5)
