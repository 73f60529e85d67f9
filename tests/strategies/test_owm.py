"""OWM as an optax transform (cljax.strategies.owm)."""

from __future__ import annotations

import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

# The package exports the factory under the module's name
# (cljax.strategies.owm is the function), so take the module itself.
owm_lib = importlib.import_module("cljax.strategies.owm")


D, C = 8, 2


def _params():
  return {"embed": {"kernel": jnp.ones((3, D)), "bias": jnp.zeros(D)},
          "classifier": {"kernel": jnp.ones((D, C)), "bias": jnp.zeros(C)}}


def _grads(seed=0):
  key = jax.random.PRNGKey(seed)
  return jax.tree.map(lambda x: jax.random.normal(key, x.shape), _params())


@pytest.mark.parametrize("schedule", ["past", "online"])
def test_updates_leave_learned_inputs_outputs_unchanged(schedule):
  # Learn inputs spanning a 3-D subspace of R^8 (each row a batch of one,
  # repeated), then an update dW = P G leaves X W unchanged: ||X dW|| ~ 0.
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(3, D)), jnp.float32)
  tx = owm_lib.owm(projector_schedule=schedule, alpha=1e-3)
  state = tx.init(_params())
  labels = jnp.zeros(1, jnp.int32)
  for _ in range(3):
    for row in x:
      _, state = tx.update(_grads(), state, features=row[None], labels=labels)
  state = owm_lib.commit(state)
  # A new input, orthogonal to nothing in particular.
  grads = _grads(5)
  updates, _ = tx.update(grads, state,
                         features=jnp.asarray(rng.normal(size=(4, D)),
                                              jnp.float32),
                         labels=jnp.zeros(4, jnp.int32))
  delta = updates["classifier"]["kernel"]
  plain = grads["classifier"]["kernel"]
  ratio = jnp.linalg.norm(x @ delta) / jnp.linalg.norm(x @ plain)
  assert float(ratio) < 1e-2, ratio
  # The projection is not the zero map: directions outside span(X) survive.
  assert float(jnp.linalg.norm(delta)) > 0.3 * float(jnp.linalg.norm(plain))
  # Everything but the classifier kernel passes through unchanged.
  np.testing.assert_array_equal(updates["classifier"]["bias"],
                                grads["classifier"]["bias"])
  np.testing.assert_array_equal(updates["embed"]["kernel"],
                                grads["embed"]["kernel"])


def test_past_schedule_freezes_p_within_a_task():
  tx = owm_lib.owm(projector_schedule="past")
  state = tx.init(_params())
  grads = _grads()
  features = jnp.ones((4, D))
  updates, state = tx.update(grads, state, features=features,
                             labels=jnp.zeros(4, jnp.int32))
  # First task: P = I, so the gradient is untouched; pending learned.
  np.testing.assert_array_equal(updates["classifier"]["kernel"],
                                grads["classifier"]["kernel"])
  np.testing.assert_array_equal(state.projector, np.eye(D))
  assert float(jnp.abs(state.pending_projector - jnp.eye(D)).max()) > 0.01


def official_owm(p, x, g_torch):
  r = x.mean(0, keepdims=True)
  k = p @ r.T
  p = p - (k @ k.T) / (1.0 + k @ r)
  p = p / np.linalg.norm(p, "fro")
  return p, g_torch @ p.T


def test_faithful_matches_the_official_code_and_skips_task_one():
  rng = np.random.default_rng(2)
  tx = owm_lib.owm(mode="faithful")
  params = _params()
  state = tx.init(params)
  p_ref = np.eye(D, dtype=np.float32)
  for task in range(2):
    for _ in range(3):
      x = rng.normal(size=(6, D)).astype(np.float32)
      g = rng.normal(size=(D, C)).astype(np.float32)
      grads = {**_grads(), "classifier": {"kernel": jnp.asarray(g),
                                          "bias": jnp.ones(C)}}
      updates, state = jax.jit(tx.update)(grads, state, features=x,
                                          labels=jnp.zeros(6, jnp.int32))
      if task == 0:
        expected = g
      else:
        p_ref, g_torch = official_owm(p_ref, x, g.T)
        expected = g_torch.T
      np.testing.assert_allclose(updates["classifier"]["kernel"], expected,
                                 rtol=2e-5, atol=2e-6)
      np.testing.assert_allclose(state.projector, p_ref, rtol=2e-5, atol=2e-6)
    state = owm_lib.commit(state)


class JitTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_equals_no_jit(self):
    tx = owm_lib.owm(projector_schedule="online")
    state = tx.init(_params())
    features = jnp.asarray(np.random.default_rng(3).normal(size=(4, D)),
                           jnp.float32)
    update = self.variant(lambda g, s, f: tx.update(
        g, s, features=f, labels=jnp.zeros(4, jnp.int32)))
    updates, new_state = update(_grads(), state, features)
    reference, ref_state = tx.update(_grads(), state, features=features,
                                     labels=jnp.zeros(4, jnp.int32))
    chex.assert_trees_all_close(updates, reference, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(new_state, ref_state, rtol=1e-5, atol=1e-6)


def test_state_survives_orbax_round_trip(tmp_path):
  tx = optax.chain(owm_lib.owm(), optax.adam(1e-3))
  state = tx.init(_params())
  _, state = tx.update(_grads(), state, _params(), features=jnp.ones((2, D)),
                       labels=jnp.zeros(2, jnp.int32))
  state = owm_lib.commit(state)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "ckpt", state)
  checkpointer.wait_until_finished()
  restored = checkpointer.restore(tmp_path / "ckpt", target=state)
  chex.assert_trees_all_equal(restored, state)
  assert isinstance(optax.tree.get(restored, "OWMState"), owm_lib.OWMState)
