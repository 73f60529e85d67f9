"""Reservoir insertion: sequential Algorithm R, uniformity, bookkeeping."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from cljax import replay
from cljax.io.checkpoints import Checkpointer
from cljax.replay import reservoir
from cljax.state import create_train_state

ID_SPEC = {"id": jax.ShapeDtypeStruct((), jnp.int32),
           "audio": jax.ShapeDtypeStruct((3,), jnp.int16)}


def _batch(ids):
  ids = np.asarray(ids, np.int32)
  return {"id": jnp.asarray(ids),
          "audio": jnp.asarray(np.stack([ids, -ids, 2 * ids], 1), jnp.int16)}


def _sequential_reference(memory, seen, ids, mask, rng, capacity):
  """Algorithm R one example at a time, in Python, with the module's draws.

  The draws are ``randint(rng, [B], 0, n + 1)`` with ``n`` the stream index
  of each row (the documented contract of ``draw_slots``); everything else —
  the stream numbering with padding rows skipped, the placement, the
  overwrites in order — is done here independently of the module.
  """
  offered, n = [], seen
  for counted in mask:
    offered.append(n)
    n += int(counted)
  draws = np.asarray(jax.random.randint(
      rng, (len(ids),), 0, jnp.asarray(offered, jnp.int32) + 1,
      dtype=jnp.int32))
  memory = list(memory)
  for example, counted, stream_index, draw in zip(ids, mask, offered, draws):
    if not counted:
      continue
    if stream_index < capacity:
      memory[stream_index] = example
    elif draw < capacity:
      memory[draw] = example
  return memory, n


class ReservoirTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_batched_insertion_equals_sequential_algorithm_r(self):
    capacity, batch_size = 4, 16
    insert = self.variant(reservoir.insert)
    buffer = replay.empty(ID_SPEC, capacity)
    memory, seen = [0] * capacity, 0
    rng = np.random.default_rng(0)
    collisions = 0
    for step in range(12):
      ids = 1 + step * batch_size + np.arange(batch_size)
      mask = rng.random(batch_size) < 0.8
      key = jax.random.PRNGKey(step)
      buffer = insert(buffer, _batch(ids), key, jnp.asarray(mask))
      memory, seen = _sequential_reference(memory, seen, ids, mask, key,
                                           capacity)
      np.testing.assert_array_equal(buffer.data["id"], memory)
      np.testing.assert_array_equal(buffer.data["audio"][:, 1],
                                    -np.asarray(memory))
      assert int(buffer.seen) == seen
      assert int(buffer.size) == min(seen, capacity)
      before = seen - int(mask.sum())
      offered = before + np.cumsum(mask) - mask
      slots = np.asarray(reservoir.draw_slots(
          key, jnp.asarray(offered, jnp.int32), capacity))
      kept = slots[mask & (slots < capacity)]
      collisions += len(kept) - len(set(kept.tolist()))
    # The case the scatter must resolve (later row wins) did occur.
    assert collisions > 0

  def test_size_and_seen_bookkeeping_and_mask(self):
    buffer = replay.empty(ID_SPEC, 5)
    buffer = reservoir.insert(buffer, _batch([10, 11, 12]),
                              jax.random.PRNGKey(0))
    assert (int(buffer.size), int(buffer.seen)) == (3, 3)
    np.testing.assert_array_equal(buffer.data["id"], [10, 11, 12, 0, 0])
    # Padding rows are neither stored nor counted: 20 and 22 are.
    buffer = reservoir.insert(buffer, _batch([20, 99, 22, 98]),
                              jax.random.PRNGKey(1),
                              mask=jnp.array([True, False, True, False]))
    assert (int(buffer.size), int(buffer.seen)) == (5, 5)
    np.testing.assert_array_equal(buffer.data["id"], [10, 11, 12, 20, 22])
    buffer = reservoir.insert(buffer, _batch([30, 31, 32, 33]),
                              jax.random.PRNGKey(2))
    assert (int(buffer.size), int(buffer.seen)) == (5, 9)
    assert not {98, 99} & set(np.asarray(buffer.data["id"]).tolist())
    # An all-padding batch changes nothing.
    again = reservoir.insert(buffer, _batch([40, 41]), jax.random.PRNGKey(3),
                             mask=jnp.zeros(2, bool))
    chex.assert_trees_all_equal(again, buffer)

  def test_a_batch_missing_a_field_is_an_error(self):
    buffer = replay.empty(ID_SPEC, 5)
    with pytest.raises(KeyError, match="audio"):
      reservoir.insert(buffer, {"id": jnp.arange(3)}, jax.random.PRNGKey(0))


def test_every_example_is_kept_with_probability_capacity_over_n():
  """Stream 1000 ids through a memory of 100, 2000 independent times.

  Each id's inclusion count ``c_i`` over ``R`` runs is exactly
  Binomial(R, p) with p = 100/1000 under Algorithm R, so
  ``X = sum_i (c_i - R p)^2 / (R p (1 - p))`` has mean 1000 and is close to
  chi-square with 999 degrees of freedom (the counts sum to ``100 R``); the
  bound is its 1 - 1e-6 quantile. Per id, the normal approximation with a
  Bonferroni correction over the 1000 ids at the same level bounds the
  largest deviation of the frequency from p.
  """
  capacity, stream, batch_size, runs = 100, 1000, 50, 2000
  ids = jnp.arange(stream, dtype=jnp.int32).reshape(-1, batch_size)
  spec = {"id": jax.ShapeDtypeStruct((), jnp.int32)}

  def one_run(key):
    def step(buffer, inputs):
      batch_ids, step_key = inputs
      return reservoir.insert(buffer, {"id": batch_ids}, step_key), None
    keys = jax.random.split(key, ids.shape[0])
    buffer, _ = jax.lax.scan(step, replay.empty(spec, capacity), (ids, keys))
    return jnp.zeros(stream, jnp.int32).at[buffer.data["id"]].add(1)

  counts = np.asarray(jax.jit(jax.vmap(one_run))(
      jax.random.split(jax.random.PRNGKey(0), runs)).sum(0))
  assert counts.sum() == capacity * runs  # Full memory, distinct ids.
  p = capacity / stream
  statistic = np.sum((counts - runs * p) ** 2 / (runs * p * (1 - p)))
  assert statistic < stats.chi2.ppf(1 - 1e-6, stream - 1)  # ~1235
  z = stats.norm.ppf(1 - 1e-6 / (2 * stream))
  max_deviation = np.abs(counts / runs - p).max()
  assert max_deviation < z * np.sqrt(p * (1 - p) / runs)  # ~0.041
  # The first and last batches of the stream are not favoured.
  first, last = counts[:batch_size].mean(), counts[-batch_size:].mean()
  sd_of_mean = np.sqrt(runs * p * (1 - p) / batch_size)
  assert abs(first - runs * p) < 5 * sd_of_mean
  assert abs(last - runs * p) < 5 * sd_of_mean


def test_a_memory_that_never_fills_keeps_everything_in_order():
  buffer = replay.empty(ID_SPEC, 64)
  for step in range(5):
    buffer = reservoir.insert(buffer, _batch(100 + 8 * step + np.arange(8)),
                              jax.random.PRNGKey(step))
  assert int(buffer.size) == int(buffer.seen) == 40
  np.testing.assert_array_equal(buffer.data["id"][:40], 100 + np.arange(40))
  np.testing.assert_array_equal(buffer.data["id"][40:], 0)


def test_buffer_round_trips_through_an_orbax_checkpoint(tmp_path):
  params = {"w": jnp.arange(3.0)}
  tx = optax.sgd(0.1)
  buffer = replay.empty(ID_SPEC, 6)
  for step in range(3):
    buffer = reservoir.insert(buffer, _batch(1 + 4 * step + np.arange(4)),
                              jax.random.PRNGKey(step))
  state = create_train_state(params=params, batch_stats={}, tx=tx,
                             strategy_state={}, rng=jax.random.PRNGKey(0),
                             buffer=buffer)
  checkpointer = Checkpointer(str(tmp_path))
  checkpointer.save(state, {"step": 3})
  checkpointer.wait()
  template = create_train_state(params=params, batch_stats={}, tx=tx,
                                strategy_state={}, rng=jax.random.PRNGKey(0),
                                buffer=replay.empty(ID_SPEC, 6))
  restored, progress = checkpointer.restore(template)
  checkpointer.close()
  assert progress["step"] == 3
  assert isinstance(restored.buffer, replay.ReplayBuffer)
  chex.assert_trees_all_equal(restored.buffer, buffer)
  assert restored.buffer.data["audio"].dtype == jnp.int16
  # Insertion continues from the restored memory exactly as from the saved.
  key = jax.random.PRNGKey(9)
  chex.assert_trees_all_equal(
      reservoir.insert(restored.buffer, _batch([50, 51, 52]), key),
      reservoir.insert(buffer, _batch([50, 51, 52]), key))


def test_ordering_after_earlier_reads_changes_no_value():
  buffer = reservoir.insert(replay.empty(ID_SPEC, 4), _batch(np.arange(1, 7)),
                            jax.random.PRNGKey(0))
  reads = replay.gather(buffer, jnp.array([0, 2]))
  key = jax.random.PRNGKey(1)
  chex.assert_trees_all_equal(
      jax.jit(lambda b: reservoir.insert(b, _batch([7, 8, 9]), key,
                                         after=reads))(buffer),
      reservoir.insert(buffer, _batch([7, 8, 9]), key))
