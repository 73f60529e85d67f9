"""SI: the path integral, the importance, the penalty and the cljax hook."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.si import (SIState, consolidate, find_si_state, make,
                                 penalty, replace_si_state, si)


def _quadratic_run(a, start, optimum, lr, steps, damping):
  """SGD on sum_i a_i/2 (theta_i - opt_i)^2 through chain(si, sgd)."""
  tx = optax.chain(si(strength=0.5), optax.sgd(lr))
  params = start
  opt_state = tx.init(params)
  grad_fn = jax.grad(lambda p: 0.5 * jnp.sum(a * (p - optimum) ** 2))
  for _ in range(steps):
    updates, opt_state = tx.update(grad_fn(params), opt_state, params)
    params = optax.apply_updates(params, updates)
  state = consolidate(find_si_state(opt_state), params, damping=damping)
  return state, params


def test_importance_on_a_quadratic_matches_the_analytic_value():
  # e_t = r^t e_0 with r = 1 - lr a; g_t = a e_t; the step is -lr g_t, so
  # omega = sum_t lr g_t^2 = lr a^2 e_0^2 (1 - r^(2T)) / (1 - r^2) and
  # Delta = e_0 (r^T - 1).
  a = jnp.array([0.5, 2.0, 4.0])
  optimum = jnp.array([1.0, -1.0, 0.5])
  start = jnp.array([3.0, 2.0, -1.0])
  lr, steps, damping = 0.1, 25, 1e-3
  state, params = _quadratic_run(a, start, optimum, lr, steps, damping)
  e0 = np.asarray(start - optimum, np.float64)
  a64 = np.asarray(a, np.float64)
  r = 1 - lr * a64
  omega = lr * a64 ** 2 * e0 ** 2 * (1 - r ** (2 * steps)) / (1 - r ** 2)
  delta = e0 * (r ** steps - 1)
  np.testing.assert_allclose(state.importance, omega / (delta ** 2 + damping),
                             rtol=1e-4)
  # The new task starts from here: path integral reset, anchor moved.
  np.testing.assert_array_equal(state.omega, 0.0)
  np.testing.assert_array_equal(state.prev_grad, 0.0)
  np.testing.assert_allclose(state.anchor, params)


class SIUpdateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_added_term_is_the_gradient_of_the_penalty(self):
    params = {"w": jnp.array([[0.3, -1.0], [2.0, 0.5]]), "b": jnp.ones(2)}
    state = SIState(
        omega=jax.tree.map(jnp.zeros_like, params),
        importance={"w": jnp.array([[1.0, 0.0], [3.0, 0.5]]),
                    "b": jnp.array([2.0, 0.1])},
        anchor={"w": jnp.zeros((2, 2)), "b": jnp.array([0.5, 2.0])},
        prev_params=params, prev_grad=jax.tree.map(jnp.zeros_like, params))
    grads = {"w": jnp.array([[0.1, 0.2], [0.3, 0.4]]), "b": jnp.ones(2)}
    updates, new_state = self.variant(si(strength=0.7).update)(
        grads, state, params)
    expected = jax.grad(lambda p: penalty(state, p, 0.7))(params)
    chex.assert_trees_all_close(jax.tree.map(jnp.subtract, updates, grads),
                                expected, rtol=1e-5)
    # What the path integral records is the task gradient, not the update.
    chex.assert_trees_all_equal(new_state.prev_grad, grads)
    chex.assert_trees_all_equal(new_state.prev_params, params)

  @chex.variants(with_jit=True, without_jit=True)
  def test_path_integral_uses_the_previous_gradient_and_the_actual_step(self):
    params = {"w": jnp.array([1.0, 2.0])}
    tx = si(strength=0.0)
    state = tx.init(params)
    g1 = {"w": jnp.array([0.5, -1.0])}
    _, state = self.variant(tx.update)(g1, state, params)
    moved = {"w": jnp.array([0.8, 2.5])}  # Any optimizer's step.
    _, state = self.variant(tx.update)({"w": jnp.zeros(2)}, state, moved)
    # -g1 * (theta2 - theta1) = -[0.5 * -0.2, -1.0 * 0.5] = [0.1, 0.5].
    np.testing.assert_allclose(state.omega["w"], [0.1, 0.5], rtol=1e-6)


def test_end_task_consolidates_inside_a_real_chain_state():
  model = MLP(num_classes=2, hidden_sizes=(4,))
  strategy = make(StrategyContext(model=model, num_classes=2, num_tasks=2,
                                  frontend=lambda a: a), strength=0.2)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), strategy.tx,
                   optax.adam(1e-2))
  state = create_train_state(params=params, batch_stats={}, tx=tx,
                             strategy_state={}, rng=jax.random.PRNGKey(1))
  x = jax.random.normal(jax.random.PRNGKey(2), (16, 3))
  y = (x[:, 0] > 0).astype(jnp.int32)

  def loss(p):
    logits, _ = model.apply({"params": p}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  opt_state, p = state.opt_state, params
  for _ in range(5):
    updates, opt_state = tx.update(jax.grad(loss)(p), opt_state, p)
    p = optax.apply_updates(p, updates)
  state = state.replace(params=p, opt_state=opt_state)
  context = TaskContext(task_id=0, task_name="a", num_tasks=2, model=model,
                        frontend=lambda a: a, batches=None)
  new_state = strategy.end_task(state, context)
  expected = consolidate(find_si_state(opt_state), p, damping=1e-3)
  chex.assert_trees_all_close(find_si_state(new_state.opt_state), expected)
  assert float(optax.tree.norm(expected.importance)) > 0
  chex.assert_trees_all_equal(new_state.opt_state[2], state.opt_state[2])
  # No two slots share a buffer (the train step donates the state).
  pointers = [x.unsafe_buffer_pointer()
              for x in jax.tree.leaves(new_state.opt_state[1])]
  assert len(set(pointers)) == len(pointers)


def test_state_survives_an_orbax_save_and_restore(tmp_path):
  params = {"w": jnp.arange(4.0).reshape(2, 2), "b": jnp.ones(2)}
  tx = optax.chain(si(0.1), optax.adam(1e-3))
  opt_state = tx.init(params)
  updates, opt_state = tx.update({"w": jnp.ones((2, 2)), "b": jnp.ones(2)},
                                 opt_state, params)
  moved = optax.apply_updates(params, updates)
  opt_state = replace_si_state(
      opt_state, consolidate(find_si_state(opt_state), moved))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(tmp_path / "c", opt_state)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(
        tmp_path / "c", jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                     opt_state))
  chex.assert_trees_all_equal(find_si_state(restored),
                              find_si_state(opt_state))
