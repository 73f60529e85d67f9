"""LwF: the task-index weighting, its loss against numpy, the loop."""

from __future__ import annotations

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from cli_helpers import run_cli
from cljax import registry
from cljax.models import MLP
from cljax.strategies import StrategyContext, TaskContext
from cljax.strategies import _teacher
from cljax.strategies.lwf import make, task_weights


class TaskWeightsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_seed_001_weights_one_over_t_plus_one(self):
    weights = self.variant(task_weights, static_argnums=(1, 2, 3))
    for t, (ce, kd) in enumerate([(1, 0), (1 / 2, 1 / 2), (1 / 3, 2 / 3),
                                  (1 / 4, 3 / 4)]):
      got = weights(jnp.float32(t), "task_index", 2.0, 8)
      np.testing.assert_allclose(got, (ce, kd), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_evda_linear_schedule_reaches_two_on_the_eighth_task(self):
    weights = self.variant(task_weights, static_argnums=(1, 2, 3))
    for t, kd in ((0, 0.0), (1, 2 / 7), (7, 2.0), (10, 2.0)):
      np.testing.assert_allclose(weights(jnp.float32(t), "linear", 2.0, 8),
                                 (1.0, kd), rtol=1e-6)


def _strategy(**fields):
  model = MLP(num_classes=2, hidden_sizes=())
  context = StrategyContext(model=model, num_classes=2, num_tasks=4,
                            frontend=lambda a: a)
  return model, make(context, **fields)


def test_loss_after_two_tasks_is_the_weighted_sum_of_numpy_terms():
  model, strategy = _strategy(temperature=2.0)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6, 3)).astype(np.float32)
  labels = np.array([0, 1, 1, 0, 1, 0], np.int32)
  teacher_vars = model.init(jax.random.PRNGKey(0), jnp.asarray(x))
  state = strategy.init_state(teacher_vars)
  for _ in range(2):  # Two tasks ended: t = 2.
    state = _teacher.snapshot(state, teacher_vars)
    state["tasks_seen"] = state["tasks_seen"] + 1.0
  student = jax.tree.map(lambda p: p + 0.5, teacher_vars["params"])
  s_logits, embedding = model.apply({"params": student}, jnp.asarray(x))
  t_logits = np.asarray(model.apply(teacher_vars, jnp.asarray(x))[0])

  per_example_ce = strategy.classification_loss(s_logits, labels, state)
  log_p = log_softmax(np.asarray(s_logits), -1)
  np.testing.assert_allclose(per_example_ce,
                             -log_p[np.arange(6), labels] / 3, rtol=1e-5)

  extra, aux = jax.jit(strategy.loss)(
      student, state, {"features": jnp.asarray(x)}, (s_logits, embedding))
  p = softmax(t_logits / 2, -1)
  soft_ce = 4 * np.mean(np.sum(-p * log_softmax(np.asarray(s_logits) / 2, -1),
                               -1))
  np.testing.assert_allclose(aux["kd"], soft_ce, rtol=1e-5)
  np.testing.assert_allclose(extra, 2 / 3 * soft_ce, rtol=1e-5)


def test_end_task_counts_tasks_and_snapshots_the_teacher():
  model, strategy = _strategy()
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))

  class State:  # The two TrainState members end_task reads.
    def __init__(self, strategy_state):
      self.strategy_state = strategy_state
      self.variables = {"params": jax.tree.map(lambda p: p + 1.0,
                                               variables["params"])}

    def replace(self, strategy_state):
      return State(strategy_state)

  task = TaskContext(0, "t0", 4, model, lambda a: a, lambda *_: [])
  state = strategy.end_task(State(strategy.init_state(variables)), task)
  assert float(state.strategy_state["tasks_seen"]) == 1.0
  chex.assert_trees_all_equal(state.strategy_state["teacher"],
                              state.variables)


def test_bad_fields_name_the_field():
  with pytest.raises(registry.ConfigError, match="config.strategy.weighting"):
    _strategy(weighting="exponential")
  with pytest.raises(registry.ConfigError, match="temperature"):
    _strategy(temperature=0.0)
  with pytest.raises(registry.ConfigError, match="linear_tasks"):
    _strategy(linear_tasks=1)


def test_lwf_runs_through_the_loop_on_its_small_config(tmp_path):
  workdir = str(tmp_path / "lwf")
  process = run_cli("cljax.main", "--config=configs/lwf_audio.py:small",
                    f"--workdir={workdir}")
  assert process.returncode == 0, process.stderr[-2000:]
  with open(os.path.join(workdir, "train.jsonl")) as f:
    records = [json.loads(line) for line in f if '"kd_weight"' in line]
  by_task = {r["task"]: r["kd_weight"] for r in records}
  assert by_task == pytest.approx({0: 0.0, 1: 0.5, 2: 2 / 3})
  assert all(np.isfinite(r["loss"]) for r in records)
