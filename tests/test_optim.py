"""Tests of cljax.optim: the chain the train step applies."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax import config_schema
from cljax import optim


def _counting_tx() -> optax.GradientTransformation:
  """A stand-in strategy tx whose state counts the updates it has seen."""

  def init(params):
    del params
    return jnp.zeros([], jnp.int32)

  def update(updates, count, params=None):
    del params
    return updates, count + 1

  return optax.GradientTransformation(init, update)


def test_reset_base_optimizer_keeps_the_strategy_state():
  block: ml_collections.ConfigDict = config_schema.base_config().optimizer
  block.grad_clip_norm = 1.0
  tx = optim.make_tx(block, _counting_tx(), total_steps=10)
  params = {"w": jnp.ones(3)}
  opt_state = tx.init(params)
  for _ in range(4):
    _, opt_state = tx.update({"w": jnp.full(3, 0.5)}, opt_state, params)
  reset = optim.reset_base_optimizer(tx, opt_state, params)
  assert int(reset[1]) == 4  # The strategy's state survives...
  adam_mu = optax.tree.get(reset[-1], "mu")
  np.testing.assert_array_equal(adam_mu["w"], np.zeros(3))  # ...Adam restarts.
  assert int(opt_state[-1].count) == 4
  assert int(reset[-1].count) == 0  # The schedule restarts with it.
