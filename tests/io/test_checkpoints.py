"""Orbax checkpoints of the TrainState and the progress record."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from cljax.io.checkpoints import Checkpointer, restore_variables
from cljax.state import create_train_state


def _state(value: float):
  params = {"dense": {"kernel": jnp.full((3, 2), value), "bias": jnp.zeros(2)}}
  return create_train_state(params=params, batch_stats={"mean": jnp.ones(2)},
                            tx=optax.adam(1e-3), strategy_state={},
                            rng=jax.random.PRNGKey(0))


def test_progress_is_frozen_when_saved(tmp_path):
  checkpointer = Checkpointer(str(tmp_path))
  progress = {"step": 100, "task": 1, "task_step": 20, "iterator": {"i": 3}}
  checkpointer.save(_state(1.0), progress)
  # The loop goes on mutating its dict while the async save runs.
  progress["step"] += 1
  progress["task_step"] += 1
  progress["iterator"]["i"] = 4
  checkpointer.wait()
  _, restored = checkpointer.restore(_state(0.0))
  assert restored == {"step": 100, "task": 1, "task_step": 20,
                      "iterator": {"i": 3}}
  checkpointer.close()


def test_state_round_trips_and_task_ends_are_kept(tmp_path):
  checkpointer = Checkpointer(str(tmp_path), keep_latest=1)
  for step, value in ((5, 1.0), (10, 2.0), (15, 3.0)):
    checkpointer.save(_state(value), {"step": step, "task": 0},
                      task_end=0 if step == 10 else None)
  checkpointer.wait()
  assert checkpointer.latest_step() == 15
  state, progress = checkpointer.restore(_state(0.0))
  chex.assert_trees_all_close(state.params, _state(3.0).params)
  state, progress = checkpointer.restore(_state(0.0), task=0)
  assert progress["step"] == 10
  chex.assert_trees_all_close(state.params, _state(2.0).params)
  chex.assert_trees_all_close(state.opt_state, _state(2.0).opt_state)
  with pytest.raises(FileNotFoundError, match="saved task ends: \\[0\\]"):
    checkpointer.restore(_state(0.0), task=3)
  with pytest.raises(FileNotFoundError, match="saved steps: \\[15\\]"):
    checkpointer.restore(_state(0.0), step=5)  # Only the newest is kept.
  checkpointer.close()
  variables = restore_variables(str(tmp_path))
  chex.assert_trees_all_close(variables["params"], _state(3.0).params)
  chex.assert_trees_all_close(variables["batch_stats"], {"mean": jnp.ones(2)})
  with pytest.raises(FileNotFoundError, match="config.init_from"):
    restore_variables(str(tmp_path / "nowhere"))
