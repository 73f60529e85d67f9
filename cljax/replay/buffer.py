"""A fixed-capacity replay memory as a pytree of device arrays.

Every field of a training example (``audio``, ``label``, ``task``) gets one
array with a leading ``capacity`` axis, allocated once, so the memory's shape
never changes and every operation on it is jittable: insertion policies
(``reservoir``, ``class_balanced``) scatter into it, ``sample`` gathers from
it. The buffer lives in ``TrainState.buffer`` and is therefore replicated on
the mesh and saved and restored with every checkpoint.

Example::

  spec = {"audio": jax.ShapeDtypeStruct((32000,), jnp.int16),
          "label": jax.ShapeDtypeStruct((), jnp.int32)}
  buffer = empty(spec, capacity=5000)
  batch, valid = sample(buffer, rng, 32)   # valid[i]: row i is a real example
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cljax import registry


class ReplayBuffer(NamedTuple):
  """Attributes:

  data: ``{field: array[capacity, ...]}``; rows ``>= size`` are unused.
  size: int32 scalar, the number of filled rows.
  seen: int32 scalar, how many examples were offered to the memory so far
    (reservoir sampling's ``n``; class-balanced insertion counts too).
  """

  data: dict[str, jax.Array]
  size: jax.Array
  seen: jax.Array

  @property
  def capacity(self) -> int:
    return int(jax.tree.leaves(self.data)[0].shape[0])


def check_capacity(capacity: Any, field: str = "strategy.memory_size") -> int:
  """``capacity`` as a positive int, else a ConfigError naming ``field``."""
  if (isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer))
      or capacity <= 0):
    raise registry.ConfigError(
        f"config.{field}={capacity!r}: a replay memory needs a positive "
        "integer number of examples (the seeds use 5000 for ER/MIR/iCaRL "
        "and 3000 for GDumb).")
  return int(capacity)


def check_replay_batch_size(value: Any, memory_size: int,
                            field: str = "strategy.replay_batch_size"
                            ) -> int | None:
  """``None`` or a positive int no larger than the memory, else ConfigError."""
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise registry.ConfigError(
        f"config.{field}={value!r}: expected a positive integer (rows "
        "replayed per step) or None for the incoming batch size.")
  if value > memory_size:
    raise registry.ConfigError(
        f"config.{field}={value} exceeds config.strategy.memory_size="
        f"{memory_size}: a step cannot replay more distinct rows than the "
        "memory holds. Lower it or enlarge the memory.")
  return value


def empty(spec: Mapping[str, jax.ShapeDtypeStruct], capacity: int
          ) -> ReplayBuffer:
  """An empty memory for examples shaped like ``spec`` (one example each)."""
  capacity = check_capacity(capacity)
  data = {name: jnp.zeros((capacity, *s.shape), s.dtype)
          for name, s in spec.items()}
  return ReplayBuffer(data=data, size=jnp.zeros((), jnp.int32),
                      seen=jnp.zeros((), jnp.int32))


def example_spec(batch: Mapping[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
  """The per-example spec of a batch (drops the leading batch axis)."""
  return {name: jax.ShapeDtypeStruct(value.shape[1:], value.dtype)
          for name, value in batch.items()}


def is_buffer(node: Any) -> bool:
  return isinstance(node, ReplayBuffer)


def nbytes(tree: Any) -> int:
  """Bytes held by every ReplayBuffer's example arrays inside ``tree``."""
  total = 0
  for node in jax.tree.leaves(tree, is_leaf=is_buffer):
    if is_buffer(node):
      total += sum(int(np.prod(a.shape)) * a.dtype.itemsize
                   for a in jax.tree.leaves(node.data))
  return total


def gather(buffer: ReplayBuffer, indices: jax.Array) -> dict[str, jax.Array]:
  """Rows ``indices`` of every field."""
  return {name: jnp.take(array, indices, axis=0)
          for name, array in buffer.data.items()}


def sample(buffer: ReplayBuffer, rng: jax.Array, num: int
           ) -> tuple[dict[str, jax.Array], jax.Array]:
  """``num`` distinct filled rows drawn uniformly, and which rows are real.

  Without replacement, as the seeds' random retrieval: while the memory holds
  fewer than ``num`` examples, the extra rows repeat row 0 and are marked
  ``valid=False`` (weight them out of any loss).
  """
  chex.assert_rank(buffer.size, 0)
  capacity = buffer.capacity
  if num > capacity:
    raise ValueError(f"Cannot sample {num} rows from a memory of "
                     f"{capacity}.")
  filled = jnp.arange(capacity) < buffer.size
  keys = jnp.where(filled, jax.random.uniform(rng, (capacity,)), -1.0)
  _, indices = jax.lax.top_k(keys, num)
  valid = jnp.arange(num) < buffer.size
  indices = jnp.where(valid, indices, 0)
  return gather(buffer, indices), valid
