"""RWM in somebody else's JAX code: a plain Flax loop, nothing else of cljax.

The only cljax import is the transform factory (and its ``commit`` helper,
which ends a task); the model, data, loss and loop are written here the way
a user would, as the README's "RWM in your own code" shows.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax.strategies.rwm import commit, rwm


class Detector(nn.Module):
  """A model cljax never saw: its last layer is called ``head``."""

  @nn.compact
  def __call__(self, x):
    hidden = nn.tanh(nn.Dense(16, name="trunk")(x))
    return nn.Dense(2, name="head")(hidden), hidden


def _task(seed, shift):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, size=256)
  x = rng.normal(size=(256, 5)) + np.where(labels[:, None] == 0, 1.0, -1.0)
  return jnp.asarray(x + shift, jnp.float32), jnp.asarray(labels)


def _train(tx, steps=60):
  model = Detector()
  params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 5)))["params"]
  opt_state = tx.init(params)

  def loss_fn(params, x, y):
    logits, hidden = model.apply({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (logits, hidden)

  @jax.jit
  def step(params, opt_state, x, y):
    (loss, (logits, hidden)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params, features=hidden,
                                   labels=y, logits=logits)
    return optax.apply_updates(params, updates), opt_state, loss

  losses = []
  for task, shift in enumerate((0.0, 2.0)):
    x, y = _task(task, shift)
    for i in range(steps):
      batch = slice((i * 32) % 256, (i * 32) % 256 + 32)
      params, opt_state, loss = step(params, opt_state, x[batch], y[batch])
      losses.append(float(loss))
    opt_state = commit(opt_state)   # the task is over: P learns it
  return model, params, opt_state, losses


def test_plain_flax_loop_learns_with_rwm():
  tx = optax.chain(rwm(layer="head/kernel"), optax.adam(1e-2))
  _, _, opt_state, losses = _train(tx)
  assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5]), losses
  state = opt_state[0]
  assert int(state.task_count) == 2
  assert float(jnp.abs(state.projector - jnp.eye(16)).max()) > 1e-3


def test_multisteps_and_inject_hyperparams():
  inner = optax.chain(
      optax.inject_hyperparams(rwm, static_args=("layer", "mode",
                                                 "per_class"))(
          layer="head/kernel", per_class=True, angle_eps=1e-3),
      optax.inject_hyperparams(optax.adam)(learning_rate=1e-2))
  tx = optax.MultiSteps(inner, every_k_schedule=2)
  _, _, opt_state, losses = _train(tx, steps=80)
  assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5]), losses
  # The hyperparameters are in the state, where a user can change them.
  assert float(optax.tree.get(opt_state, "angle_eps")) == np.float32(1e-3)


def test_only_the_projected_kernel_differs_from_the_plain_gradient():
  model = Detector()
  params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 5)))["params"]
  x, y = _task(3, 0.0)
  x, y = x[:32], y[:32]
  tx = rwm(layer="head/kernel")
  state = tx.init(params)
  logits, hidden = model.apply({"params": params}, x)
  # Learn the task's inputs into P, then look at an unbalanced batch.
  _, state = tx.update(params, state, features=hidden, labels=y,
                       logits=logits)
  state = commit(state)
  grads = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
      model.apply({"params": p}, x)[0], y).mean())(params)
  y_genuine = jnp.zeros_like(y)
  updates, _ = tx.update(grads, state, features=hidden, labels=y_genuine,
                         logits=logits)
  for path, new in jax.tree_util.tree_leaves_with_path(updates):
    old = grads
    for key in path:
      old = old[key.key]
    if tuple(k.key for k in path) == ("head", "kernel"):
      assert float(jnp.abs(new - old).max()) > 1e-5
    else:
      np.testing.assert_array_equal(new, old)
