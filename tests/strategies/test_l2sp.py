"""L2-SP: the penalty gradient, what it leaves alone, the start-of-task hook."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp

from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.l2sp import (L2SPState, find_l2sp_state, l2sp, make,
                                   penalty, replace_l2sp_state, reset_anchor)


def _params():
  k = jax.random.split(jax.random.PRNGKey(0), 4)
  return {"hidden0": {"kernel": jax.random.normal(k[0], (3, 4)),
                      "bias": jax.random.normal(k[1], (4,))},
          "classifier": {"kernel": jax.random.normal(k[2], (4, 2)),
                         "bias": jax.random.normal(k[3], (2,))}}


def _shift(tree, amount):
  return jax.tree.map(lambda x: x + amount * jnp.cos(x), tree)


class L2SPUpdateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_added_term_is_the_gradient_of_the_penalty(self):
    start = _params()
    tx = l2sp(alpha=0.3, beta=0.05)
    state = tx.init(start)
    theta = _shift(start, 0.7)
    grads = _shift(jax.tree.map(jnp.zeros_like, start), 1.0)
    updates, new_state = self.variant(tx.update)(grads, state, theta)
    expected = jax.grad(lambda p: penalty(p, start, 0.3, 0.05))(theta)
    chex.assert_trees_all_close(jax.tree.map(jnp.subtract, updates, grads),
                                expected, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_equal(new_state, state)
    # The head is decayed towards zero, not pulled to its start.
    chex.assert_trees_all_close(
        jax.tree.map(jnp.subtract, updates, grads)["classifier"],
        jax.tree.map(lambda w: 0.05 * w, theta["classifier"]), rtol=1e-5,
        atol=1e-7)

  @chex.variants(with_jit=True, without_jit=True)
  def test_filtered_out_parameters_pass_through_untouched(self):
    start = _params()
    tx = l2sp(alpha=0.3, beta=0.05,
              param_filter=lambda path, _: path[-1] == "kernel")
    theta = _shift(start, 0.7)
    grads = _shift(jax.tree.map(jnp.zeros_like, start), 1.0)
    updates, _ = self.variant(tx.update)(grads, tx.init(start), theta)
    for module in ("hidden0", "classifier"):
      chex.assert_trees_all_equal(updates[module]["bias"],
                                  grads[module]["bias"])
    chex.assert_trees_all_close(
        updates["hidden0"]["kernel"] - grads["hidden0"]["kernel"],
        0.3 * (theta["hidden0"]["kernel"] - start["hidden0"]["kernel"]),
        rtol=1e-5)


def test_the_state_keeps_no_copy_of_the_head():
  state = l2sp().init(_params())
  assert isinstance(state.anchor["classifier"]["kernel"], optax.MaskedNode)
  assert state.anchor["hidden0"]["kernel"].shape == (3, 4)


def test_start_task_moves_the_anchor_in_a_real_chain_state():
  model = MLP(num_classes=2, hidden_sizes=(4,))
  strategy = make(StrategyContext(model=model, num_classes=2, num_tasks=2,
                                  frontend=lambda a: a), alpha=0.5, beta=0.0)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), strategy.tx,
                   optax.adam(1e-2))
  state = create_train_state(params=params, batch_stats={}, tx=tx,
                             strategy_state={}, rng=jax.random.PRNGKey(1))
  later = _shift(params, 0.2)
  state = state.replace(params=later)
  context = TaskContext(task_id=1, task_name="b", num_tasks=2, model=model,
                        frontend=lambda a: a, batches=None)
  new_state = strategy.start_task(state, context)
  anchor = find_l2sp_state(new_state.opt_state).anchor
  chex.assert_trees_all_close(anchor["hidden0"], later["hidden0"])
  # At the new anchor the backbone feels no pull; before the reset it did.
  zeros = jax.tree.map(jnp.zeros_like, params)
  after, _ = strategy.tx.update(zeros, new_state.opt_state[1], later)
  before, _ = strategy.tx.update(zeros, state.opt_state[1], later)
  chex.assert_trees_all_close(after["hidden0"],
                              jax.tree.map(jnp.zeros_like, later["hidden0"]))
  assert float(optax.tree.norm(before["hidden0"])) > 0.01
  chex.assert_trees_all_equal(new_state.opt_state[2], state.opt_state[2])


def test_state_survives_an_orbax_save_and_restore(tmp_path):
  params = _params()
  tx = optax.chain(l2sp(0.1, 0.1), optax.adam(1e-3))
  opt_state = tx.init(params)
  opt_state = replace_l2sp_state(opt_state, reset_anchor(
      find_l2sp_state(opt_state), _shift(params, 1.0)))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(tmp_path / "c", opt_state)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(
        tmp_path / "c", jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                     opt_state))
  restored_state = find_l2sp_state(restored)
  assert isinstance(restored_state, L2SPState)
  chex.assert_trees_all_equal(restored_state, find_l2sp_state(opt_state))
