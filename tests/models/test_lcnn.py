"""Tests for the LFCC-LCNN baseline port."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models import CLASSIFIER_KERNEL, LCNN, make_model
from cljax.models.lcnn import LSTM, max_feature_map
from overfit_helpers import overfit_losses


def _count(tree):
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def test_parameter_count_matches_hand_sum_of_the_official_layers():
  x = jnp.zeros((1, 401, 60))
  official = jax.eval_shape(LCNN(num_classes=1).init, jax.random.PRNGKey(0),
                            x)["params"]
  convs = (1664 + 2112 + 27744 + 4704 + 55424 + 8320 + 36928 + 2112 +
           18496)
  blstms = 2 * 2 * (4 * 48 * (96 + 48) + 2 * 4 * 48)
  assert convs == 157_504 and blstms == 112_128
  assert _count(official) == convs + blstms + 97 == 269_729
  cljax_head = jax.eval_shape(make_model({"name": "lcnn"}, num_classes=2).init,
                              jax.random.PRNGKey(0), x)["params"]
  assert _count(cljax_head) == 269_826
  assert cljax_head[CLASSIFIER_KERNEL[0]][CLASSIFIER_KERNEL[1]].shape == (96, 2)


def test_shapes_and_classifier_reads_the_embedding():
  model = LCNN()
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 64, 60))
  variables = jax.jit(model.init)(jax.random.PRNGKey(1), x)
  logits, embedding = jax.jit(model.apply)(variables, x)
  assert logits.shape == (3, 2) and embedding.shape == (3, 96)
  kernel = variables["params"]["classifier"]["kernel"]
  bias = variables["params"]["classifier"]["bias"]
  np.testing.assert_allclose(logits, embedding @ kernel + bias, atol=1e-5)


def test_max_feature_map_takes_the_max_of_channel_halves():
  x = jnp.array([[1.0, 5.0, 3.0, 2.0]])
  np.testing.assert_array_equal(max_feature_map(x), [[3.0, 5.0]])


def _numpy_lstm(x, w_ih, b_ih, w_hh, b_hh, reverse=False):
  sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
  batch, steps, _ = x.shape
  hidden = w_hh.shape[0]
  h = np.zeros((batch, hidden))
  c = np.zeros((batch, hidden))
  out = np.zeros((batch, steps, hidden))
  order = range(steps - 1, -1, -1) if reverse else range(steps)
  for t in order:
    gates = x[:, t] @ w_ih + b_ih + h @ w_hh + b_hh
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    out[:, t] = h
  return out


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_matches_a_numpy_reference(reverse):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 5))
  module = LSTM(3, reverse=reverse)
  variables = module.init(jax.random.PRNGKey(1), x)
  p = jax.tree_util.tree_map(np.asarray, variables["params"])
  p["hh_bias"] = np.linspace(-0.5, 0.5, 12)  # Non-zero to exercise it.
  expected = _numpy_lstm(np.asarray(x), p["ih"]["kernel"], p["ih"]["bias"],
                         p["hh_kernel"], p["hh_bias"], reverse)
  got = module.apply({"params": p}, x)
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_overfits_a_tiny_batch():
  model = LCNN(dropout_rate=0.0)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 60))
  labels = jnp.array([0, 1, 0, 1])
  variables = jax.jit(model.init)(jax.random.PRNGKey(1), x)
  losses = overfit_losses(model, variables, x, labels, learning_rate=1e-3,
                          steps=40)
  assert losses[0] > 0.3
  assert losses[-1] < 0.02, losses[-5:]


def test_bfloat16_forward_agrees_with_float32():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 64, 60))
  variables = jax.jit(LCNN().init)(jax.random.PRNGKey(1), x)
  logits32, emb32 = jax.jit(LCNN().apply)(variables, x)
  logits16, emb16 = jax.jit(LCNN(dtype=jnp.bfloat16).apply)(variables, x)
  # bf16 has a relative precision of 2^-8 ~ 0.4 %; after ~12 layers the
  # embedding agrees to a few per cent of its scale.
  scale = float(np.max(np.abs(np.asarray(emb32))))
  np.testing.assert_allclose(emb16, emb32, atol=0.05 * scale)
  np.testing.assert_allclose(logits16, logits32, atol=0.05 * scale)


def test_too_short_input_raises():
  with pytest.raises(ValueError, match="pools time and frequency by 16"):
    LCNN().init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 60)))
