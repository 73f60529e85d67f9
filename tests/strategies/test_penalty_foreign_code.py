"""EWC in somebody else's code: a plain Flax model and a hand-written loop.

Nothing from cljax is imported but the EWC pieces, exactly as the README's
"EWC in your own code" snippet shows.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax.strategies.ewc import (consolidate, ewc, find_ewc_state,
                                  fisher_diagonal, replace_ewc_state)


class Net(nn.Module):
  """A model cljax never saw (no ``classifier`` name, one output tuple)."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(16, name="layer_a")(x))
    return nn.Dense(2, name="layer_b")(x)


def _task(seed, w):
  x = jax.random.normal(jax.random.PRNGKey(seed), (256, 4))
  return x, (x @ w > 0).astype(jnp.int32)


TASK_A = _task(1, jnp.array([1.0, 1.0, 0.0, 0.0]))
TASK_B = _task(2, jnp.array([0.0, 0.0, 1.0, -1.0]))
MODEL = Net()


def loss_fn(params, x, y):
  logits = MODEL.apply({"params": params}, x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def accuracy(params, data):
  x, y = data
  return float(jnp.mean(jnp.argmax(MODEL.apply({"params": params}, x), -1)
                        == y))


def train(tx, params, opt_state, data, steps):
  x, y = data

  @jax.jit
  def step(params, opt_state):
    grads = jax.grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for _ in range(steps):
    params, opt_state = step(params, opt_state)
  return params, opt_state


def _after_task_a(tx):
  """Train task A, measure its Fisher, consolidate into ``tx``'s state."""
  params = MODEL.init(jax.random.PRNGKey(0), TASK_A[0][:1])["params"]
  opt_state = tx.init(params)
  params, opt_state = train(tx, params, opt_state, TASK_A, 300)
  logits_fn = lambda p, x: MODEL.apply({"params": p}, x)  # noqa: E731
  batches = [{"inputs": TASK_A[0][i:i + 64], "label": TASK_A[1][i:i + 64]}
             for i in range(0, 256, 64)]
  fisher = fisher_diagonal(logits_fn, params, batches)
  opt_state = replace_ewc_state(
      opt_state, consolidate(find_ewc_state(opt_state), fisher, params))
  return params, opt_state, fisher


def _weighted_drift(fisher, params, anchor):
  return float(sum(jnp.sum(f * (p - a) ** 2) for f, p, a in zip(
      jax.tree.leaves(fisher), jax.tree.leaves(params),
      jax.tree.leaves(anchor))))


def test_ewc_in_a_plain_flax_loop_keeps_task_a():
  tx = optax.chain(ewc(strength=300.0), optax.adam(1e-2))
  anchor, opt_state, fisher = _after_task_a(tx)
  assert accuracy(anchor, TASK_A) > 0.95
  with_ewc, _ = train(tx, anchor, opt_state, TASK_B, 300)
  plain = optax.adam(1e-2)
  without, _ = train(plain, anchor, plain.init(anchor), TASK_B, 300)
  drift_ewc = _weighted_drift(fisher, with_ewc, anchor)
  drift_plain = _weighted_drift(fisher, without, anchor)
  assert drift_ewc < 0.5 * drift_plain, (drift_ewc, drift_plain)
  assert accuracy(with_ewc, TASK_A) > accuracy(without, TASK_A) + 0.05
  assert accuracy(with_ewc, TASK_B) > 0.7  # Task B is still learnt.


def test_ewc_under_multisteps():
  tx = optax.MultiSteps(optax.chain(ewc(strength=300.0), optax.adam(1e-2)),
                        every_k_schedule=2)
  anchor, opt_state, fisher = _after_task_a(tx)
  # The Fisher landed inside MultiSteps' inner state.
  np.testing.assert_allclose(
      find_ewc_state(opt_state.inner_opt_state).fisher["layer_b"]["kernel"],
      fisher["layer_b"]["kernel"])
  with_ewc, _ = train(tx, anchor, opt_state, TASK_B, 600)
  plain = optax.MultiSteps(optax.adam(1e-2), every_k_schedule=2)
  without, _ = train(plain, anchor, plain.init(anchor), TASK_B, 600)
  assert (_weighted_drift(fisher, with_ewc, anchor)
          < 0.5 * _weighted_drift(fisher, without, anchor))


def test_ewc_under_inject_hyperparams():
  tx = optax.chain(optax.inject_hyperparams(ewc)(strength=300.0),
                   optax.adam(1e-2))
  anchor, opt_state, fisher = _after_task_a(tx)
  grads = jax.grad(loss_fn)(jax.tree.map(lambda p: p * 0.9, anchor),
                            *TASK_B)
  moved = jax.tree.map(lambda p: p * 0.9, anchor)
  on, _ = tx.update(grads, opt_state, moved)
  # The injected strength can be changed in the state: 0 turns EWC off,
  # leaving exactly Adam's update.
  off_state = optax.tree.set(opt_state, strength=jnp.asarray(0.0))
  off, _ = tx.update(grads, off_state, moved)
  adam = optax.adam(1e-2)
  adam_state = optax.tree.get(opt_state, "ScaleByAdamState")
  reference, _ = adam.update(grads, (adam_state, optax.EmptyState()), moved)
  for a, b in zip(jax.tree.leaves(off), jax.tree.leaves(reference)):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(on),
                                                   jax.tree.leaves(off)))
  assert float(optax.tree.norm(fisher)) > 0
