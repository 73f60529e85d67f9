"""CoReD: bins, the representation loss by hand, the full loss, the loop."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import log_softmax, softmax

from cljax import registry
from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies import StrategyContext, TaskContext, _teacher
from cljax.strategies.cored import (confidence_bins, make,
                                    representation_loss)
from run_helpers import (assert_teacher_term_starts_after_the_first_task,
                         run_small_config)


def _logits(p_true, labels):
  """Binary logits whose softmax gives the true class probability p_true."""
  p_true, labels = np.asarray(p_true, np.float64), np.asarray(labels)
  p0 = np.where(labels == 0, p_true, 1 - p_true)
  return np.log(np.stack([p0, 1 - p0], -1)).astype(np.float32)


def official_bin(p):
  """``_GetIndex`` of alsgkals2/CoReD ``Function_CoReD.py``, as written."""
  for index, (low, high) in enumerate(((0.5, 0.6), (0.6, 0.7), (0.7, 0.8),
                                       (0.8, 0.9), (0.9, 1.0))):
    if low < p <= high:
      return index
  return -1


class BinsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_true_class_probability_picks_class_and_bin(self):
    p = [0.55, 0.65, 0.75, 0.85, 0.95, 0.3]
    labels = np.array([0, 1, 0, 1, 0, 1], np.int32)
    bins = self.variant(confidence_bins, static_argnums=2)(
        jnp.asarray(_logits(p, labels)), jnp.asarray(labels), 2)
    expected = np.zeros((6, 2, 5), np.float32)
    for row, (prob, label) in enumerate(zip(p, labels)):
      if official_bin(prob) >= 0:
        expected[row, label, official_bin(prob)] = 1
    np.testing.assert_array_equal(bins, expected)
    assert bins[5].sum() == 0  # Misclassified: in no bin.


# Four samples: two real in bin 0, one fake in bin 4, one misclassified.
P_TRUE = [0.55, 0.58, 0.95, 0.2]
LABELS = np.array([0, 0, 1, 1], np.int32)
EMBEDDING = np.array([[1, 3], [4, 4], [0, 2], [100, 100]], np.float32)


def _teacher_bins(width):
  means = np.zeros((2, 5, width), np.float32)
  counts = np.zeros((2, 5), np.float32)
  means[0, 0], counts[0, 0] = 1.0, 10   # Real, bin 0: both filled.
  means[1, 4], counts[1, 4] = 3.0, 0    # Fake, bin 4: teacher empty -> 0.
  means[1, 2], counts[1, 2] = 7.0, 5    # Fake, bin 2: batch empty -> 0.
  return jnp.asarray(means), jnp.asarray(counts)


class RepresentationLossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_channel_mean_by_hand_with_empty_bins(self):
    means, counts = _teacher_bins(1)
    fn = self.variant(representation_loss, static_argnums=5)
    # Real bin 0: sample values mean([1,3]) = 2 and mean([4,4]) = 4 -> 3;
    # (3 - 1)^2 = 4. Every other bin is empty on one side.
    got = fn(jnp.asarray(EMBEDDING), jnp.asarray(_logits(P_TRUE, LABELS)),
             jnp.asarray(LABELS), means, counts, "channel_mean")
    np.testing.assert_allclose(got, 4.0, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_vector_feature_by_hand(self):
    means, counts = _teacher_bins(2)
    fn = self.variant(representation_loss, static_argnums=5)
    # Real bin 0: mean [2.5, 3.5] vs [1, 1]: 1.5^2 + 2.5^2 = 8.5.
    got = fn(jnp.asarray(EMBEDDING), jnp.asarray(_logits(P_TRUE, LABELS)),
             jnp.asarray(LABELS), means, counts, "vector")
    np.testing.assert_allclose(got, 8.5, rtol=1e-6)

  def test_gradient_reaches_only_the_binned_samples(self):
    means, counts = _teacher_bins(1)
    grad = jax.grad(lambda e: representation_loss(
        e, jnp.asarray(_logits(P_TRUE, LABELS)), jnp.asarray(LABELS), means,
        counts))(jnp.asarray(EMBEDDING))
    # d/de (mean_s - 1)^2 = 2 * (3 - 1) * (1/2 sample) * (1/2 channel) = 1.
    np.testing.assert_allclose(grad, [[1, 1], [1, 1], [0, 0], [0, 0]],
                               atol=1e-6)


def _linear_setup():
  """A linear model (embedding = input) with a known teacher."""
  model = MLP(num_classes=2, hidden_sizes=())
  teacher = {"params": {"classifier": {
      "kernel": jnp.asarray([[1.0, -1.0], [0.5, 0.0]]),
      "bias": jnp.asarray([0.0, 0.2])}}}
  context = StrategyContext(model, 2, 3, lambda a: a)
  return model, teacher, context


def test_full_loss_equals_numpy_terms():
  model, teacher, context = _linear_setup()
  strategy = make(context)  # alpha 0.5, T 20, lambda 1, channel mean.
  state = _teacher.snapshot(strategy.init_state(teacher), teacher)
  means, counts = _teacher_bins(1)
  state = {**state, "teacher_means": means, "teacher_counts": counts}
  student_logits = _logits(P_TRUE, LABELS)
  batch = {"features": jnp.asarray(EMBEDDING), "label": jnp.asarray(LABELS)}
  total, aux = jax.jit(strategy.loss)(
      None, state, batch, (jnp.asarray(student_logits),
                           jnp.asarray(EMBEDDING)))
  teacher_logits = EMBEDDING @ np.array([[1, -1], [.5, 0]]) + [0, .2]
  p = softmax(teacher_logits / 20, -1)
  log_q = log_softmax(student_logits / 20, -1)
  kl = 400 * np.mean(np.sum(p * (np.log(p) - log_q), -1))
  ce = np.mean(-log_softmax(student_logits, -1)[np.arange(4), LABELS])
  np.testing.assert_allclose(aux["kd"], kl, rtol=1e-4)
  np.testing.assert_allclose(aux["representation"], 4.0, rtol=1e-6)
  np.testing.assert_allclose(total, 0.5 * kl + 0.5 * ce + 4.0, rtol=1e-4)


def test_start_task_measures_teacher_means_like_the_official_loops():
  model, teacher, context = _linear_setup()
  strategy = make(context)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 2)).astype(np.float32) * 2
  labels = rng.integers(0, 2, 40).astype(np.int32)
  mask = np.ones(40, np.float32)
  mask[-5:] = 0  # Padding rows of the last batch.
  batches = [{"audio": jnp.asarray(x[i:i + 8]),
              "label": jnp.asarray(labels[i:i + 8]),
              "mask": jnp.asarray(mask[i:i + 8])} for i in range(0, 40, 8)]
  state = create_train_state(
      params=teacher["params"], batch_stats={}, tx=optax.sgd(0.1),
      strategy_state=_teacher.snapshot(strategy.init_state(teacher), teacher),
      rng=jax.random.PRNGKey(0))
  task = TaskContext(1, "t1", 3, model, lambda a: a,
                     lambda split, ids: iter(batches))
  new = strategy.start_task(state, task)
  # The model entering the task is the teacher; start_task leaves it.
  chex.assert_trees_all_equal(new.params, state.params)
  # func_correct + GetListTeacherFeatureFakeReal, in plain numpy.
  probs = softmax(x @ np.array([[1, -1], [.5, 0]]) + [0, .2], -1)
  expected_sum = np.zeros((2, 5))
  expected_count = np.zeros((2, 5))
  for row in range(35):
    index = official_bin(probs[row, labels[row]])
    if index >= 0:
      expected_sum[labels[row], index] += x[row].mean()
      expected_count[labels[row], index] += 1
  np.testing.assert_array_equal(new.strategy_state["teacher_counts"],
                                expected_count)
  np.testing.assert_allclose(
      new.strategy_state["teacher_means"][..., 0],
      expected_sum / np.maximum(expected_count, 1), rtol=1e-5, atol=1e-6)
  assert expected_count.sum() > 10 and (expected_count == 0).any()


def test_bad_fields_name_the_field():
  _, _, context = _linear_setup()
  with pytest.raises(registry.ConfigError, match="config.strategy.feature"):
    make(context, feature="pixels")
  with pytest.raises(registry.ConfigError, match="config.strategy.alpha"):
    make(context, alpha=1.5)


def test_cored_runs_through_the_loop_on_its_small_config(tmp_path):
  workdir = run_small_config("cored_audio", str(tmp_path / "cored"))
  later = assert_teacher_term_starts_after_the_first_task(workdir,
                                                          "representation")
  assert all(np.isfinite(r["representation"]) for r in later)
