"""The training state: everything the continual loop carries, as one pytree.

Checkpoints save exactly this object (plus the host-side progress record), so
resuming from it reproduces the uninterrupted run.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
  """Model variables, optimizer/strategy state and the step's random key.

  Attributes:
    step: global train step (counts every task), int32 scalar.
    params: the model's ``params`` collection.
    batch_stats: the model's ``batch_stats`` collection (``{}`` if none).
    opt_state: state of ``optax.chain(strategy.tx, optimizer)``: gradient
      transforms of a strategy (RWM's projectors, EWC's Fisher) live here.
    strategy_state: the strategy's own pytree for its loss terms (teacher
      parameters, anchors); ``{}`` for strategies without one.
    rng: a raw ``uint32[2]`` PRNG key, split once per step (dropout, replay).
    buffer: the strategy's replay memory (``cljax.replay.ReplayBuffer`` or a
      pytree of them); ``{}`` for strategies without one.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  strategy_state: Any
  rng: jax.Array
  buffer: Any = flax.struct.field(default_factory=dict)

  @property
  def variables(self) -> dict[str, Any]:
    """The Flax variable dict ``model.apply`` takes."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}


def create_train_state(*, params: Any, batch_stats: Any,
                       tx: optax.GradientTransformation, strategy_state: Any,
                       rng: jax.Array, buffer: Any = None) -> TrainState:
  """A fresh state at step 0."""
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      batch_stats=batch_stats if batch_stats else {},
      opt_state=tx.init(params),
      strategy_state=strategy_state if strategy_state is not None else {},
      rng=rng,
      buffer=buffer if buffer is not None else {})
