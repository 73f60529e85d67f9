"""ER-BCE (seed 001's "ICARL"): past-only retrieval, BCE, NCM, the loop."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import registry
from cljax import replay
from cljax.replay import reservoir
from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.er_bce import make, sample_past
from cljax.strategies.icarl import nme_logits, sigmoid_bce
from run_helpers import run_small_config


def _spec():
  return {"audio": jax.ShapeDtypeStruct((3,), jnp.float32),
          "label": jax.ShapeDtypeStruct((), jnp.int32),
          "task": jax.ShapeDtypeStruct((), jnp.int32)}


def _batch(task, labels, start=0.0):
  n = len(labels)
  ids = jnp.arange(n, dtype=jnp.float32) + start
  return {"audio": jnp.stack([ids, ids, ids], 1),
          "label": jnp.asarray(labels, jnp.int32),
          "task": jnp.full((n,), task, jnp.int32)}


def _strategy(**fields):
  model = MLP(num_classes=2, hidden_sizes=())
  context = StrategyContext(model=model, num_classes=2, num_tasks=2,
                            frontend=lambda a: a.astype(jnp.float32))
  return model, make(context, **fields)


class SamplePastTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_rows_of_the_current_task_are_never_drawn(self):
    buffer = replay.empty(_spec(), 10)
    buffer = reservoir.insert(buffer, _batch(0, [0, 1, 0], 0.0),
                                     jax.random.PRNGKey(0))
    buffer = reservoir.insert(buffer, _batch(1, [1, 1, 0, 0], 10.0),
                                     jax.random.PRNGKey(1))
    for seed in range(5):
      rows, valid = self.variant(sample_past, static_argnums=2)(
          buffer, jax.random.PRNGKey(seed), 5, jnp.asarray(1))
      # Only the 3 rows of task 0 are eligible: 3 valid, distinct.
      np.testing.assert_array_equal(valid, [True] * 3 + [False] * 2)
      np.testing.assert_array_equal(rows["task"][:3], 0)
      assert sorted(np.asarray(rows["audio"][:3, 0]).tolist()) == [0, 1, 2]


def test_first_task_trains_on_the_incoming_batch_only():
  _, strategy = _strategy(memory_size=8)
  buffer = strategy.init_buffer(_spec())
  batch = _batch(0, [0, 1, 1, 0])
  mixed, buffer = strategy.replay(buffer, batch, jax.random.PRNGKey(0), None)
  np.testing.assert_allclose(mixed["weight"], [0.25] * 4 + [0.0] * 4)
  assert int(buffer.size) == 4  # Stored after being drawn from.
  # Same task again: its own rows are excluded, still no replay.
  mixed, buffer = strategy.replay(buffer, _batch(0, [1, 1, 0, 0], 4.0),
                                  jax.random.PRNGKey(1), None)
  np.testing.assert_allclose(mixed["weight"][4:], 0.0)
  # Next task: 4 replayed rows of task 0, one mean over all 8 rows.
  mixed, buffer = strategy.replay(buffer, _batch(1, [0, 1, 0, 1], 20.0),
                                  jax.random.PRNGKey(2), None)
  np.testing.assert_allclose(mixed["weight"], np.full(8, 1 / 8))
  np.testing.assert_array_equal(mixed["task"], [1] * 4 + [0] * 4)


def test_classification_loss_is_summed_sigmoid_bce_on_one_hot():
  _, strategy = _strategy()
  logits = jnp.array([[0.3, -1.2], [2.0, 0.5]])
  labels = jnp.array([1, 0])
  expected = [
      -np.log(1 - 1 / (1 + np.exp(-0.3))) - np.log(1 / (1 + np.exp(1.2))),
      -np.log(1 / (1 + np.exp(-2.0))) - np.log(1 - 1 / (1 + np.exp(-0.5)))]
  np.testing.assert_allclose(strategy.classification_loss(logits, labels, {}),
                             expected, rtol=1e-5)
  np.testing.assert_allclose(expected, sigmoid_bce(
      logits, jax.nn.one_hot(labels, 2)), rtol=1e-5)


def test_end_task_builds_class_means_over_the_whole_memory():
  model, strategy = _strategy(memory_size=6)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
  buffer = strategy.init_buffer(_spec())
  gen = np.random.default_rng(0)
  audio = gen.normal(size=(5, 3)).astype(np.float32)
  batch = {"audio": jnp.asarray(audio), "label": jnp.array([0, 0, 1, 1, 1]),
           "task": jnp.zeros(5, jnp.int32)}
  buffer = reservoir.insert(buffer, batch, jax.random.PRNGKey(0))
  state = create_train_state(
      params=variables["params"], batch_stats={}, tx=optax.sgd(0.1),
      strategy_state=strategy.init_state(variables),
      rng=jax.random.PRNGKey(1), buffer=buffer)
  context = TaskContext(task_id=0, task_name="a", num_tasks=2, model=model,
                        frontend=lambda a: a, batches=lambda s, i: [])
  state = strategy.end_task(state, context)
  unit = audio / np.linalg.norm(audio, axis=1, keepdims=True)
  means = np.stack([unit[:2].mean(0), unit[2:].mean(0)])
  means /= np.linalg.norm(means, axis=1, keepdims=True)
  np.testing.assert_allclose(state.strategy_state["class_means"], means,
                             rtol=1e-5)
  queries = jnp.asarray(gen.normal(size=(4, 3)), jnp.float32)
  logits, embedding = model.apply(state.variables, queries)
  np.testing.assert_allclose(
      strategy.eval_logits(state.strategy_state, state.buffer, logits,
                           embedding),
      nme_logits(queries, jnp.asarray(means), jnp.array([True, True])),
      rtol=1e-5)


def test_logits_classifier_has_no_end_task():
  _, strategy = _strategy(classifier="logits")
  assert strategy.end_task is None and strategy.eval_logits is None


@pytest.mark.parametrize("fields, name", [
    ({"memory_size": 0}, "memory_size"),
    ({"memory_size": -2}, "memory_size"),
    ({"classifier": "svm"}, "classifier"),
    ({"replay_batch_size": 10, "memory_size": 5}, "replay_batch_size")])
def test_bad_fields_are_config_errors(fields, name):
  with pytest.raises(registry.ConfigError, match=name):
    _strategy(**fields)


def test_the_loop_runs_er_bce_small_end_to_end(tmp_path):
  run_small_config("er_bce_audio", str(tmp_path / "run"))
