"""The jitted train and eval steps against direct computations."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import step as step_lib
from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies import Strategy

NUM_CLASSES, DIM, BATCH = 3, 5, 8


def _setup(strategy: Strategy, learning_rate: float = 0.1, **model_fields):
  model = MLP(**{"num_classes": NUM_CLASSES, "hidden_sizes": (),
                 **model_fields})
  frontend = lambda audio: audio  # Features are given directly.
  rng = np.random.default_rng(0)
  batch = {"audio": rng.normal(size=(BATCH, DIM)).astype(np.float32),
           "label": rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32)}
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(batch["audio"]))[
      "params"]
  tx = optax.chain(strategy.tx, optax.sgd(learning_rate))
  state = create_train_state(
      # A copy: the step donates the state's buffers, and tests compare
      # against the initial parameters afterwards.
      params=jax.tree.map(jnp.copy, params), batch_stats={}, tx=tx,
      strategy_state=strategy.init_state(params) if strategy.init_state else {},
      rng=jax.random.PRNGKey(1))
  mesh = step_lib.make_mesh()
  train_step = step_lib.make_train_step(model=model, frontend=frontend,
                                        strategy=strategy, tx=tx, mesh=mesh)
  return model, params, batch, state, train_step, mesh


def _cross_entropy(model, params, batch):
  logits, _ = model.apply({"params": params}, jnp.asarray(batch["audio"]))
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.asarray(batch["label"])).mean()


def test_finetune_step_is_one_sgd_step_on_cross_entropy():
  model, params, batch, state, train_step, mesh = _setup(Strategy("finetune"))
  expected_loss, grads = jax.value_and_grad(
      lambda p: _cross_entropy(model, p, batch))(params)
  expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
  state, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  chex.assert_trees_all_close(state.params, expected, atol=1e-6)
  assert float(metrics["loss"]) == pytest.approx(float(expected_loss),
                                                  abs=1e-6)
  assert float(metrics["grad_norm"]) == pytest.approx(
      float(optax.tree.norm(grads)), rel=1e-5)
  assert int(state.step) == 1


def test_an_oc_softmax_head_trains_on_the_oc_loss():
  model, params, batch, state, train_step, mesh = _setup(
      Strategy("finetune"), num_classes=2, head="oc_softmax")
  batch["label"] = batch["label"] % 2
  w = np.asarray(params["classifier"]["kernel"])[:, 0]

  def oc_loss(p):
    # Hand-written OC-softmax (Zhang et al. 2021): cosine to the direction,
    # softplus(20 (0.9 - cos)) for bona fide, softplus(20 (cos - 0.2)) else.
    x = jnp.asarray(batch["audio"])
    k = p["classifier"]["kernel"][:, 0]
    cos = (x @ k) / (jnp.linalg.norm(x, axis=1) * jnp.linalg.norm(k))
    margin = jnp.where(batch["label"] == 0, 0.9 - cos, cos - 0.2)
    return jnp.mean(jnp.log1p(jnp.exp(20.0 * margin)))

  expected_loss, grads = jax.value_and_grad(oc_loss)(params)
  state, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  assert float(metrics["loss"]) == pytest.approx(float(expected_loss),
                                                  rel=1e-5)
  chex.assert_trees_all_close(
      state.params["classifier"]["kernel"][:, 0],
      w - 0.1 * np.asarray(grads["classifier"]["kernel"])[:, 0], atol=1e-6)
  # The softmax cross-entropy of the same logits is a different number.
  logits, _ = model.apply({"params": params}, jnp.asarray(batch["audio"]))
  cross_entropy = optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.asarray(batch["label"])).mean()
  assert abs(float(cross_entropy) - float(expected_loss)) > 1e-3


def test_augment_changes_what_the_train_step_sees_not_what_eval_sees():
  strategy = Strategy("finetune")
  model, params, batch, state, _, mesh = _setup(strategy)
  seen = {}

  def augment(key, audio):
    seen["key"] = key
    return jnp.zeros_like(audio)  # The model sees silence.

  train_step = step_lib.make_train_step(
      model=model, frontend=lambda audio: audio, strategy=strategy,
      tx=optax.chain(strategy.tx, optax.sgd(0.1)), mesh=mesh,
      augment=augment)
  _, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  silent = {**batch, "audio": np.zeros_like(batch["audio"])}
  assert float(metrics["loss"]) == pytest.approx(
      float(_cross_entropy(model, params, silent)), abs=1e-6)
  assert float(metrics["loss"]) != pytest.approx(
      float(_cross_entropy(model, params, batch)), abs=1e-3)
  assert "key" in seen


def test_strategy_tx_sees_the_embedding_and_can_change_the_update():
  seen = {}

  def update(updates, state, params=None, *, features, logits, labels,
             **extra):
    del params, extra
    chex.assert_shape(features, (BATCH, DIM))  # Classifier input.
    chex.assert_shape(logits, (BATCH, NUM_CLASSES))
    chex.assert_shape(labels, (BATCH,))
    seen["called"] = True
    return jax.tree.map(jnp.zeros_like, updates), state

  freeze = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(),
                                                 update)
  _, params, batch, state, train_step, mesh = _setup(Strategy("freeze",
                                                              tx=freeze))
  state, _ = train_step(state, step_lib.put_batch(batch, mesh))
  assert seen["called"]
  chex.assert_trees_all_close(state.params, params)


def test_strategy_loss_is_added_and_differentiated():
  weight = 0.5

  def l2_loss(params, strategy_state, batch, outputs):
    del strategy_state, batch, outputs
    penalty = weight * sum(jnp.sum(p ** 2) for p in jax.tree.leaves(params))
    return penalty, {"penalty": penalty}

  model, params, batch, state, train_step, mesh = _setup(
      Strategy("l2", loss=l2_loss))
  total = lambda p: _cross_entropy(model, p, batch) + weight * sum(
      jnp.sum(x ** 2) for x in jax.tree.leaves(p))
  expected_loss, grads = jax.value_and_grad(total)(params)
  state, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  chex.assert_trees_all_close(
      state.params, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads),
      atol=1e-6)
  assert float(metrics["loss"]) == pytest.approx(float(expected_loss),
                                                 abs=1e-5)
  assert float(metrics["penalty"]) > 0


def test_eval_scores_are_genuine_log_odds():
  logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
  expected = [2.0 - np.log(2.0), 0.0 - np.log(np.e + np.exp(-1.0))]
  np.testing.assert_allclose(step_lib.genuine_log_odds(logits), expected,
                             rtol=1e-6)
  # Two classes: the plain logit difference.
  np.testing.assert_allclose(
      step_lib.genuine_log_odds(jnp.array([[1.5, -0.5]])), [2.0], rtol=1e-6)
