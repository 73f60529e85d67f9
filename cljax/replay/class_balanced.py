r"""GDumb's greedy class-balanced insertion, jittable and batched.

Prabhu, Torr, Dokania, "GDumb: A Simple Approach that Questions Our Progress
in Continual Learning", ECCV 2020. The rule, read from
``agents/gdumb.py`` (``Gdumb.greedy_balancing_update``) of
RaptorMai/online-continual-learning, the code seed 001 builds on. For one
incoming example of class :math:`y`, with :math:`n_c` the number of stored
examples of class :math:`c`, :math:`K` the capacity and :math:`P` the number
of classes present in the memory (:math:`n_c > 0`):

.. math::
   k = \lfloor K / \max(1, P) \rfloor, \qquad
   \text{store} \iff n_y = 0 \ \lor\ n_y < k.

If it is stored and the memory is full, a uniformly random stored example of
the largest class :math:`\arg\max_c n_c` is replaced by it; otherwise it
takes the next free row. So the memory fills while it has room (up to the
per-class quota :math:`k`), and once full a class only grows at the expense
of the largest one. With two classes (genuine / fake) and both present,
:math:`k = \lfloor K/2 \rfloor` and a full memory ends within one example of
balance; with more classes the quota uses the classes present *before* the
new one arrives, so intermediate states can be unbalanced (the tests show a
case), exactly as in the official code.

Batched, sequential semantics: the rows of a batch are offered one after the
other with ``jax.lax.scan`` (each decision depends on the counts left by the
previous row), row :math:`i` drawing its random victim with
``jax.random.fold_in(rng, i)``; ``tests/replay/test_class_balanced.py``
checks the result against a pure-numpy sequential loop with the same draws.

Deviations from the official code, neither changing the distribution of
what is stored per class:

* The official memory is a dict of per-class lists (``pop(idx)`` then
  ``append``); here one flat array, the victim is replaced *in place*: the
  :math:`r`-th stored row of the largest class (row order), :math:`r \sim
  U\{0..n_{max}-1\}`.
* Ties for the largest class: the official ``max(dict.items())`` takes the
  class that entered the memory first; here the smallest label.

Example::

  buffer = cljax.replay.empty(spec, capacity=3000)
  buffer = insert(buffer, {"audio": audio, "label": label, "task": task},
                  rng, num_classes=2)
"""

from __future__ import annotations

from typing import Mapping

import chex
import jax
import jax.numpy as jnp

from cljax.replay.buffer import ReplayBuffer

__all__ = ["class_counts", "insert"]


def class_counts(buffer: ReplayBuffer, num_classes: int,
                 label_key: str = "label") -> jax.Array:
  """int32[num_classes]: stored examples of each class (filled rows only)."""
  labels = buffer.data[label_key]
  filled = jnp.arange(labels.shape[0]) < buffer.size
  return jnp.zeros((num_classes,), jnp.int32).at[labels].add(
      filled.astype(jnp.int32), mode="drop")


def insert(buffer: ReplayBuffer, batch: Mapping[str, jax.Array],
           rng: jax.Array, num_classes: int,
           mask: jax.Array | None = None,
           label_key: str = "label") -> ReplayBuffer:
  """Offers each row of ``batch`` to the memory by GDumb's greedy rule.

  Args:
    buffer: the memory; ``batch`` holds one array per field of
      ``buffer.data`` (extra entries ignored) with a leading batch axis.
    batch: the incoming examples; ``batch[label_key]`` int labels in
      ``[0, num_classes)``.
    rng: PRNG key of this batch (row ``i`` uses ``fold_in(rng, i)``).
    num_classes: the number of classes (static).
    mask: optional bool[B]; ``False`` rows are neither offered nor counted.
    label_key: the field holding the class.

  Returns:
    The memory after offering the rows in order; ``seen`` grows by the
    number of counted rows.
  """
  capacity = buffer.capacity
  missing = set(buffer.data) - set(batch)
  if missing:
    raise KeyError(f"The batch lacks the memory's fields {sorted(missing)}.")
  batch_size = batch[label_key].shape[0]
  for name, array in buffer.data.items():
    chex.assert_shape(batch[name], (batch_size, *array.shape[1:]))
  if mask is None:
    mask = jnp.ones((batch_size,), bool)
  chex.assert_shape(mask, (batch_size,))
  rows = {name: batch[name].astype(array.dtype)
          for name, array in buffer.data.items()}
  row_index = jnp.arange(capacity)

  def offer(carry, inputs):
    data, size, counts = carry
    example, counted, index = inputs
    label = example[label_key]
    present = jnp.sum(counts > 0)
    quota = capacity // jnp.maximum(present, 1)
    store = counted & ((counts[label] == 0) | (counts[label] < quota))
    full = size >= capacity
    largest = jnp.argmax(counts)  # First (smallest) label among ties.
    # The r-th stored row of the largest class, r ~ U{0..n_largest - 1}.
    r = jax.random.randint(jax.random.fold_in(rng, index), (), 0,
                           jnp.maximum(counts[largest], 1))
    is_largest = (data[label_key] == largest) & (row_index < size)
    rank = jnp.cumsum(is_largest) - 1
    victim = jnp.argmax(is_largest & (rank == r))
    slot = jnp.where(full, victim, size)
    slot = jnp.where(store, slot, capacity)  # capacity: dropped.
    data = {name: array.at[slot].set(example[name], mode="drop")
            for name, array in data.items()}
    counts = counts.at[label].add(store.astype(jnp.int32))
    counts = counts.at[largest].add(-(store & full).astype(jnp.int32))
    size = size + (store & ~full).astype(size.dtype)
    return (data, size, counts), None

  counts = class_counts(buffer, num_classes, label_key)
  (data, size, _), _ = jax.lax.scan(
      offer, (buffer.data, buffer.size, counts),
      (rows, mask.astype(bool), jnp.arange(batch_size)))
  seen = buffer.seen + jnp.sum(mask.astype(jnp.int32))
  return ReplayBuffer(data=data, size=size.astype(buffer.size.dtype),
                      seen=seen.astype(buffer.seen.dtype))
