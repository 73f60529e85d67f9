"""The shared teacher: KD losses, snapshot, eval-mode pass in the train step."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from scipy.special import log_softmax, softmax

from cljax import step as step_lib
from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies import StrategyContext, TaskContext, make_strategy
from cljax.strategies import _teacher

NUM_CLASSES, DIM, BATCH = 2, 3, 8


class DistillationLossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_both_forms_equal_their_numpy_formulas(self):
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 5, 3)) * 3
    temperature = 2.0
    p = softmax(teacher / temperature, -1)
    log_q = log_softmax(student / temperature, -1)
    kl = temperature ** 2 * np.mean(np.sum(p * (np.log(p) - log_q), -1))
    soft_ce = temperature ** 2 * np.mean(np.sum(-p * log_q, -1))
    for form, expected in (("kl", kl), ("cross_entropy", soft_ce)):
      got = self.variant(_teacher.distillation_loss, static_argnums=(2, 3))(
          jnp.asarray(student), jnp.asarray(teacher), temperature, form)
      np.testing.assert_allclose(got, expected, rtol=1e-5)

  def test_forms_share_the_gradient_and_kl_vanishes_at_the_teacher(self):
    rng = np.random.default_rng(1)
    student, teacher = (jnp.asarray(x) for x in rng.normal(size=(2, 4, 2)))
    grads = [jax.grad(lambda s, f=f: _teacher.distillation_loss(
        s, teacher, 3.0, f))(student) for f in _teacher.FORMS]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    assert float(_teacher.distillation_loss(teacher, teacher, 3.0)) == (
        pytest.approx(0.0, abs=1e-7))


def test_snapshot_copies_the_model_switches_on_and_keeps_other_entries():
  variables = {"params": {"w": jnp.arange(3.0)}}
  state = {**_teacher.init_state(variables), "extra": jnp.ones(2)}
  assert float(state["active"]) == 0.0
  later = {"params": {"w": jnp.arange(3.0) + 5.0}}
  new = _teacher.snapshot(state, later)
  assert float(new["active"]) == 1.0
  np.testing.assert_array_equal(new["teacher"]["params"]["w"], [5, 6, 7])
  np.testing.assert_array_equal(new["extra"], [1, 1])


def test_teacher_pass_is_eval_mode_and_carries_no_gradient():
  model = MLP(num_classes=NUM_CLASSES, hidden_sizes=(4,), dropout_rate=0.5)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(BATCH, DIM)),
                  jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), x)
  state = _teacher.init_state(variables)
  logits, _ = jax.jit(lambda s, f: _teacher.teacher_outputs(model, s, f))(
      state, x)
  # Eval mode: no dropout (so no rng needed) and the same as apply(train=False).
  np.testing.assert_allclose(logits, model.apply(variables, x)[0], rtol=1e-6)
  grad = jax.grad(lambda s: jnp.sum(
      _teacher.teacher_outputs(model, s, x)[0]))(state)
  assert all(float(jnp.abs(g).sum()) == 0 for g in jax.tree.leaves(grad))


# --- Every teacher-based strategy in the real jitted train step ------------

STRATEGIES = {
    "lwf": {},
    "kd": {},
    "cored": {},
    "tg": {},
    "rawm": {"kd_weight": 1.0},
}


def _setup(name: str):
  model = MLP(num_classes=NUM_CLASSES, hidden_sizes=(4,))
  frontend = lambda audio: audio  # Features are given directly.
  context = StrategyContext(model=model, num_classes=NUM_CLASSES,
                            num_tasks=3, frontend=frontend)
  strategy = make_strategy(ml_collections.ConfigDict(
      {"name": name, **STRATEGIES[name]}), context)
  rng = np.random.default_rng(0)
  batch = {"audio": rng.normal(size=(BATCH, DIM)).astype(np.float32),
           "label": (np.arange(BATCH) % NUM_CLASSES).astype(np.int32)}
  variables = model.init(jax.random.PRNGKey(0), jnp.asarray(batch["audio"]))
  tx = optax.chain(strategy.tx, optax.sgd(0.1))
  state = create_train_state(
      params=jax.tree.map(jnp.copy, variables["params"]), batch_stats={},
      tx=tx, strategy_state=strategy.init_state(variables),
      rng=jax.random.PRNGKey(1))
  mesh = step_lib.make_mesh()
  train_step = step_lib.make_train_step(model=model, frontend=frontend,
                                        strategy=strategy, tx=tx, mesh=mesh)
  device_batch = step_lib.put_batch(batch, mesh)
  task = TaskContext(task_id=0, task_name="t0", num_tasks=3, model=model,
                     frontend=frontend,
                     batches=lambda split, ids: [{**device_batch,
                                                  "mask": jnp.ones(BATCH)}])
  return model, strategy, state, train_step, device_batch, task


def _plain_cross_entropy(model, params, batch):
  logits, _ = model.apply({"params": params}, batch["audio"])
  return float(optax.softmax_cross_entropy_with_integer_labels(
      logits, batch["label"]).mean())


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_first_task_is_plain_training_then_the_teacher_is_the_model(name):
  model, strategy, state, train_step, batch, task = _setup(name)
  if strategy.start_task is not None:
    state = strategy.start_task(state, task)
  # Move the student first: a teacher term would now be non-zero.
  state = state.replace(params=jax.tree.map(lambda p: p + 0.3 * jnp.cos(p),
                                            state.params))
  expected = _plain_cross_entropy(model, state.params, batch)
  state, metrics = train_step(state, batch)  # jitted: teacher pass inside
  assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)

  state = strategy.end_task(state, task)
  assert float(state.strategy_state["active"]) == 1.0
  chex.assert_trees_all_equal(state.strategy_state["teacher"]["params"],
                              state.params)
  # The next task starts from the teacher, so move away before stepping.
  next_task = task._replace(task_id=1)
  if strategy.start_task is not None:
    state = strategy.start_task(state, next_task)
  state = state.replace(params=jax.tree.map(lambda p: p + 0.3 * jnp.sin(p),
                                            state.params))
  plain = _plain_cross_entropy(model, state.params, batch)
  _, metrics = train_step(state, batch)
  assert np.isfinite(float(metrics["loss"]))
  assert abs(float(metrics["loss"]) - plain) > 1e-4
