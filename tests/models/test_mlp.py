"""Tests for the MLP detector over precomputed features."""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax.models import CLASSIFIER_KERNEL, MLP, make_model


def _x(shape, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def test_shapes_vectors_and_sequences():
  model = make_model({"name": "mlp", "hidden_sizes": [32, 16]}, num_classes=2)
  variables = model.init(jax.random.PRNGKey(0), _x((3, 10)))
  logits, embedding = model.apply(variables, _x((3, 10)))
  assert logits.shape == (3, 2) and embedding.shape == (3, 16)
  # A sequence is mean-pooled over time first.
  seq = _x((3, 7, 10), seed=1)
  seq_out = model.apply(variables, seq)
  pooled_out = model.apply(variables, seq.mean(axis=1))
  for a, b in zip(seq_out, pooled_out):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_classifier_path_and_input_dim():
  model = MLP(hidden_sizes=(24,), num_classes=4)
  variables = model.init(jax.random.PRNGKey(0), _x((2, 5)))
  params = flax.traverse_util.flatten_dict(variables["params"])
  _, embedding = model.apply(variables, _x((2, 5)))
  assert params[CLASSIFIER_KERNEL].shape == (embedding.shape[-1], 4)


def test_no_hidden_layers_is_a_linear_probe():
  model = MLP(hidden_sizes=())
  x = _x((2, 5))
  variables = model.init(jax.random.PRNGKey(0), x)
  _, embedding = model.apply(variables, x)
  np.testing.assert_allclose(embedding, x)


def test_parameter_count_small_config():
  model = MLP(hidden_sizes=(7, 5), num_classes=3)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), _x((2, 4)))
  count = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
  assert count == (4 * 7 + 7) + (7 * 5 + 5) + (5 * 3 + 3) == 93


def test_jit_equals_eager_and_dropout():
  model = MLP(hidden_sizes=(16,), dropout_rate=0.5)
  variables = model.init(jax.random.PRNGKey(0), _x((4, 6)))
  eager = model.apply(variables, _x((4, 6), 1))
  jitted = jax.jit(model.apply)(variables, _x((4, 6), 1))
  for a, b in zip(eager, jitted):
    np.testing.assert_allclose(a, b, atol=1e-6)
  _, emb = model.apply(variables, _x((4, 6), 1), train=True,
                       rngs={"dropout": jax.random.PRNGKey(2)})
  _, emb_eval = model.apply(variables, _x((4, 6), 1))
  assert not np.allclose(emb, emb_eval)


def test_tiny_overfit():
  model = MLP(hidden_sizes=(32,))
  x, y = _x((16, 12), 3), jnp.arange(16) % 2
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  optimizer = optax.adam(1e-2)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  losses = []
  for _ in range(40):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.2 * losses[0]
