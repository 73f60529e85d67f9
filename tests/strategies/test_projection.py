"""The shared projection math of OWM/RAWM/RWM (cljax.strategies._projection)."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.strategies import _projection

# The package exports the factory under the module's name.
rwm_lib = importlib.import_module("cljax.strategies.rwm")

RNG = np.random.default_rng(0)


def official_p_update(p: np.ndarray, x: np.ndarray, alpha: float = 1.0
                      ) -> np.ndarray:
  """REFERENCE.md's official P update, transcribed from the torch code."""
  r = x.mean(0, keepdims=True)                 # 1 x d
  k = p @ r.T                                  # d x 1
  p = p - (k @ k.T) / (alpha + k @ r)          # k @ r is d x d: element-wise
  return (p / np.linalg.norm(p, "fro")).astype(np.float32)


def test_faithful_projector_update_matches_the_official_formula():
  d = 6
  p_numpy = np.eye(d, dtype=np.float32)
  p_jax = jnp.eye(d)
  for _ in range(4):
    x = RNG.normal(size=(5, d)).astype(np.float32)
    p_numpy = official_p_update(p_numpy, x)
    p_jax = _projection.faithful_projector_update(p_jax, jnp.asarray(x).mean(0))
    np.testing.assert_allclose(p_jax, p_numpy, rtol=2e-5, atol=2e-6)
  # Element-wise division makes it non-symmetric, unlike textbook OWM.
  assert np.abs(p_numpy - p_numpy.T).max() > 1e-3


def test_well_posed_recursion_is_sherman_morrison():
  # P_n = (I + X^T X / alpha)^-1 after learning the rows of X one by one.
  d, alpha = 5, 0.5
  x = RNG.normal(size=(3, d)).astype(np.float32)
  p = jnp.eye(d)
  for row in x:
    p = _projection.well_posed_projector_update(p, jnp.asarray(row), alpha)
  expected = np.linalg.inv(np.eye(d) + x.T.astype(np.float64) @ x / alpha)
  np.testing.assert_allclose(p, expected, atol=1e-5)
  np.testing.assert_array_equal(p, p.T)


def test_official_q_is_unit_norm_round_off():
  p = _projection.faithful_projector_update(
      jnp.eye(8), jnp.asarray(RNG.normal(size=8), jnp.float32))
  q = _projection.faithful_q(p)
  np.testing.assert_allclose(jnp.linalg.norm(q), 1.0, rtol=1e-5)
  # Before normalisation it is round-off: analytically I - I = 0.
  raw = jnp.eye(8) - p @ jnp.linalg.solve(p.T @ p, p.T)
  assert float(jnp.linalg.norm(raw)) < 1e-3


def test_class_parts_sum_to_the_cross_entropy_kernel_gradient():
  b, d, c = 7, 4, 3
  features = jnp.asarray(RNG.normal(size=(b, d)), jnp.float32)
  kernel = jnp.asarray(RNG.normal(size=(d, c)), jnp.float32)
  bias = jnp.asarray(RNG.normal(size=c), jnp.float32)
  labels = jnp.array([0, 2, 2, 1, 0, 2, 0])

  def loss(w, mask):
    per_sample = optax.softmax_cross_entropy_with_integer_labels(
        features @ w + bias, labels)
    return jnp.sum(per_sample * mask) / b

  parts = _projection.cross_entropy_kernel_grad_parts(
      features, features @ kernel + bias, labels, c)
  for group in range(c):
    expected = jax.grad(loss)(kernel, (labels == group).astype(jnp.float32))
    np.testing.assert_allclose(parts[group], expected, atol=1e-6)
  np.testing.assert_allclose(parts.sum(0), jax.grad(loss)(kernel, 1.0),
                             atol=1e-6)


@pytest.mark.parametrize("faithful", [False, True])
def test_group_rotation_with_equal_betas_is_the_single_rotation(faithful):
  d, c = 5, 2
  grad = jnp.asarray(RNG.normal(size=(d, c)), jnp.float32)
  parts = jnp.asarray(RNG.normal(size=(3, d, c)), jnp.float32)
  p = jnp.asarray(np.linalg.inv(np.eye(d) + np.diag(RNG.uniform(size=d))),
                  jnp.float32)
  q = jnp.asarray(RNG.normal(size=(d, d)), jnp.float32) if faithful else None
  beta = jnp.float32(0.7)
  grouped = _projection.rotate_groups(grad, parts, jnp.full(3, beta), beta,
                                      p, q)
  single = (_projection.rotate_faithful(grad, p, q, beta) if faithful else
            _projection.rotate_well_posed(grad, p, beta))
  np.testing.assert_allclose(grouped, single, rtol=1e-5, atol=1e-6)


def test_missing_layer_error_names_predicate_and_paths():
  params = {"encoder": {"kernel": jnp.ones((3, 4))},
            "head": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
  tx = rwm_lib.rwm()
  with pytest.raises(ValueError) as error:
    tx.init(params)
  message = str(error.value)
  assert "'classifier/kernel'" in message
  assert "encoder/kernel" in message and "head/kernel" in message
  assert "head/bias" in message
  # A predicate that matches a 1-D leaf is refused too.
  with pytest.raises(ValueError, match="not a 2-D"):
    rwm_lib.rwm(layer="head/bias").init(params)
  # The right path works.
  state = rwm_lib.rwm(layer="head/kernel").init(params)
  assert state.projector.shape == (4, 4)


def test_commit_reaches_the_state_inside_multisteps_and_chain():
  params = {"classifier": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
  tx = optax.MultiSteps(optax.chain(optax.clip_by_global_norm(1.0),
                                    rwm_lib.rwm(), optax.adam(1e-3)),
                        every_k_schedule=2)
  state = tx.init(params)
  inner = optax.tree.get(state, "RWMState")
  pending = inner.pending_projector.at[0, 1].set(0.5)
  state = optax.tree.set(state, pending_projector=pending)
  committed = _projection.commit(state)
  found = optax.tree.get(committed, "RWMState")
  np.testing.assert_array_equal(found.projector, pending)
  assert int(found.task_count) == 1
  # Nothing else changed.
  assert (jax.tree.structure(committed) == jax.tree.structure(state))
  np.testing.assert_array_equal(
      optax.tree.get(committed, "mu")["classifier"]["kernel"],
      optax.tree.get(state, "mu")["classifier"]["kernel"])
