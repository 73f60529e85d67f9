"""Tests for the Xception image backbone (FaceForensics++ / CoReD layout)."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models.xception import Xception
from overfit_helpers import assert_batch_stats_update_only_in_train_mode
from overfit_helpers import overfit_losses

B, S = 4, 32
# 1/16 of the reference widths and one middle block: fast on CPU.
TINY = dict(width_multiplier=1 / 16, num_middle_blocks=1)


def _init(model, x, seed=0):
  return jax.jit(model.init)(jax.random.PRNGKey(seed), x)


@pytest.fixture(scope="module")
def tiny_variables():
  # One init shared by the tests (compiling it dominates their runtime);
  # dropout adds no variables, so every TINY variant can use it.
  return _init(Xception(**TINY), _images())


def _apply(model, variables, x, train=False, **kwargs):
  fn = functools.partial(model.apply, train=train, **kwargs)
  return jax.jit(fn)(variables, x)


def _images(seed=0, batch=B, size=S):
  return jax.random.normal(jax.random.PRNGKey(seed + 100),
                           (batch, size, size, 3))


def _count(tree):
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def _reference_count(num_classes):
  """Cadene/timm legacy_xception, layer by layer (BN: scale + bias)."""
  def sep(i, o):                                  # depthwise 3x3 + pointwise
    return 9 * i + i * o

  def block(i, o, reps, grow_first=True, shortcut=True):
    total = (i * o + 2 * o) if shortcut else 0
    pairs = ([(i, o)] + [(o, o)] * (reps - 1) if grow_first
             else [(i, i)] * (reps - 1) + [(i, o)])
    return total + sum(sep(a, b) + 2 * b for a, b in pairs)

  return (27 * 32 + 2 * 32 + 9 * 32 * 64 + 2 * 64
          + block(64, 128, 2) + block(128, 256, 2) + block(256, 728, 2)
          + 8 * block(728, 728, 3, shortcut=False)
          + block(728, 1024, 2, grow_first=False)
          + sep(1024, 1536) + 2 * 1536 + sep(1536, 2048) + 2 * 2048
          + 2048 * num_classes + num_classes)


def test_parameter_count_matches_legacy_xception():
  model = Xception(num_classes=1000)
  x = jnp.zeros((1, 299, 299, 3))
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  # timm legacy_xception / Cadene pretrainedmodels xception: 22,855,952.
  assert _count(variables["params"]) == _reference_count(1000) == 22_855_952
  logits, embedding = jax.eval_shape(model.apply, variables, x)
  assert logits.shape == (1, 1000) and embedding.shape == (1, 2048)
  params = flax.traverse_util.flatten_dict(variables["params"])
  # Depthwise: one 3x3 filter per channel.
  assert params[("block5", "sepconv0", "depthwise", "kernel")].shape == (
      3, 3, 1, 728)
  assert ("block11", "bn2", "scale") in params
  # Every conv is bias-free (BatchNorm shifts); only BN and the classifier
  # have biases.
  biased = {k[:-1] for k in params if k[-1] == "bias"}
  assert all(k == ("classifier",) or "bn" in k[-1] for k in biased)


def test_two_class_shapes_and_classifier_path(tiny_variables):
  model = Xception(num_classes=2, **TINY)
  variables = tiny_variables
  logits, embedding = _apply(model, variables, _images(seed=1))
  assert logits.shape == (B, 2) and embedding.shape == (B, 128)
  params = flax.traverse_util.flatten_dict(variables["params"])
  assert params[("classifier", "kernel")].shape == (128, 2)
  kernel = variables["params"]["classifier"]["kernel"]
  bias = variables["params"]["classifier"]["bias"]
  np.testing.assert_allclose(logits, embedding @ kernel + bias, atol=1e-5)
  # The embedding is a mean of ReLU outputs: non-negative.
  assert float(jnp.min(embedding)) >= 0
  full = jax.eval_shape(Xception(num_classes=2).init, jax.random.PRNGKey(0),
                        jnp.zeros((1, 64, 64, 3)))
  assert full["params"]["classifier"]["kernel"].shape == (2048, 2)


def test_batch_stats_update_only_in_train_mode(tiny_variables):
  model = Xception(**TINY)
  variables = tiny_variables
  x = _images(seed=2) * 3 + 1
  _, train_state = assert_batch_stats_update_only_in_train_mode(
      lambda train: _apply(model, variables, x, train=train,
                           mutable=["batch_stats"]),
      variables["batch_stats"])
  # Running averages move by 10% towards the batch (PyTorch momentum 0.1).
  mean = jnp.mean(_conv1_out(model, variables, x), axis=(0, 1, 2))
  np.testing.assert_allclose(
      train_state["batch_stats"]["bn1"]["mean"], 0.1 * mean, rtol=1e-4,
      atol=1e-6)


def _conv1_out(model, variables, x):
  # conv1 (3x3/2 VALID, no bias) by hand: the input of bn1.
  kernel = variables["params"]["conv1"]["kernel"]
  return jax.lax.conv_general_dilated(
      x, kernel, (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_dropout_only_in_training_and_errors(tiny_variables):
  model = Xception(dropout_rate=0.5, **TINY)
  variables = tiny_variables
  a, _ = _apply(model, variables, _images())
  b, _ = _apply(model, variables, _images())
  np.testing.assert_array_equal(a, b)
  (train_logits, emb), _ = _apply(model, variables, _images(), train=True,
                                  mutable=["batch_stats"],
                                  rngs={"dropout": jax.random.PRNGKey(3)})
  kernel = variables["params"]["classifier"]["kernel"]
  assert not np.allclose(train_logits, emb @ kernel
                         + variables["params"]["classifier"]["bias"])
  with pytest.raises(ValueError, match="NHWC"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 32, 32)))


def test_tiny_overfit(tiny_variables):
  model = Xception(**TINY)
  x = _images(seed=3)
  y = jnp.array([0, 1, 1, 0])
  losses = overfit_losses(model, tiny_variables, x, y, learning_rate=3e-3,
                          steps=30)
  assert losses[-1] < 0.05 < losses[0]
