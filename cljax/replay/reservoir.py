r"""Reservoir insertion: every example offered so far is kept with equal odds.

Vitter's *Algorithm R* ("Random sampling with a reservoir", ACM TOMS 1985),
applied example by example within a batch. The ``n``-th example offered to a
memory of capacity ``M`` (0-based over the whole stream, ``n = seen + i``
for the ``i``-th counted row of the batch) is

.. math::
   \text{slot}(n) = \begin{cases} n & n < M \\
     j \sim U\{0, \dots, n\},\ \text{if } j < M & n \ge M \\
     \text{dropped} & \text{otherwise,} \end{cases}

which leaves every one of the ``n + 1`` examples seen so far in the memory
with probability :math:`\min(1, M / (n + 1))`.

Two rows of one batch may draw the same slot. Sequential insertion lets the
later one overwrite the earlier; here each row's slot depends only on its
``n`` and its draw (never on the memory's content), so the batch is one
scatter in which a row is written only when no later row of the batch
targets the same slot — exactly the sequential result
(``tests/replay/test_reservoir.py`` checks it against a pure-Python
sequential loop fed the same draws).

Seed 001 (RaptorMai/online-continual-learning,
``utils/buffer/reservoir_update.py``, read for this file) approximates this:
it fills the free slots, then draws every remaining row of the batch from
``U[0, n_seen)`` with ``n_seen`` frozen at the batch start and resolves
collisions through a dict (last wins). cljax uses the exact algorithm; the
two agree in distribution up to that per-batch approximation.

Example::

  buffer = cljax.replay.empty(spec, capacity=5000)
  buffer = insert(buffer, {"audio": audio, "label": label, "task": task}, rng)
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp

from cljax.replay.buffer import ReplayBuffer

__all__ = ["draw_slots", "insert"]


def draw_slots(rng: jax.Array, offered: jax.Array, capacity: int
               ) -> jax.Array:
  """Algorithm R's slot for the examples numbered ``offered`` (int32[B]).

  Returns int32[B]: the slot in ``[0, capacity)`` each example goes to, or
  ``capacity`` where it is dropped. Draws ``j ~ U{0..n}`` for every row
  (also those still filling the memory, whose draw is unused) so that the
  random stream does not depend on how full the memory is.
  """
  chex.assert_rank(offered, 1)
  draws = jax.random.randint(rng, offered.shape, 0, offered + 1,
                             dtype=jnp.int32)
  slots = jnp.where(offered < capacity, offered, draws)
  return jnp.where(slots < capacity, slots, capacity).astype(jnp.int32)


def _after(reads: Any, slots: jax.Array, capacity: int) -> jax.Array:
  """``slots``, made data-dependent on ``reads`` (values are unchanged).

  XLA (measured on CPU, jax 0.10.2) does not order a read of the memory
  (the rows a step replays) before an independent in-place scatter into it,
  so it copies the whole memory each step: 0.5 s for 5000 two-second clips,
  against 2 ms with this dependency. The flag is false unless a read value is
  NaN, in which case nothing is stored this step (the loss is NaN anyway and
  the loop stops).
  """
  firsts = [jnp.ravel(leaf)[:1].astype(jnp.float32)
            for leaf in jax.tree.leaves(reads)]
  if not firsts:
    return slots
  never = jnp.any(jnp.isnan(jnp.concatenate(firsts)))
  return jnp.where(never, capacity, slots)


def insert(buffer: ReplayBuffer, batch: Mapping[str, jax.Array],
           rng: jax.Array, mask: jax.Array | None = None,
           after: Any = None) -> ReplayBuffer:
  """Offers each row of ``batch`` to the memory, in order; jittable.

  Args:
    buffer: the memory; ``batch`` must hold one array per field of
      ``buffer.data`` (extra entries are ignored), with a leading batch axis.
    batch: the incoming examples.
    rng: a PRNG key for this batch's draws.
    mask: optional bool[B]; rows with ``False`` (padding) are neither
      offered nor counted in ``seen``.
    after: optional pytree of arrays read from this memory earlier in the
      same jitted step (the replayed rows); the overwrite is ordered after
      them so the memory is updated in place instead of copied.

  Returns:
    The memory after sequential Algorithm R over the counted rows, with
    ``seen`` increased by their number and ``size = min(capacity, seen)``.
  """
  capacity = buffer.capacity
  missing = set(buffer.data) - set(batch)
  if missing:
    raise KeyError(f"The batch lacks the memory's fields {sorted(missing)}.")
  batch_size = batch[next(iter(buffer.data))].shape[0]
  for name, array in buffer.data.items():
    chex.assert_shape(batch[name], (batch_size, *array.shape[1:]))
  if mask is None:
    mask = jnp.ones((batch_size,), bool)
  chex.assert_shape(mask, (batch_size,))
  mask = mask.astype(bool)
  counted = mask.astype(jnp.int32)
  # n of each counted row: the examples offered before it, in stream order.
  offered = buffer.seen + jnp.cumsum(counted) - counted
  slots = draw_slots(rng, offered, capacity)
  slots = jnp.where(mask, slots, capacity)
  # A row is overwritten by any later row of the batch aiming at its slot;
  # only the last writer of each slot is scattered (duplicate indices in one
  # scatter have no defined order).
  later = jnp.arange(batch_size)[None, :] > jnp.arange(batch_size)[:, None]
  same_slot = (slots[None, :] == slots[:, None]) & (slots[None, :] < capacity)
  overwritten = jnp.any(later & same_slot, axis=1)
  targets = jnp.where(overwritten, capacity, slots)
  if after is not None:
    targets = _after(after, targets, capacity)
  data = {name: array.at[targets].set(batch[name].astype(array.dtype),
                                      mode="drop")
          for name, array in buffer.data.items()}
  seen = buffer.seen + counted.sum()
  size = jnp.minimum(seen, capacity).astype(buffer.size.dtype)
  return ReplayBuffer(data=data, size=size, seen=seen.astype(buffer.seen.dtype))
