"""Tests for the CNN1D log-mel detector and the model registry."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import registry
from cljax.models import CLASSIFIER_KERNEL, CNN1D, MODELS, make_model
from overfit_helpers import assert_batch_stats_update_only_in_train_mode
from overfit_helpers import overfit_losses

B, T, F = 4, 21, 8


def _init(model, x, seed=0):
  # Jitted: eager Flax dispatches op by op and is slow on a small CPU.
  return jax.jit(model.init)(jax.random.PRNGKey(seed), x)


def _apply(model, variables, x, train=False, **kwargs):
  fn = functools.partial(model.apply, train=train, **kwargs)
  return jax.jit(fn)(variables, x)


def _features(seed=0, batch=B):
  return jax.random.normal(jax.random.PRNGKey(seed + 100), (batch, T, F))


def test_shapes_and_classifier_path():
  model = make_model({"name": "cnn1d", "embed_dim": 32}, num_classes=3)
  assert isinstance(model, CNN1D)
  variables = _init(model, _features())
  logits, embedding = _apply(model, variables, _features())
  assert logits.shape == (B, 3) and embedding.shape == (B, 32)
  params = flax.traverse_util.flatten_dict(variables["params"])
  assert CLASSIFIER_KERNEL in params
  assert params[CLASSIFIER_KERNEL].shape == (32, 3)
  # The classifier sees exactly the embedding.
  kernel = variables["params"]["classifier"]["kernel"]
  bias = variables["params"]["classifier"]["bias"]
  np.testing.assert_allclose(logits, embedding @ kernel + bias, atol=1e-5)


def test_parameter_count_small_config():
  model = CNN1D(num_classes=2, channels=(4, 6), kernel_size=3, embed_dim=5)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), _features())
  count = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
  # conv0 3*8*4 (no bias) + bn0 2*4 + conv1 3*4*6 + bn1 2*6
  # + embed (2*6)*5+5 + classifier 5*2+2.
  assert count == 96 + 8 + 72 + 12 + 65 + 12 == 265


def test_batch_stats_update_only_in_train_mode():
  model = CNN1D(channels=(8, 8), embed_dim=16)
  variables = _init(model, _features())
  x = _features(seed=1) * 3 + 1
  _, train_state = assert_batch_stats_update_only_in_train_mode(
      lambda train: _apply(model, variables, x, train=train,
                           mutable=["batch_stats"]),
      variables["batch_stats"])


def test_mean_normalisation_removes_per_band_offsets():
  model = CNN1D(channels=(8,), embed_dim=8)
  x = _features()
  variables = _init(model, x)
  offset = jax.random.normal(jax.random.PRNGKey(7), (B, 1, F)) * 5
  a, _ = _apply(model, variables, x)
  b, _ = _apply(model, variables, x + offset)
  np.testing.assert_allclose(a, b, atol=1e-4)


def test_jit_equals_eager():
  model = CNN1D(channels=(8, 8, 8), strides=(1, 2, 1), dilations=2,
                embed_dim=16)
  variables = _init(model, _features())
  eager = model.apply(variables, _features(seed=2))
  jitted = jax.jit(model.apply)(variables, _features(seed=2))
  for a, b in zip(eager, jitted):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_dropout_uses_rng_only_in_training():
  model = CNN1D(channels=(8,), embed_dim=16, dropout_rate=0.5)
  variables = _init(model, _features())
  a, _ = _apply(model, variables, _features())
  b, _ = _apply(model, variables, _features())
  np.testing.assert_array_equal(a, b)
  _, emb = _apply(model, variables, _features(), train=True,
                  mutable=["batch_stats"],
                  rngs={"dropout": jax.random.PRNGKey(3)})[0]
  assert float(jnp.mean(emb == 0)) > 0.3


def test_tiny_overfit():
  model = CNN1D(channels=(16, 16), embed_dim=32)
  x = _features(seed=3, batch=16)
  y = jnp.arange(16) % 2
  losses = overfit_losses(model, _init(model, x), x, y, learning_rate=3e-3,
                          steps=40)
  assert losses[-1] < 0.2 * losses[0]


def test_registry_and_config_errors():
  assert set(MODELS) == {"aasist", "aasist_l", "cnn1d", "hm_conformer", "lcnn",
                         "mlp", "resnet", "resnet18", "resnet34", "resnet50",
                         "efficientnet_b0", "xception"}
  model = make_model({"name": "cnn1d", "channels": [8, 8]}, num_classes=2)
  assert model.channels == (8, 8)
  with pytest.raises(registry.ConfigError, match="config.model.chanels"):
    make_model({"name": "cnn1d", "chanels": [8]}, num_classes=2)
  with pytest.raises(registry.ConfigError, match="num_classes"):
    make_model({"name": "cnn1d", "num_classes": 5}, num_classes=2)
  bad = CNN1D(channels=(8, 8), strides=(1, 2, 2))
  with pytest.raises(ValueError, match="config.model.strides"):
    _init(bad, _features())
  with pytest.raises(ValueError, match="batch, time, bands"):
    _init(CNN1D(), jnp.zeros((2, 16000)))
