"""Herding selection: a hand-computed order and a numpy reference."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from cljax.replay.herding import herding


def numpy_herding(x, m, mask=None):
  """Algorithm 4 written out, with picked examples excluded."""
  x = np.asarray(x, np.float64)
  mask = np.ones(len(x), bool) if mask is None else np.asarray(mask)
  phi = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  mu = phi[mask].mean(0)
  chosen, total = [], np.zeros(x.shape[1])
  for k in range(1, m + 1):
    best, best_d = -1, np.inf
    for i in np.flatnonzero(mask):
      if i in chosen:
        continue
      d = np.linalg.norm(mu - (total + phi[i]) / k)
      if d < best_d - 1e-9:
        best, best_d = i, d
    if best < 0:
      chosen.append(-1)
      continue
    chosen.append(best)
    total += phi[best]
  return chosen


class HerdingTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_built_set(self):
    # Unit directions a=(1,0), b=(0,1), c=(-.8,.6), d=(.28,.96), scaled
    # (herding normalises): mu = (.12, .64).
    # k=1: |mu - x| = 1.088, .379, .921, .358       -> d (3)
    # k=2: |mu - (d+x)/2|: a .544, b .341, c .405    -> b (1)
    # k=3: |mu - (d+b+x)/3|: a .307, c .363          -> a (0)
    # k=4: c (2).
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-2.4, 1.8], [0.14, 0.48]])
    order = self.variant(herding, static_argnums=1)(jnp.asarray(x), 4)
    np.testing.assert_array_equal(order, [3, 1, 0, 2])
    np.testing.assert_array_equal(order, numpy_herding(x, 4))
    # Asking for fewer gives the prefix (ReduceExemplarSet keeps it).
    np.testing.assert_array_equal(herding(jnp.asarray(x), 2), [3, 1])

  @chex.variants(with_jit=True, without_jit=True)
  def test_matches_numpy_reference_on_random_sets(self):
    gen = np.random.default_rng(0)
    for n, d, m in ((30, 8, 10), (12, 3, 12), (50, 16, 7)):
      x = gen.normal(size=(n, d)) + 0.5
      order = self.variant(herding, static_argnums=1)(jnp.asarray(x), m)
      np.testing.assert_array_equal(order, numpy_herding(x, m))
      assert len(set(np.asarray(order).tolist())) == m  # no repeats

  def test_padded_rows_are_never_picked_and_shortfall_is_minus_one(self):
    gen = np.random.default_rng(1)
    x = gen.normal(size=(8, 4))
    mask = np.array([1, 0, 1, 1, 0, 0, 1, 0], bool)
    order = np.asarray(herding(jnp.asarray(x), 6, jnp.asarray(mask)))
    np.testing.assert_array_equal(order[4:], [-1, -1])
    assert set(order[:4].tolist()) == {0, 2, 3, 6}
    np.testing.assert_array_equal(order, numpy_herding(x, 6, mask))

  def test_prefix_means_approach_the_class_mean(self):
    # The defining property: the first k exemplars' mean is closer to mu
    # than that of k random examples, on average.
    gen = np.random.default_rng(2)
    x = gen.normal(size=(200, 6)) + np.array([2, 0, 0, 0, 0, 0])
    phi = x / np.linalg.norm(x, axis=1, keepdims=True)
    mu = phi.mean(0)
    order = np.asarray(herding(jnp.asarray(x), 10))
    herd = np.linalg.norm(phi[order].mean(0) - mu)
    rand = np.mean([np.linalg.norm(phi[gen.choice(200, 10, False)].mean(0)
                                   - mu) for _ in range(50)])
    assert herd < 0.3 * rand
