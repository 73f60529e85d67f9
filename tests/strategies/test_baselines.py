"""The two baseline strategies: fine-tune and joint."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from cljax.strategies import joint, make_strategy


def test_finetune_passes_the_gradient_unchanged():
  strategy = make_strategy(ml_collections.ConfigDict({"name": "finetune"}),
                           None)
  params = {"w": jnp.arange(3.0)}
  grads = {"w": jnp.array([0.5, -1.0, 2.0])}
  state = strategy.tx.init(params)
  updates, _ = strategy.tx.update(grads, state, params,
                                  features=jnp.ones((2, 3)),
                                  labels=jnp.zeros(2, jnp.int32))
  np.testing.assert_array_equal(updates["w"], grads["w"])
  assert [tuple(strategy.train_tasks(t)) for t in range(3)] == [(0,), (1,),
                                                                (2,)]
  assert strategy.loss is None and strategy.end_task is None


def test_joint_trains_on_every_task_so_far():
  strategy = make_strategy(ml_collections.ConfigDict({"name": "joint"}), None)
  assert strategy.train_tasks is joint.all_tasks_so_far
  assert [tuple(strategy.train_tasks(t)) for t in range(3)] == [
      (0,), (0, 1), (0, 1, 2)]
