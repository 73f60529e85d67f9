"""Tests for benchmarks/resnet_vs_torch.py (cljax vs torchvision ResNet-50).

Skipped without PyTorch or torchvision (``pip install -r
benchmarks/requirements-torch.txt`` in a virtual env of its own). They check
what makes the comparison fair and the script runnable: both builders give
the standard ResNet-50's parameter count, a mismatch stops the run, and one
train step of each side runs on a tiny batch (2 x 32 x 32 x 3) and moves
the weights.
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

_PATH = (pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
         / "resnet_vs_torch.py")
_SPEC = importlib.util.spec_from_file_location("resnet_vs_torch", _PATH)
rvt = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(rvt)


def _jax_params(num_classes: int):
  # eval_shape: the shapes without running the init (counts do not depend
  # on the image size: global pooling).
  variables = jax.eval_shape(
      lambda: rvt.cljax_model(num_classes).init(
          jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
  return variables["params"]


@pytest.mark.parametrize("num_classes,count", [(1000, 25_557_032),
                                               (2, 23_512_130)])
def test_builders_have_the_standard_resnet50_count(num_classes, count):
  assert rvt.expected_params(num_classes) == count
  assert rvt.check_counts(_jax_params(num_classes),
                          rvt.torch_model(num_classes), num_classes) == count


def test_a_count_mismatch_stops_the_run():
  with pytest.raises(SystemExit, match="23,514,179"):
    rvt.check_counts(_jax_params(2), rvt.torch_model(3), 2)


def test_one_step_of_each_side_runs_on_a_tiny_batch():
  images, labels = rvt.random_batch(2, 32, seed=0)
  assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, [0, 1])

  run, params, _, loss_name = rvt.build_cljax(
      images, labels, 2, "float32", 0.01, seed=0)
  assert loss_name.startswith("softmax cross-entropy"), loss_name
  assert rvt.torch_models.count_jax_params(params) == 23_512_130
  state, metrics = run()  # build_cljax ran one step already: this is step 2
  assert int(state.step) == 2
  assert np.isfinite(float(metrics["loss"]))
  # Copied now: the next step donates this state.
  kernel = np.array(state.params["classifier"]["kernel"])
  state, _ = run()
  assert int(state.step) == 3
  # SGD moved the classifier.
  assert not np.allclose(np.asarray(state.params["classifier"]["kernel"]),
                         kernel)

  step, model = rvt.build_torch(images, labels, 2, torch.device("cpu"),
                                autocast=False, learning_rate=0.01, seed=0)
  before = model.fc.weight.detach().clone()
  loss = step()
  assert torch.isfinite(loss)
  # Loss of an untrained 2-class head near log 2, not a constant.
  assert 0.1 < float(loss) < 5.0
  assert not torch.allclose(model.fc.weight.detach(), before)
