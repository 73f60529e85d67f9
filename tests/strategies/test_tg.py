"""TG (T-GD): the sigmoid(-CE_teacher) gate, the gated L2-SP, the loop."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import registry
from cljax.models import MLP
from cljax.strategies import StrategyContext, _teacher
from cljax.strategies.tg import make, teacher_gate
from run_helpers import (assert_teacher_term_starts_after_the_first_task,
                         run_small_config)


class GateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_gate_by_hand(self):
    gate = self.variant(teacher_gate, static_argnums=2)
    # Uninformed binary teacher: CE = ln 2, sigmoid(-ln 2) = 1 / (1 + 2).
    np.testing.assert_allclose(
        gate(jnp.zeros((4, 2)), jnp.array([0, 1, 1, 0]), 1.0), 1 / 3,
        rtol=1e-6)
    # Teacher right with p = 3/4 on every row: CE = ln(4/3),
    # sigmoid(-ln(4/3)) = 1 / (1 + 4/3) = 3/7; scale s multiplies it.
    logits = jnp.array([[np.log(3.0), 0.0], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(gate(logits, jnp.array([0, 1]), 2.0), 6 / 7,
                               rtol=1e-6)

  def test_a_surer_teacher_pulls_harder(self):
    labels = jnp.array([0, 0])
    gates = [float(teacher_gate(jnp.array([[m, 0.0]] * 2), labels))
             for m in (-2.0, 0.0, 2.0, 6.0)]
    assert gates == sorted(gates) and gates[-1] < 0.5


def _setup():
  model = MLP(num_classes=2, hidden_sizes=(2,))
  teacher = {"params": {
      "hidden0": {"kernel": jnp.ones((1, 2)), "bias": jnp.zeros(2)},
      # A zero classifier: teacher logits are 0, so the gate is 1/3.
      "classifier": {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}}}
  strategy = make(StrategyContext(model, 2, 3, lambda a: a))
  state = _teacher.snapshot(strategy.init_state(teacher), teacher)
  student = {
      "hidden0": {"kernel": jnp.array([[2.0, 1.0]]),    # moved by (1, 0)
                  "bias": jnp.array([0.0, -2.0])},      # moved by (0, -2)
      "classifier": {"kernel": jnp.array([[1.0, 0.0], [0.0, 1.0]]),
                     "bias": jnp.array([0.0, 3.0])}}
  batch = {"features": jnp.ones((4, 1)), "label": jnp.array([0, 1, 0, 1])}
  return strategy, state, student, batch


def test_loss_is_the_gated_l2sp_penalty_by_hand():
  strategy, state, student, batch = _setup()
  loss, aux = jax.jit(strategy.loss)(student, state, batch, (None, None))
  # Backbone: 1/2 (1^2 + 2^2) = 2.5; head: 1/2 (1 + 1 + 9) = 5.5.
  np.testing.assert_allclose(aux["l2sp_penalty"], 8.0, rtol=1e-6)
  np.testing.assert_allclose(aux["tg_gate"], 1 / 3, rtol=1e-6)
  np.testing.assert_allclose(loss, 8.0 / 3, rtol=1e-6)
  inactive, _ = strategy.loss(student, strategy.init_state(state["teacher"]),
                              batch, (None, None))
  assert float(inactive) == 0.0


def test_gradient_is_l2sp_to_the_teacher_on_the_backbone_decay_on_the_head():
  strategy, state, student, batch = _setup()
  grads = jax.grad(lambda p: strategy.loss(p, state, batch,
                                           (None, None))[0])(student)
  teacher = state["teacher"]["params"]
  chex.assert_trees_all_close(
      grads["hidden0"], jax.tree.map(lambda s, t: (s - t) / 3,
                                     student["hidden0"], teacher["hidden0"]),
      rtol=1e-6)
  chex.assert_trees_all_close(
      grads["classifier"],
      jax.tree.map(lambda s: s / 3, student["classifier"]), rtol=1e-6)


def test_bad_fields_name_the_field():
  with pytest.raises(registry.ConfigError, match="config.strategy.scale"):
    make(StrategyContext(MLP(), 2, 3, lambda a: a), scale=-1.0)


def test_tg_runs_through_the_loop_on_its_small_config(tmp_path):
  workdir = run_small_config("tg_audio", str(tmp_path / "tg"))
  later = assert_teacher_term_starts_after_the_first_task(workdir, "tg_gate")
  assert all(0 < r["tg_gate"] < 1 for r in later)
