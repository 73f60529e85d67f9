"""Tests for cljax.io.plots: heatmap colours, curves and loss PNGs."""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib import image as mimage
import numpy as np
import pytest

from cljax.io import plots

NAMES = ["A01", "A02", "A03"]
EER = np.array([[0.02, 0.30, 0.45],
                [0.10, 0.03, 0.40],
                [0.20, 0.08, 0.01]])


def _check_png(path, min_bytes=5000):
  with open(path, "rb") as f:
    data = f.read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  assert len(data) > min_bytes
  image = mimage.imread(path)
  assert image.ndim == 3 and image.std() > 0.05  # not a blank canvas
  return image


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_best_value_gets_the_good_colour_for_both_directions(
    higher_is_better):
  values = EER if not higher_is_better else 1.0 - EER  # eer vs accuracy
  colors = plots.cell_colors(values, higher_is_better)
  best = np.unravel_index(
      np.argmax(values) if higher_is_better else np.argmin(values),
      values.shape)
  worst = np.unravel_index(
      np.argmin(values) if higher_is_better else np.argmax(values),
      values.shape)
  np.testing.assert_allclose(colors[best], plots.good_color())
  np.testing.assert_allclose(colors[worst], colormaps[plots.CMAP_NAME](0.0))
  # The good end is green: more green than red.
  assert plots.good_color()[1] > plots.good_color()[0]


def test_nan_cells_are_grey_not_best():
  values = EER.copy()
  values[0, 2] = np.nan
  colors = plots.cell_colors(values, higher_is_better=False)
  np.testing.assert_allclose(colors[0, 2, :3], [0.9, 0.9, 0.9])
  np.testing.assert_allclose(colors[2, 2], plots.good_color())


def test_plot_matrix_png_and_aspect(tmp_path):
  small = plots.plot_matrix(EER, NAMES, "eer", False, tmp_path / "m3.png",
                            baseline=[0.5, 0.5, 0.5])
  assert small == str(tmp_path / "m3.png")
  image3 = _check_png(small)
  names6 = [f"task{i}" for i in range(6)]
  R6 = np.random.default_rng(0).uniform(0, 0.5, (2, 6))  # unfinished: 2 rows
  image6 = _check_png(plots.plot_matrix(R6, names6, "accuracy", True,
                                        tmp_path / "m6.png"))
  # More tasks -> wider figure; fewer rows -> flatter.
  ratio3 = image3.shape[1] / image3.shape[0]
  ratio6 = image6.shape[1] / image6.shape[0]
  assert ratio6 > ratio3 * 1.5


def test_plot_matrix_marks_unseen_cells(tmp_path):
  """An unseen cell is drawn lighter than a seen cell of the same value."""
  R = np.full((3, 3), 0.2)
  R[0, 0] = 0.0  # keeps the colour range non-degenerate
  path = plots.plot_matrix(R, NAMES, "eer", False, tmp_path / "u.png",
                           title="")
  pixels = mimage.imread(path)[..., :3].reshape(-1, 3)
  # Every 0.2 cell has the same colour; seen ones are drawn in it, unseen
  # ones (0,1), (0,2), (1,2) in its faded version (between the hatching).
  seen = plots.cell_colors(R, False)[2, 0, :3]
  faded = seen + plots.UNSEEN_FADE * (1 - seen)
  assert np.abs(seen - faded).sum() > 0.3
  assert (np.abs(pixels - seen).sum(axis=1) < 0.02).mean() > 0.01
  assert (np.abs(pixels - faded).sum(axis=1) < 0.03).mean() > 0.005


def test_plot_matrix_rejects_wrong_shape(tmp_path):
  with pytest.raises(ValueError, match="3 task names"):
    plots.plot_matrix(np.zeros((2, 4)), NAMES, "eer", False,
                      tmp_path / "x.png")


def test_plot_curves(tmp_path):
  path = plots.plot_curves(EER[:2], NAMES, "eer", False, tmp_path / "c.png",
                           baseline=[0.5, 0.5, 0.5])
  image = _check_png(path)
  assert image.shape[1] > image.shape[0]


def test_plot_loss(tmp_path):
  records = [{"task": t, "task_name": f"t{t}", "step": 100 * t + s,
              "loss": float(np.exp(-s / 20))} for t in range(3)
             for s in range(100)]
  records.append({"task": 2, "step": 300})  # a record without loss
  path = plots.plot_loss(records, tmp_path / "loss.png")
  _check_png(path)
  assert plots.task_boundaries_from_records(records) == [
      (0, "t0"), (100, "t1"), (200, "t2")]
  _check_png(plots.plot_loss(records[:5], tmp_path / "l2.png",
                             task_boundaries=[0, 3]), min_bytes=2000)
  with pytest.raises(ValueError, match="no train record"):
    plots.plot_loss([{"step": 1}], tmp_path / "none.png")
