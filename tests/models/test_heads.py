"""Tests for the OC-softmax head, its loss and the logits helper."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cljax.models import heads


class OCLossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_loss_matches_hand_computed_case(self):
    cos = jnp.array([0.95, 0.5, 0.1, 0.6])
    labels = jnp.array([0, 0, 1, 1])  # 0 = bona fide.
    # softplus(20 * (0.9 - 0.95)) = log(1 + e^-1), softplus(20 * 0.4)
    # = log(1 + e^8), softplus(20 * (0.1 - 0.2)) = log(1 + e^-2),
    # softplus(20 * (0.6 - 0.2)) = log(1 + e^8).
    expected = np.array([np.log1p(np.exp(-1.0)), np.log1p(np.exp(8.0)),
                         np.log1p(np.exp(-2.0)), np.log1p(np.exp(8.0))])
    per_example = self.variant(heads.oc_softmax_per_example)(cos, labels)
    np.testing.assert_allclose(per_example, expected, rtol=1e-6)
    loss = self.variant(heads.oc_softmax_loss)(cos, labels)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_hm_conformer_loss_is_weighted_sum_of_head_means(self):
    rng = np.random.default_rng(0)
    head_cos = jnp.asarray(rng.uniform(-1, 1, (6, 5)), jnp.float32)
    labels = jnp.array([0, 1, 0, 1, 1, 0])
    total = self.variant(heads.hm_conformer_loss)(head_cos, labels)
    expected = sum(
        w * float(heads.oc_softmax_loss(head_cos[:, i], labels))
        for i, w in enumerate((0.4, 0.3, 0.2, 0.1, 0.1)))
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    per_example = self.variant(heads.hm_conformer_per_example)(head_cos,
                                                               labels)
    assert per_example.shape == (6,)
    np.testing.assert_allclose(np.mean(per_example), expected, rtol=1e-5)

  def test_hm_conformer_loss_rejects_wrong_number_of_weights(self):
    with self.assertRaisesRegex(ValueError, "one weight per head"):
      heads.hm_conformer_loss(jnp.zeros((2, 3)), jnp.zeros((2,), jnp.int32))


def test_oc_logits_log_odds_is_monotone_in_cos():
  cos = jnp.linspace(-1.0, 1.0, 41)
  logits = heads.oc_logits(cos)
  log_odds = logits[:, 0] - logits[:, 1]
  np.testing.assert_allclose(log_odds, 20.0 * (cos - 0.55), atol=1e-5)
  assert np.all(np.diff(np.asarray(log_odds)) > 0)
  # argmax predicts bona fide (class 0) above the mid-margin cosine 0.55.
  pred = np.argmax(np.asarray(logits), axis=1)
  np.testing.assert_array_equal(pred, np.where(np.asarray(cos) > 0.55, 0, 1))


def test_oc_softmax_module_is_a_cosine_of_normalised_vectors():
  module = heads.OCSoftmax()
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 8))
  variables = module.init(jax.random.PRNGKey(1), x)
  kernel = np.asarray(variables["params"]["kernel"])[:, 0]
  cos = module.apply(variables, x)
  xn = np.asarray(x) / np.linalg.norm(np.asarray(x), axis=1, keepdims=True)
  np.testing.assert_allclose(cos, xn @ (kernel / np.linalg.norm(kernel)),
                             atol=1e-6)
  # Scale-invariant in the input and the direction.
  np.testing.assert_allclose(module.apply(variables, 3.0 * x), cos, atol=1e-6)
  scaled = {"params": {"kernel": 7.0 * variables["params"]["kernel"]}}
  np.testing.assert_allclose(module.apply(scaled, x), cos, atol=1e-6)


def test_classifier_head_rejects_unknown_heads_and_multiclass_oc():
  import pytest  # pylint: disable=g-import-not-at-top
  from cljax.models import MLP  # pylint: disable=g-import-not-at-top
  x = jnp.ones((2, 3))
  with pytest.raises(ValueError, match="config.model.head='arcface'"):
    MLP(num_classes=2, hidden_sizes=(), head="arcface").init(
        jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="binary head .* 3 classes"):
    MLP(num_classes=3, hidden_sizes=(), head="oc_softmax").init(
        jax.random.PRNGKey(0), x)


def test_training_loss_is_cross_entropy_without_sown_heads():
  logits = jnp.array([[2.0, -1.0], [0.5, 0.25]])
  labels = jnp.array([1, 0])
  # -log softmax: log(1 + e^3) and log(1 + e^-0.25).
  expected = [np.log1p(np.exp(3.0)), np.log1p(np.exp(-0.25))]
  np.testing.assert_allclose(
      heads.training_loss_per_example(None, logits, {}, labels), expected,
      rtol=1e-6)
