"""GDumb: schedule, zero stream updates, fresh retraining on memory, loop."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import registry
from cljax.replay import class_balanced
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.gdumb import (gdumb_learning_rates, make,
                                    memory_optimizer, train_on_memory,
                                    _memory_step_fn)
from run_helpers import run_small_config


class _TinyBN(nn.Module):
  """Dense -> BatchNorm -> tanh -> classifier: params and batch_stats."""

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.Dense(6, name="hidden")(x)
    h = nn.BatchNorm(use_running_average=not train, name="bn")(h)
    h = nn.tanh(h)
    return nn.Dense(2, name="classifier")(h), h


def _frontend(audio):
  return audio.astype(jnp.float32)


def _spec():
  return {"audio": jax.ShapeDtypeStruct((4,), jnp.float32),
          "label": jax.ShapeDtypeStruct((), jnp.int32),
          "task": jax.ShapeDtypeStruct((), jnp.int32)}


def _setup(memory_size=12, init_seed=0, **fields):
  model = _TinyBN()
  fields = {"epochs": 3, "batch_size": 4, **fields}
  strategy = make(StrategyContext(model=model, num_classes=2, num_tasks=2,
                                  frontend=_frontend),
                  memory_size=memory_size, **fields)
  variables = model.init(jax.random.PRNGKey(init_seed), jnp.zeros((1, 4)))
  tx = optax.chain(strategy.tx, optax.adam(1e-2))
  state = create_train_state(
      params=variables["params"], batch_stats=variables["batch_stats"], tx=tx,
      strategy_state={}, rng=jax.random.PRNGKey(7),
      buffer=strategy.init_buffer(_spec()))
  return model, strategy, state


def _fill(strategy, state, labels, seed=0, task=0):
  gen = np.random.default_rng(seed)
  labels = np.asarray(labels, np.int32)
  audio = gen.normal(size=(len(labels), 4)).astype(np.float32)
  audio[:, 0] += np.where(labels == 0, 2.0, -2.0)
  batch = {"audio": jnp.asarray(audio), "label": jnp.asarray(labels),
           "task": jnp.full(len(labels), task, jnp.int32)}
  out, buffer = strategy.replay(state.buffer, batch, jax.random.PRNGKey(seed),
                                None)
  # The batch passes unchanged (task_class adds the group it balanced by).
  chex.assert_trees_all_equal({k: out[k] for k in batch}, batch)
  return state.replace(buffer=buffer)


def _task(model, task_id=0):
  return TaskContext(task_id=task_id, task_name="t", num_tasks=2, model=model,
                     frontend=_frontend, batches=lambda s, i: [])


def test_learning_rates_follow_the_official_warm_restart_schedule():
  # Warm start 0.1, then max, then SGDR(T_0=1, T_mult=2) stepped per epoch:
  # restarts at epochs 2, 4, 8; cos(pi/2) -> .5, cos(pi/4) -> .8536 ...
  rates = gdumb_learning_rates(10, 1.0, 0.0)
  c = lambda t: 0.5 * (1 + np.cos(np.pi * t))  # noqa: E731
  np.testing.assert_allclose(
      rates, [0.1, 1, 1, c(1 / 2), 1, c(1 / 4), c(2 / 4), c(3 / 4), 1,
              c(1 / 8)], rtol=1e-12)
  np.testing.assert_allclose(gdumb_learning_rates(4, 0.05, 0.0005),
                             [0.005, 0.05, 0.05, 0.02525])


@pytest.mark.parametrize("base", [optax.adam(1e-2), optax.sgd(0.1, 0.9)])
def test_stream_updates_are_exactly_zero_through_the_chain(base):
  _, strategy, state = _setup()
  tx = optax.chain(strategy.tx, base)
  opt_state = tx.init(state.params)
  for seed in range(3):
    grads = jax.tree.map(lambda p: jax.random.normal(
        jax.random.PRNGKey(seed), p.shape), state.params)
    updates, opt_state = tx.update(grads, opt_state, state.params)
    for leaf in jax.tree.leaves(updates):
      np.testing.assert_array_equal(leaf, 0.0)


def test_end_task_does_not_depend_on_the_params_before_it():
  model, strategy, state_a = _setup(init_seed=0)
  _, _, state_b = _setup(init_seed=1)
  state_b = state_b.replace(batch_stats=jax.tree.map(
      lambda s: s + 3.0, state_b.batch_stats))
  state_a = _fill(strategy, state_a, [0, 1] * 6)
  state_b = state_b.replace(buffer=state_a.buffer)
  assert not np.allclose(state_a.params["hidden"]["kernel"],
                         state_b.params["hidden"]["kernel"])
  out_a = strategy.end_task(state_a, _task(model))
  out_b = strategy.end_task(state_b, _task(model))
  chex.assert_trees_all_close(out_a.params, out_b.params, rtol=1e-6)
  chex.assert_trees_all_close(out_a.batch_stats, out_b.batch_stats,
                              rtol=1e-6)
  # And it is: model.init with the derived key, then training on memory.
  key = jax.random.fold_in(state_a.rng, 0)
  init_key, train_key = jax.random.split(key)
  params_key, dropout_key = jax.random.split(init_key)
  fresh = model.init({"params": params_key, "dropout": dropout_key},
                     jnp.zeros((1, 4)), train=False)
  tx = memory_optimizer(10.0, 1e-6, 0.9)
  trained, losses = train_on_memory(
      _memory_step_fn(model, _frontend, tx), tx, dict(fresh),
      state_a.buffer, train_key, epochs=3, batch_size=4,
      learning_rates=gdumb_learning_rates(3, 0.05, 0.0005))
  chex.assert_trees_all_close(out_a.params, trained["params"], rtol=1e-6)
  assert len(losses) == 3 * (12 // 4)
  # Training moved it away from the fresh init.
  assert not np.allclose(out_a.params["hidden"]["kernel"],
                         fresh["params"]["hidden"]["kernel"])


def test_training_on_memory_learns_the_memory():
  model, strategy, state = _setup(memory_size=40, epochs=10)
  state = _fill(strategy, state, [0, 1] * 20, seed=3)
  state = strategy.end_task(state, _task(model))
  logits, _ = model.apply(state.variables, state.buffer.data["audio"])
  accuracy = np.mean(np.argmax(logits, -1) == state.buffer.data["label"])
  assert accuracy >= 0.9


def test_memory_with_one_class_trains_to_predict_it():
  model, strategy, state = _setup(memory_size=12, epochs=5)
  state = _fill(strategy, state, [1] * 12)
  np.testing.assert_array_equal(
      class_balanced.class_counts(state.buffer, 2), [0, 12])
  state = strategy.end_task(state, _task(model))
  logits, _ = model.apply(state.variables, state.buffer.data["audio"])
  np.testing.assert_array_equal(np.argmax(logits, -1), 1)


def test_empty_memory_gives_the_fresh_model_and_tiny_memory_one_batch():
  model, strategy, state = _setup(batch_size=8)
  out = strategy.end_task(state, _task(model))
  key = jax.random.split(jax.random.fold_in(state.rng, 0))[0]
  params_key, dropout_key = jax.random.split(key)
  fresh = model.init({"params": params_key, "dropout": dropout_key},
                     jnp.zeros((1, 4)), train=False)
  chex.assert_trees_all_equal(out.params, fresh["params"])
  # 3 examples < batch 8: one batch of 3 per epoch (no crash, it trains).
  state = _fill(strategy, state, [0, 1, 0])
  out = strategy.end_task(state, _task(model))
  assert not np.allclose(out.params["hidden"]["kernel"],
                         fresh["params"]["hidden"]["kernel"])


def test_replay_inserts_class_balanced():
  _, strategy, state = _setup(memory_size=6)
  state = _fill(strategy, state, [0] * 10 + [1] * 2)
  np.testing.assert_array_equal(
      class_balanced.class_counts(state.buffer, 2), [4, 2])
  assert int(state.buffer.seen) == 12


def test_class_balance_freezes_a_recurring_class_stream_task_class_does_not():
  """Classes recur in every task: GDumb's rule keeps task 0 only."""
  for balance_by, expected_tasks in (("class", [8, 0]),
                                     ("task_class", [4, 4])):
    _, strategy, state = _setup(memory_size=8, balance_by=balance_by)
    state = _fill(strategy, state, [0, 1] * 6, seed=0, task=0)
    state = _fill(strategy, state, [0, 1] * 6, seed=1, task=1)
    buffer = state.buffer
    filled = np.asarray(buffer.data["task"])[:int(buffer.size)]
    labels = np.asarray(buffer.data["label"])[:int(buffer.size)]
    assert np.bincount(filled, minlength=2).tolist() == expected_tasks, (
        balance_by)
    assert np.bincount(labels, minlength=2).tolist() == [4, 4]


@pytest.mark.parametrize("fields, name", [
    ({"balance_by": "task"}, "balance_by"),
    ({"memory_size": 0}, "memory_size"),
    ({"memory_size": -1}, "memory_size"),
    ({"epochs": -1}, "epochs"),
    ({"clip": 0.0}, "clip"),
    ({"min_lr": 1.0, "learning_rate": 0.1}, "min_lr")])
def test_bad_fields_are_config_errors(fields, name):
  context = StrategyContext(model=_TinyBN(), num_classes=2, num_tasks=2,
                            frontend=_frontend)
  with pytest.raises(registry.ConfigError, match=name):
    make(context, **fields)


def test_the_loop_runs_gdumb_small_end_to_end(tmp_path):
  run_small_config("gdumb_audio", str(tmp_path / "run"))


