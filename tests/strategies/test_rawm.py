"""RAWM as an optax transform (cljax.strategies.rawm)."""

from __future__ import annotations

import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from cljax.strategies import _projection

# The package exports the factory under the module's name
# (cljax.strategies.rawm is the function), so take the module itself.
rawm_lib = importlib.import_module("cljax.strategies.rawm")

D, C = 6, 2


def _params():
  return {"body": {"kernel": jnp.ones((2, D))},
          "classifier": {"kernel": jnp.ones((D, C)), "bias": jnp.zeros(C)}}


def _grads(seed=0):
  key = jax.random.PRNGKey(seed)
  return jax.tree.map(lambda x: jax.random.normal(key, x.shape), _params())


@pytest.mark.parametrize("labels,expected", [
    ([0, 0, 1], 3 / 2),        # (2 + 1) / (1 + 1)
    ([0, 1, 1, 1], 2 / 4),     # (1 + 1) / (3 + 1)
    ([0, 0, 0, 0], 5 / 1),     # one-class batch: the official code crashes
    ([1, 1], 1 / 3),
    ([0, 2, 1, 0], 3 / 3),     # any class but 0 counts as fake
])
def test_beta_from_counts(labels, expected):
  np.testing.assert_allclose(rawm_lib.rawm_beta(jnp.array(labels)), expected,
                             rtol=1e-7)


def _learned_state(tx, params, steps=3):
  state = tx.init(params)
  rng = np.random.default_rng(4)
  for _ in range(steps):
    _, state = tx.update(_grads(), state,
                         features=jnp.asarray(rng.normal(size=(4, D)),
                                              jnp.float32),
                         labels=jnp.array([0, 1, 0, 1]))
  return rawm_lib.commit(state)


def test_beta_one_is_the_plain_gradient_exactly():
  tx = rawm_lib.rawm()
  state = _learned_state(tx, _params())
  assert float(jnp.abs(state.projector - jnp.eye(D)).max()) > 1e-3
  grads = _grads(7)
  # Balanced batch: beta = (2 + 1) / (2 + 1) = 1 -> (P + (I - P)) G = G.
  updates, _ = tx.update(grads, state, features=jnp.ones((4, D)),
                         labels=jnp.array([1, 0, 1, 0]))
  np.testing.assert_array_equal(updates["classifier"]["kernel"],
                                grads["classifier"]["kernel"])
  # An unbalanced one is not.
  updates, _ = tx.update(grads, state, features=jnp.ones((4, D)),
                         labels=jnp.array([1, 1, 1, 0]))
  assert float(jnp.abs(updates["classifier"]["kernel"]
                       - grads["classifier"]["kernel"]).max()) > 1e-4


def official_rawm_step(p, x, labels, g_torch, q_of):
  real = np.sum(labels == 0)
  fake = len(labels) - real
  beta = (real + 1) / (fake + 1)
  r = x.mean(0, keepdims=True)
  k = p @ r.T
  p = p - (k @ k.T) / (1.0 + k @ r)
  p = p / np.linalg.norm(p, "fro")
  q = q_of(p)   # The official Q is round-off; both sides use the same one.
  return p, g_torch @ (p + beta * q).T


def test_faithful_matches_the_official_code():
  rng = np.random.default_rng(5)
  tx = rawm_lib.rawm(mode="faithful")
  state = rawm_lib.commit(tx.init(_params()))   # past the skipped task
  p_ref = np.eye(D, dtype=np.float32)
  for _ in range(3):
    x = rng.normal(size=(5, D)).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 1])
    g = rng.normal(size=(D, C)).astype(np.float32)
    grads = {**_grads(), "classifier": {"kernel": jnp.asarray(g),
                                        "bias": jnp.ones(C)}}
    updates, state = tx.update(grads, state, features=jnp.asarray(x),
                               labels=jnp.asarray(labels))
    # Q is float32 round-off of the P it is computed from (a few ulp apart
    # here and in numpy), so the reference takes Q from the transform's P;
    # P itself is compared to the official update.
    q = np.asarray(_projection.faithful_q(state.projector))
    p_ref, g_torch = official_rawm_step(p_ref, x, labels, g.T, lambda p: q)
    np.testing.assert_allclose(state.projector, p_ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(updates["classifier"]["kernel"], g_torch.T,
                               rtol=1e-4, atol=1e-5)


class JitTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_equals_no_jit(self):
    tx = rawm_lib.rawm()
    state = _learned_state(tx, _params())
    labels = jnp.array([0, 1, 1])
    features = jnp.asarray(np.random.default_rng(6).normal(size=(3, D)),
                           jnp.float32)
    update = self.variant(lambda g, s, f, y: tx.update(g, s, features=f,
                                                       labels=y))
    out = update(_grads(), state, features, labels)
    ref = tx.update(_grads(), state, features=features, labels=labels)
    chex.assert_trees_all_close(out, ref, rtol=1e-5, atol=1e-6)


def test_state_survives_orbax_round_trip(tmp_path):
  tx = optax.chain(rawm_lib.rawm(), optax.sgd(0.1))
  state = _learned_state(tx, _params())
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "ckpt", state)
  checkpointer.wait_until_finished()
  restored = checkpointer.restore(tmp_path / "ckpt", target=state)
  chex.assert_trees_all_equal(restored, state)
  assert int(optax.tree.get(restored, "RAWMState").task_count) == 1
