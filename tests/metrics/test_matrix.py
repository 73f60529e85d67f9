"""Tests for cljax.metrics.matrix on hand-worked 3x3 result matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cljax.metrics import matrix

# Accuracy-style (higher is better). Row i = after training task i.
ACC = np.array([[0.9, 0.2, 0.1],
                [0.6, 0.8, 0.3],
                [0.5, 0.7, 0.85]])
BASELINE = np.array([0.5, 0.5, 0.5])

# EER-style (lower is better).
EER = np.array([[0.05, 0.40, 0.45],
                [0.20, 0.04, 0.35],
                [0.25, 0.10, 0.03]])


def test_accuracy_matrix_by_hand():
  got = matrix.summarize(ACC, higher_is_better=True, baseline=BASELINE)
  expected = {
      # last row: (0.5 + 0.7 + 0.85) / 3 = 2.05 / 3
      "average_final": 2.05 / 3,
      # rows: 0.9; (0.6 + 0.8) / 2 = 0.7; 2.05 / 3 = 0.68333
      # -> (0.9 + 0.7 + 0.68333) / 3 = 0.76111
      "average_incremental": (0.9 + 0.7 + 2.05 / 3) / 3,
      # ((0.5 - 0.9) + (0.7 - 0.8)) / 2 = (-0.4 - 0.1) / 2 = -0.25
      "bwt": -0.25,
      # ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.2 - 0.5) + (0.3 - 0.5)) / 2
      # = (-0.3 - 0.2) / 2 = -0.25
      "fwt": -0.25,
      # j=0: max(0.9, 0.6) - 0.5 = 0.4; j=1: max(0.2, 0.8) - 0.7 = 0.1
      # -> (0.4 + 0.1) / 2 = 0.25
      "forgetting": 0.25,
      # (0.9 + 0.8 + 0.85) / 3 = 2.55 / 3 = 0.85
      "in_domain": 0.85,
      # (R[0,1] + R[1,2]) / 2 = (0.2 + 0.3) / 2 = 0.25
      "next_domain": 0.25,
      # lower triangle (0.6 + 0.5 + 0.7) / 3 = 0.6
      "backward_transfer": 0.6,
      # upper triangle (0.2 + 0.1 + 0.3) / 3 = 0.2
      "forward_transfer": 0.2,
  }
  assert got.keys() == expected.keys()
  for key, value in expected.items():
    assert got[key] == pytest.approx(value), key


def test_individual_functions_agree_with_summarize():
  got = matrix.summarize(ACC, True, BASELINE)
  assert matrix.average_final(ACC) == got["average_final"]
  assert matrix.average_incremental(ACC) == got["average_incremental"]
  assert matrix.bwt(ACC) == got["bwt"]
  assert matrix.fwt(ACC, BASELINE) == got["fwt"]
  assert matrix.forgetting(ACC, True) == got["forgetting"]
  assert matrix.in_domain(ACC) == got["in_domain"]
  assert matrix.next_domain(ACC) == got["next_domain"]
  assert matrix.backward_transfer(ACC) == got["backward_transfer"]
  assert matrix.forward_transfer(ACC) == got["forward_transfer"]


def test_eer_matrix_forgetting_is_mirrored():
  # Lower is better: F = mean_j max_{l<2} (R[2,j] - R[l,j])
  # j=0: max(0.25 - 0.05, 0.25 - 0.20) = 0.20
  # j=1: max(0.10 - 0.40, 0.10 - 0.04) = 0.06
  # -> (0.20 + 0.06) / 2 = 0.13 (positive: EER got worse = forgot)
  assert matrix.forgetting(EER, higher_is_better=False) == pytest.approx(0.13)
  # Raw BWT keeps the metric's sign: ((0.25 - 0.05) + (0.10 - 0.04)) / 2
  # = (0.20 + 0.06) / 2 = 0.13, positive = forgetting for EER.
  assert matrix.bwt(EER) == pytest.approx(0.13)
  # The accuracy form on an EER matrix would be wrong:
  # j=0: max(0.05 - 0.25, 0.20 - 0.25) = -0.05;
  # j=1: max(0.40 - 0.10, 0.04 - 0.10) = 0.30 -> (-0.05 + 0.30) / 2 = 0.125
  assert matrix.forgetting(EER, higher_is_better=True) == pytest.approx(0.125)
  got = matrix.summarize(EER, higher_is_better=False)
  assert got["forgetting"] == pytest.approx(0.13)
  # in_domain (0.05 + 0.04 + 0.03) / 3 = 0.04
  assert got["in_domain"] == pytest.approx(0.04)
  assert math.isnan(got["fwt"])  # no baseline


def test_forgetting_counts_rows_before_the_task_was_trained():
  # Zero-shot R[0,1] = 0.95 beats R[1,1] = 0.8; the max runs over every
  # l < T-1 (Chaudhry et al.), so j=1: max(0.95, 0.8) - 0.7 = 0.25;
  # j=0 unchanged 0.4 -> (0.4 + 0.25) / 2 = 0.325
  R = ACC.copy()
  R[0, 1] = 0.95
  assert matrix.forgetting(R) == pytest.approx(0.325)


def test_single_task_gives_nan_for_empty_summaries():
  got = matrix.summarize([[0.7]], higher_is_better=True, baseline=[0.5])
  for key in ("average_final", "average_incremental", "in_domain"):
    assert got[key] == pytest.approx(0.7), key
  for key in ("bwt", "fwt", "forgetting", "next_domain", "backward_transfer",
              "forward_transfer"):
    assert math.isnan(got[key]), key


def test_nan_cell_propagates_only_where_used():
  R = ACC.copy()
  R[0, 2] = np.nan  # task 2 not evaluated after task 0
  got = matrix.summarize(R, True, BASELINE)
  assert math.isnan(got["forward_transfer"])
  assert got["next_domain"] == pytest.approx(0.25)
  assert got["average_final"] == pytest.approx(2.05 / 3)


@pytest.mark.parametrize("bad", [
    [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
    [0.1, 0.2],
    np.zeros((0, 0)),
])
def test_non_square_raises(bad):
  with pytest.raises(ValueError, match="square"):
    matrix.summarize(bad, higher_is_better=True)


def test_infinite_entry_raises():
  R = ACC.copy()
  R[1, 0] = np.inf
  with pytest.raises(ValueError, match="1 infinite"):
    matrix.bwt(R)


def test_baseline_of_wrong_length_raises():
  with pytest.raises(ValueError, match=r"shape \(3,\)"):
    matrix.fwt(ACC, [0.5, 0.5])
