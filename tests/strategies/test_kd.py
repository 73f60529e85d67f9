"""KD (seed 003): CE + alpha * clamp(KD), by hand and through the loop."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import registry
from cljax.models import MLP
from cljax.strategies import StrategyContext, _teacher
from cljax.strategies.kd import clipped_distillation, make
from run_helpers import (assert_teacher_term_starts_after_the_first_task,
                         run_small_config)

# Binary logits chosen so the softened probabilities are simple: at T = 2,
# teacher [2 ln 3, 0] -> p = (3/4, 1/4); student [0, 0] -> q = (1/2, 1/2).
TEACHER = np.array([[2 * np.log(3.0), 0.0]], np.float32)
STUDENT = np.zeros((1, 2), np.float32)
# T^2 KL(p || q) = 4 * (3/4 ln(3/2) + 1/4 ln(1/2)), by hand.
KD_BY_HAND = 4 * (0.75 * np.log(1.5) + 0.25 * np.log(0.5))


class ClippedDistillationTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_value_by_hand_inside_and_at_the_bounds(self):
    fn = self.variant(clipped_distillation, static_argnums=(2, 3, 4))
    clipped, raw = fn(jnp.asarray(STUDENT), jnp.asarray(TEACHER), 2.0, 0.0,
                      10.0)
    np.testing.assert_allclose(raw, KD_BY_HAND, rtol=1e-5)  # 0.5232...
    np.testing.assert_allclose(clipped, KD_BY_HAND, rtol=1e-5)
    clipped, _ = fn(jnp.asarray(STUDENT), jnp.asarray(TEACHER), 2.0, 0.0, 0.2)
    np.testing.assert_allclose(clipped, 0.2, rtol=1e-6)
    clipped, _ = fn(jnp.asarray(TEACHER), jnp.asarray(TEACHER), 2.0, 0.1, 1.0)
    np.testing.assert_allclose(clipped, 0.1, rtol=1e-6)

  def test_a_clamped_term_stops_pushing(self):
    grad = jax.grad(lambda s: clipped_distillation(
        s, jnp.asarray(TEACHER), 2.0, 0.0, 0.2)[0])(jnp.asarray(STUDENT))
    np.testing.assert_array_equal(grad, np.zeros_like(STUDENT))


def test_strategy_loss_is_alpha_times_the_clipped_term_once_active():
  # A linear model whose classifier reproduces TEACHER on the input [1].
  model = MLP(num_classes=2, hidden_sizes=())
  teacher = {"params": {"classifier": {
      "kernel": jnp.asarray([[2 * np.log(3.0), 0.0]]),
      "bias": jnp.zeros(2)}}}
  strategy = make(StrategyContext(model, 2, 3, lambda a: a), alpha=0.7,
                  temperature=2.0)
  batch = {"features": jnp.ones((1, 1))}
  outputs = (jnp.asarray(STUDENT), jnp.ones((1, 1)))
  loss = jax.jit(strategy.loss)
  inactive, _ = loss(None, strategy.init_state(teacher), batch, outputs)
  assert float(inactive) == 0.0
  active, aux = loss(None, _teacher.snapshot(strategy.init_state(teacher),
                                             teacher), batch, outputs)
  np.testing.assert_allclose(active, 0.7 * KD_BY_HAND, rtol=1e-5)
  np.testing.assert_allclose(aux["kd"], KD_BY_HAND, rtol=1e-5)


def test_bad_fields_name_the_field():
  context = StrategyContext(MLP(), 2, 3, lambda a: a)
  with pytest.raises(registry.ConfigError, match="config.strategy.clamp_min"):
    make(context, clamp_min=5.0, clamp_max=1.0)
  with pytest.raises(registry.ConfigError, match="config.strategy.alpha"):
    make(context, alpha=-1.0)


def test_kd_runs_through_the_loop_on_its_small_config(tmp_path):
  # No teacher on the first task: the loss is the cross-entropy alone.
  assert_teacher_term_starts_after_the_first_task(
      run_small_config("kd_audio", str(tmp_path / "kd")), "kd")
