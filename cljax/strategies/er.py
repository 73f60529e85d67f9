r"""ER: experience replay from a reservoir memory.

Reference: A. Chaudhry et al., "On Tiny Episodic Memories in Continual
Learning", 2019; the version of seed 001 is ``agents/exp_replay.py`` of
RaptorMai/online-continual-learning (``--agent ER --retrieve random
--update random --mem_size 5000``), read for this file.

Math. Each train step receives a batch :math:`B_t` of :math:`b` examples,
draws :math:`m` distinct examples :math:`R_t` uniformly from the memory
:math:`\mathcal{M}` (before :math:`B_t` is stored), and descends

.. math::
   L = \frac{1}{b} \sum_{(x, y) \in B_t} \ell(x, y)
     + \frac{1}{|R_t|} \sum_{(x, y) \in R_t} \ell(x, y),

the sum of the two mean cross-entropies (the second term is absent while
the memory is empty, so the first task starts as plain training); then
:math:`B_t` is offered to the memory by reservoir sampling
(``cljax.replay.reservoir``).

What the seed does, verified in ``exp_replay.py``: ``loss.backward()`` on
the incoming batch, then ``buffer.retrieve`` (``random_retrieve``: ``min(
eps_mem_batch, filled)`` rows without replacement), ``loss_mem.backward()``
(gradients accumulate, so the two means are *summed*), one
``opt.step()``, and only after the step ``buffer.update(batch_x, batch_y)``.
cljax does the same in one backward pass: ``replay`` returns the incoming
rows with weight :math:`1/b` and the replayed ones with weight
:math:`1/|R_t|` (0 for the placeholder rows of a memory holding fewer than
:math:`m`), and the train step's classification loss is
:math:`\sum_i w_i \ell_i`. The seed's defaults are ``batch 10`` and
``eps_mem_batch 10``: replay as many rows as come in, cljax's default.

Deviations: the seed's reservoir is per-batch approximate (see
``cljax.replay.reservoir``); batch-norm statistics see the incoming and the
replayed rows in one forward pass instead of two (the seed's two passes each
update the running statistics; this only matters for models with batch
norm).

Example::

  strategy = make(context, memory_size=5000)
  buffer = strategy.init_buffer(example_spec)       # in TrainState.buffer
  train_batch, buffer = strategy.replay(buffer, batch, rng, replay_context)
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp

from cljax import replay as replay_lib
from cljax.replay import reservoir
from cljax.replay.buffer import ReplayBuffer
from cljax.strategies.base import ReplayContext, Strategy, StrategyContext

__all__ = ["make", "mix", "store", "replay_rows"]


def mix(batch: Mapping[str, jax.Array], replayed: Mapping[str, jax.Array],
        valid: jax.Array) -> dict[str, jax.Array]:
  """The incoming rows followed by the replayed ones, with loss weights.

  ``weight`` is ``1/b`` for each of the ``b`` incoming rows and
  ``valid / max(sum(valid), 1)`` for the replayed ones, so that
  ``sum(weight * ce)`` is the incoming mean plus the mean over the valid
  replayed rows (0 when none is valid). Only the fields of ``replayed``
  are kept.
  """
  chex.assert_rank(valid, 1)
  batch_size = batch["label"].shape[0]
  num_valid = jnp.sum(valid.astype(jnp.float32))
  weight = jnp.concatenate([
      jnp.full((batch_size,), 1.0 / batch_size, jnp.float32),
      valid.astype(jnp.float32) / jnp.maximum(num_valid, 1.0)])
  mixed = {name: jnp.concatenate([batch[name].astype(rows.dtype), rows])
           for name, rows in replayed.items()}
  mixed["weight"] = weight
  return mixed


def store(buffer: ReplayBuffer, batch: Mapping[str, jax.Array],
          rng: jax.Array, replayed: Any = None) -> ReplayBuffer:
  """Offers the incoming batch to the memory by reservoir sampling.

  ``replayed``: the rows read from this memory in the same step; the
  insertion is ordered after them so the memory is updated in place
  (``reservoir.insert``'s ``after``).
  """
  return reservoir.insert(buffer, {name: batch[name] for name in buffer.data},
                          rng, after=replayed)


def replay_rows(replay_batch_size: int | None, batch: Mapping[str, Any],
                capacity: int) -> int:
  """Rows replayed per step: the configured number or the batch size,
  capped by the memory (a memory smaller than a batch replays all of it)."""
  rows = replay_batch_size or batch["label"].shape[0]
  return min(rows, capacity)


def make(context: StrategyContext, memory_size: int = 5000,
         replay_batch_size: int | None = None) -> Strategy:
  """Experience replay for the cljax loop (fields from ``config.strategy``).

  Args:
    context: the experiment (unused: ER needs no forward pass of its own).
    memory_size: examples the reservoir keeps (seed 001: 5000).
    replay_batch_size: rows drawn from the memory per step; ``None``: as many
      as the incoming batch (the seed's ``eps_mem_batch`` = ``batch`` = 10).

  Returns:
    A ``Strategy`` with ``init_buffer`` and ``replay``.
  """
  del context
  memory_size = replay_lib.check_capacity(memory_size, "strategy.memory_size")
  replay_batch_size = replay_lib.check_replay_batch_size(replay_batch_size,
                                                         memory_size)

  def init_buffer(example_spec):
    return replay_lib.empty(example_spec, memory_size)

  def replay(buffer: ReplayBuffer, batch, rng, context: ReplayContext):
    del context
    sample_rng, insert_rng = jax.random.split(rng)
    # Drawn before the batch is stored, as the seed retrieves before
    # ``buffer.update``: a batch never replays itself.
    rows, valid = replay_lib.sample(
        buffer, sample_rng, replay_rows(replay_batch_size, batch,
                                        buffer.capacity))
    return mix(batch, rows, valid), store(buffer, batch, insert_rng, rows)

  return Strategy(name="er", init_buffer=init_buffer, replay=replay)
