"""Tests for the EfficientNet-B0 image backbone (torchvision layout)."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models.efficientnet import EfficientNet, _make_divisible
from overfit_helpers import assert_batch_stats_update_only_in_train_mode
from overfit_helpers import overfit_losses

B, S = 4, 32
# Widths / 4 (rounded to multiples of 8) and ceil(0.3 * repeats) blocks: one
# per stage except stage 6 (two, the second one residual): 8 blocks.
TINY = dict(width_multiplier=0.25, depth_multiplier=0.3, dropout_rate=0.0)


def _images(seed=0, batch=B, size=S):
  return jax.random.normal(jax.random.PRNGKey(seed + 100),
                           (batch, size, size, 3))


def _apply(model, variables, x, train=False, **kwargs):
  fn = functools.partial(model.apply, train=train, **kwargs)
  return jax.jit(fn)(variables, x)


@pytest.fixture(scope="module")
def tiny_variables():
  # One init shared by the tests (compiling it dominates their runtime);
  # dropout and stochastic depth add no variables.
  return jax.jit(EfficientNet(**TINY).init)(jax.random.PRNGKey(0), _images())


def test_parameter_count_matches_torchvision_b0():
  model = EfficientNet(num_classes=1000)
  x = jnp.zeros((1, 224, 224, 3))
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  count = sum(v.size for v in jax.tree_util.tree_leaves(variables["params"]))
  # torchvision.models.efficientnet_b0(): 5,288,548 trainable parameters.
  assert count == 5_288_548
  logits, embedding = jax.eval_shape(model.apply, variables, x)
  assert logits.shape == (1, 1000) and embedding.shape == (1, 1280)
  params = flax.traverse_util.flatten_dict(variables["params"])
  assert len({k[0] for k in params if k[0].startswith("stage")}) == 16
  # Stage 6 first block: 112 -> 672 expanded, 5x5 depthwise, SE to 28.
  assert params[("stage6_block0", "depthwise", "kernel")].shape == (
      5, 5, 1, 672)
  assert params[("stage6_block0", "se", "fc1", "kernel")].shape == (
      1, 1, 672, 28)
  # Stage 1 (expand ratio 1) has no expansion conv.
  assert ("stage1_block0", "expand", "kernel") not in params


def test_make_divisible_matches_torchvision():
  # torchvision _make_divisible(v, 8) by hand: round to the nearest 8, at
  # least 8, never more than 10% below v.
  assert [_make_divisible(v) for v in (32, 16 * 0.25, 40 * 0.25, 24 * 6,
                                       112 * 0.25, 92)] == [32, 8, 16, 144,
                                                            32, 96]


def test_two_class_shapes_and_classifier_path(tiny_variables):
  model = EfficientNet(**TINY)
  logits, embedding = _apply(model, tiny_variables, _images(seed=1))
  # Last stage 320 * 0.25 = 80 channels, head conv 4 * 80.
  assert logits.shape == (B, 2) and embedding.shape == (B, 320)
  kernel = tiny_variables["params"]["classifier"]["kernel"]
  bias = tiny_variables["params"]["classifier"]["bias"]
  assert kernel.shape == (320, 2)
  np.testing.assert_allclose(logits, embedding @ kernel + bias, atol=1e-5)


def test_batch_stats_update_only_in_train_mode(tiny_variables):
  model = EfficientNet(**TINY)
  x = _images(seed=2) * 3 + 1
  _, train_state = assert_batch_stats_update_only_in_train_mode(
      lambda train: _apply(model, tiny_variables, x, train=train,
                           mutable=["batch_stats"]),
      tiny_variables["batch_stats"])
  # Running mean moves 10% towards the batch mean (torchvision momentum 0.1)
  # of the stem conv output (3x3/2, symmetric padding 1, no bias).
  stem = jax.lax.conv_general_dilated(
      x, tiny_variables["params"]["stem"]["kernel"], (2, 2),
      ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(train_state["batch_stats"]["stem_bn"]["mean"],
                             0.1 * jnp.mean(stem, axis=(0, 1, 2)),
                             rtol=1e-4, atol=1e-6)


def test_dropout_and_stochastic_depth_only_in_training(tiny_variables):
  x = _images(seed=4)
  model = EfficientNet(**{**TINY, "dropout_rate": 0.5,
                          "stochastic_depth_rate": 0.5})
  plain, _ = _apply(EfficientNet(**TINY), tiny_variables, x)
  a, _ = _apply(model, tiny_variables, x)
  np.testing.assert_allclose(a, plain, atol=1e-6)
  rngs = {"dropout": jax.random.PRNGKey(5)}
  (_, emb_sd), _ = _apply(model, tiny_variables, x, train=True,
                          mutable=["batch_stats"], rngs=rngs)
  (_, emb_plain), _ = _apply(EfficientNet(**TINY), tiny_variables, x,
                             train=True, mutable=["batch_stats"])
  # Stochastic depth drops stage6_block1's branch (p = 0.5 * 6 / 8) for
  # some examples; dropout acts after the embedding.
  assert not np.allclose(emb_sd, emb_plain, atol=1e-4)
  with pytest.raises(ValueError, match="NHWC"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 32, 32)))


def test_tiny_overfit(tiny_variables):
  model = EfficientNet(**TINY)
  x = _images(seed=3)
  y = jnp.array([0, 1, 1, 0])
  losses = overfit_losses(model, tiny_variables, x, y, learning_rate=3e-3,
                          steps=30)
  assert losses[-1] < 0.05 < losses[0]
