"""RWM as an optax transform and as a cljax strategy (cljax.strategies.rwm)."""

from __future__ import annotations

import importlib
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from cli_helpers import run_cli
from cljax.state import create_train_state
from cljax.strategies import _projection
from cljax.strategies.base import StrategyContext, TaskContext

# The package exports the factory under the module's name
# (cljax.strategies.rwm is the function), so take the module itself.
rwm_lib = importlib.import_module("cljax.strategies.rwm")

D, C = 6, 2


def _params(c=C):
  return {"body": {"kernel": jnp.ones((2, D))},
          "classifier": {"kernel": jnp.ones((D, c)), "bias": jnp.zeros(c)}}


def _grads(seed=0, c=C):
  key = jax.random.PRNGKey(seed)
  return jax.tree.map(lambda x: jax.random.normal(key, x.shape), _params(c))


def _logits_with_true_class(z, labels, c=C):
  """Logits whose true-class entries are z (others -5)."""
  logits = np.full((len(z), c), -5.0, np.float32)
  logits[np.arange(len(z)), labels] = z
  return jnp.asarray(logits)


def _learned_state(tx, c=C, seed=8):
  state = tx.init(_params(c))
  rng = np.random.default_rng(seed)
  for _ in range(3):
    labels = jnp.asarray(rng.integers(0, c, size=4))
    _, state = tx.update(_grads(c=c), state,
                         features=jnp.asarray(rng.normal(size=(4, D)),
                                              jnp.float32),
                         labels=labels,
                         logits=jnp.asarray(rng.normal(size=(4, c)),
                                            jnp.float32))
  return rwm_lib.commit(state)


def test_angle_and_beta_hand_computed():
  # Two genuine samples with true-class logits 0 and ln 3: the batch softmax
  # is (1/4, 3/4), theta = pi/4 + (asin(1/4) + asin(3/4)) / 2.
  labels = jnp.array([0, 0])
  logits = _logits_with_true_class([0.0, math.log(3.0)], [0, 0])
  angles = rwm_lib.rwm_angles(logits, labels, rwm_lib.default_signs(2))
  theta = math.pi / 4 + (math.asin(0.25) + math.asin(0.75)) / 2
  np.testing.assert_allclose(angles["theta"], theta, rtol=1e-6)
  np.testing.assert_allclose(angles["beta"], math.tan(theta), rtol=1e-5)
  # A balanced, equally confident batch: theta = pi/4, beta = 1.
  labels = jnp.array([0, 1, 0, 1])
  logits = _logits_with_true_class([2.0] * 4, [0, 1, 0, 1])
  angles = rwm_lib.rwm_angles(logits, labels, rwm_lib.default_signs(2))
  np.testing.assert_allclose(angles["beta"], 1.0, rtol=1e-6)
  # Mixed: genuine z=1, fakes z=0, 0: softmax (e, 1, 1) / (e + 2).
  labels = jnp.array([0, 1, 1])
  logits = _logits_with_true_class([1.0, 0.0, 0.0], [0, 1, 1])
  s = np.array([math.e, 1.0, 1.0]) / (math.e + 2)
  theta = math.pi / 4 + (math.asin(s[0]) - 2 * math.asin(s[1])) / 2
  angles = rwm_lib.rwm_angles(logits, labels, rwm_lib.default_signs(2))
  np.testing.assert_allclose(angles["beta"], math.tan(theta), rtol=1e-5)
  # Per class: theta_c = pi/4 + s_c/2 * sum of that class's thetas.
  np.testing.assert_allclose(
      angles["class_theta"],
      [math.pi / 4 + math.asin(s[0]) / 2,
       math.pi / 4 - math.asin(s[1])], rtol=1e-6)


def test_angle_center_and_default_signs_for_more_classes():
  labels = jnp.array([0, 1])
  logits = _logits_with_true_class([0.0, 0.0], [0, 1])
  angles = rwm_lib.rwm_angles(logits, labels, rwm_lib.default_signs(2),
                              angle_center=0.3)
  np.testing.assert_allclose(angles["beta"], math.tan(0.3), rtol=1e-6)
  # Signs default to the kernel's classes: genuine +1, the rest -1.
  state = rwm_lib.rwm().init(_params(4))
  np.testing.assert_array_equal(state.signs, [1.0, -1.0, -1.0, -1.0])


def test_signs_flip_the_direction_as_the_paper_says():
  # All-genuine batch: genuine (+1) turns towards Q/plasticity (beta > 1);
  # flipping the sign mirrors the angle about pi/4: beta -> 1 / beta.
  labels = jnp.array([0, 0, 0])
  logits = _logits_with_true_class([0.3, -1.0, 2.0], [0, 0, 0])
  paper = rwm_lib.rwm_angles(logits, labels, jnp.array([1.0, -1.0]))
  flipped = rwm_lib.rwm_angles(logits, labels, jnp.array([-1.0, 1.0]))
  assert float(paper["beta"]) > 1.0 > float(flipped["beta"])
  np.testing.assert_allclose(paper["beta"] * flipped["beta"], 1.0, rtol=1e-5)
  # All-fake batch with the paper's signs: towards P/stability.
  fakes = rwm_lib.rwm_angles(logits, jnp.array([1, 1, 1]),
                             jnp.array([1.0, -1.0]))
  assert float(fakes["beta"]) < 1.0
  # And the modified gradient follows: beta > 1 amplifies the Q = I - P
  # component, beta < 1 shrinks it.
  tx_paper = rwm_lib.rwm(signs=[1, -1])
  tx_flip = rwm_lib.rwm(signs=[-1, 1])
  state_paper, state_flip = _learned_state(tx_paper), _learned_state(tx_flip)
  grads = _grads(3)
  g = grads["classifier"]["kernel"]
  q_part = g - state_paper.projector @ g
  kw = dict(features=jnp.ones((3, D)), labels=labels, logits=logits)
  up_paper, _ = tx_paper.update(grads, state_paper, **kw)
  up_flip, _ = tx_flip.update(grads, state_flip, **kw)
  proj = lambda u: float(jnp.vdot(u["classifier"]["kernel"], q_part))
  assert proj(up_paper) > float(jnp.vdot(g, q_part)) > proj(up_flip)


@pytest.mark.parametrize("mode", ["well_posed", "faithful"])
@pytest.mark.parametrize("label", [0, 1])
def test_per_class_reduces_to_single_angle_on_a_one_class_batch(mode, label):
  schedule = None if mode == "faithful" else "online"
  single = rwm_lib.rwm(mode=mode, projector_schedule=schedule)
  split = rwm_lib.rwm(mode=mode, projector_schedule=schedule, per_class=True)
  state = _learned_state(single)
  rng = np.random.default_rng(9)
  features = jnp.asarray(rng.normal(size=(5, D)), jnp.float32)
  labels = jnp.full(5, label)
  params = _params()
  logits = (features @ jnp.asarray(rng.normal(size=(D, C)), jnp.float32))
  grads = _grads(4)
  a, _ = single.update(grads, state, features=features, labels=labels,
                       logits=logits)
  b, _ = split.update(grads, state, features=features, labels=labels,
                      logits=logits)
  del params
  np.testing.assert_allclose(a["classifier"]["kernel"],
                             b["classifier"]["kernel"], rtol=1e-5, atol=1e-6)


def test_per_class_rotates_each_class_part_by_its_own_angle():
  c = 3
  rng = np.random.default_rng(10)
  features = jnp.asarray(rng.normal(size=(6, D)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(D, c)), jnp.float32)
  labels = jnp.array([0, 1, 2, 0, 2, 2])
  logits = features @ kernel

  def part(mask):
    return jax.grad(lambda w: jnp.sum(
        optax.softmax_cross_entropy_with_integer_labels(features @ w, labels)
        * mask) / 6)(kernel)

  tx = rwm_lib.rwm(num_classes=c, per_class=True)
  state = _learned_state(rwm_lib.rwm(num_classes=c), c=c)
  ce_grad = part(1.0)
  grads = {"body": {"kernel": jnp.zeros((2, D))},
           "classifier": {"kernel": ce_grad, "bias": jnp.zeros(c)}}
  updates, _ = tx.update(grads, state, features=features, labels=labels,
                         logits=logits)
  betas = rwm_lib.rwm_angles(logits, labels,
                             rwm_lib.default_signs(c))["class_beta"]
  p = state.projector
  expected = sum(betas[k] * part((labels == k) * 1.0)
                 + (1 - betas[k]) * p @ part((labels == k) * 1.0)
                 for k in range(c))
  np.testing.assert_allclose(updates["classifier"]["kernel"], expected,
                             rtol=1e-4, atol=1e-6)
  assert len(set(np.round(np.asarray(betas), 4))) == 3


def test_nan_cases_are_defined():
  # Logits far past exp's range, a one-class batch, and an absent class.
  labels = jnp.array([1, 1, 1])
  logits = _logits_with_true_class([1e4, 3e3, -2e4], [1, 1, 1])
  for mode, schedule in (("well_posed", "past"), ("faithful", None)):
    angles = rwm_lib.rwm_angles(
        logits, labels, rwm_lib.default_signs(2),
        None if mode == "faithful" else rwm_lib.DEFAULT_ANGLE_EPS)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(angles))
    np.testing.assert_allclose(angles["class_beta"][0], 1.0)  # absent class
    for per_class in (False, True):
      tx = rwm_lib.rwm(mode=mode, projector_schedule=schedule,
                       per_class=per_class)
      updates, state = tx.update(_grads(), _learned_state(tx),
                                 features=jnp.ones((3, D)), labels=labels,
                                 logits=logits)
      assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(updates))
  # One dominant genuine logit: the well-posed angle is clipped.
  angles = rwm_lib.rwm_angles(_logits_with_true_class([50.0, 0.0], [0, 0]),
                              jnp.array([0, 0]), rwm_lib.default_signs(2))
  np.testing.assert_allclose(
      angles["beta"], math.tan(math.pi / 2 - rwm_lib.DEFAULT_ANGLE_EPS),
      rtol=1e-4)


def official_rwm_step(p, x, z, target2ti, g_torch, q):
  exp_cell = np.exp(z)
  sin_thetas = exp_cell / exp_cell.sum()
  thetas = np.arcsin(sin_thetas)
  theta_m = np.pi / 4 + (thetas * target2ti).sum() / 2
  beta = np.tan(theta_m)
  r = x.mean(0, keepdims=True)
  k = p @ r.T
  p = p - (k @ k.T) / (1.0 + k @ r)
  p = p / np.linalg.norm(p, "fro")
  return p, g_torch @ (p + beta * q).T


def test_faithful_matches_the_official_code():
  rng = np.random.default_rng(11)
  tx = rwm_lib.rwm(mode="faithful")
  state = tx.init(_params())
  p_ref = np.eye(D, dtype=np.float32)
  for task in range(2):
    for _ in range(3):
      x = rng.normal(size=(5, D)).astype(np.float32)
      labels = rng.integers(0, 2, size=5)
      logits = rng.normal(size=(5, C)).astype(np.float32) * 2
      g = rng.normal(size=(D, C)).astype(np.float32)
      grads = {"body": {"kernel": jnp.ones((2, D))},
               "classifier": {"kernel": jnp.asarray(g), "bias": jnp.ones(C)}}
      updates, state = tx.update(grads, state, features=jnp.asarray(x),
                                 labels=jnp.asarray(labels),
                                 logits=jnp.asarray(logits))
      if task == 0:   # The first task is skipped, as officially.
        np.testing.assert_array_equal(updates["classifier"]["kernel"], g)
        continue
      z = logits[np.arange(5), labels]
      target2ti = np.where(labels == 0, 1.0, -1.0)
      # Q is round-off of P: take it from the transform's P (checked below).
      q = np.asarray(_projection.faithful_q(state.projector))
      p_ref, g_torch = official_rwm_step(p_ref, x, z, target2ti, g.T, q)
      np.testing.assert_allclose(state.projector, p_ref, rtol=2e-5, atol=2e-6)
      np.testing.assert_allclose(updates["classifier"]["kernel"], g_torch.T,
                                 rtol=1e-4, atol=1e-5)
      np.testing.assert_array_equal(updates["classifier"]["bias"], np.ones(C))
    state = rwm_lib.commit(state)


def test_beta_one_is_the_plain_gradient_exactly():
  tx = rwm_lib.rwm()
  state = _learned_state(tx)
  grads = _grads(2)
  updates, _ = tx.update(
      grads, state, features=jnp.ones((4, D)), labels=jnp.array([0, 1, 0, 1]),
      logits=_logits_with_true_class([1.0] * 4, [0, 1, 0, 1]))
  np.testing.assert_array_equal(updates["classifier"]["kernel"],
                                grads["classifier"]["kernel"])


class JitTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_equals_no_jit(self):
    rng = np.random.default_rng(12)
    features = jnp.asarray(rng.normal(size=(4, D)), jnp.float32)
    labels = jnp.array([0, 1, 1, 0])
    logits = jnp.asarray(rng.normal(size=(4, C)), jnp.float32)
    for kwargs in ({}, {"per_class": True}, {"projector_schedule": "online"},
                   {"mode": "faithful"}):
      tx = rwm_lib.rwm(**kwargs)
      state = _learned_state(tx)
      update = self.variant(lambda g, s, f, y, o, tx=tx: tx.update(
          g, s, features=f, labels=y, logits=o))
      out = update(_grads(), state, features, labels, logits)
      ref = tx.update(_grads(), state, features=features, labels=labels,
                      logits=logits)
      chex.assert_trees_all_close(out, ref, rtol=1e-5, atol=1e-6)


def test_vmap_over_independent_models():
  tx = rwm_lib.rwm(per_class=True)
  rng = np.random.default_rng(13)
  states = [_learned_state(tx, seed=s) for s in range(3)]
  grads = [_grads(s) for s in range(3)]
  features = jnp.asarray(rng.normal(size=(3, 4, D)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 2, size=(3, 4)))
  logits = jnp.asarray(rng.normal(size=(3, 4, C)), jnp.float32)
  stack = lambda trees: jax.tree.map(lambda *x: jnp.stack(x), *trees)
  out, new_states = jax.vmap(lambda g, s, f, y, o: tx.update(
      g, s, features=f, labels=y, logits=o))(stack(grads), stack(states),
                                             features, labels, logits)
  for i in range(3):
    ref, ref_state = tx.update(grads[i], states[i], features=features[i],
                               labels=labels[i], logits=logits[i])
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], out), ref,
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], new_states),
                                ref_state, rtol=1e-5, atol=1e-6)


def test_state_survives_orbax_round_trip(tmp_path):
  tx = optax.chain(optax.clip_by_global_norm(1.0), rwm_lib.rwm(signs=[1, -1]),
                   optax.adam(1e-3))
  state = _learned_state(tx)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "ckpt", state)
  checkpointer.wait_until_finished()
  restored = checkpointer.restore(tmp_path / "ckpt", target=state)
  chex.assert_trees_all_equal(restored, state)
  found = optax.tree.get(restored, "RWMState")
  assert int(found.task_count) == 1
  np.testing.assert_array_equal(found.signs, [1.0, -1.0])


def test_signs_from_spread():
  # Class 0: unit vectors all along e1 (spread 0); class 1: e1 and -e1
  # cancel (spread 1) -> genuine compact +1, fake spread -1.
  sums = np.array([[3.0, 0.0], [0.0, 0.0]])
  counts = np.array([3.0, 2.0])
  signs, spread = rwm_lib.signs_from_spread(sums, counts,
                                            np.array([-1.0, 1.0]))
  np.testing.assert_allclose(spread, [0.0, 1.0])
  np.testing.assert_array_equal(signs, [1.0, -1.0])
  # The reverse geometry flips them.
  signs, _ = rwm_lib.signs_from_spread(sums[::-1], counts[::-1],
                                       np.array([1.0, -1.0]))
  np.testing.assert_array_equal(signs, [-1.0, 1.0])
  # An absent class keeps its sign; one class present: nothing to compare.
  signs, _ = rwm_lib.signs_from_spread(np.array([[1.0, 0.0], [0.0, 0.0]]),
                                       np.array([1.0, 0.0]),
                                       np.array([-1.0, 1.0]))
  np.testing.assert_array_equal(signs, [-1.0, 1.0])


class _TinyModel(nn.Module):

  @nn.compact
  def __call__(self, x, train=False):
    del train
    embedding = nn.relu(nn.Dense(D, name="embed")(x))
    return nn.Dense(C, name="classifier")(embedding), embedding


def test_end_task_commits_and_measures_signs_inside_the_train_state():
  model = _TinyModel()
  params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))["params"]
  context = StrategyContext(model=model, num_classes=C, num_tasks=2,
                            frontend=lambda audio: audio)
  strategy = rwm_lib.make(context, signs="measured")
  tx = optax.chain(optax.clip_by_global_norm(1.0), strategy.tx,
                   optax.adam(1e-3))
  state = create_train_state(params=params, batch_stats={}, tx=tx,
                             strategy_state={}, rng=jax.random.PRNGKey(1))
  rng = np.random.default_rng(14)
  x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
  labels = jnp.array([0, 1] * 4)
  logits, embedding = model.apply({"params": params}, x)
  _, opt_state = tx.update(jax.tree.map(jnp.ones_like, params),
                           state.opt_state, params, features=embedding,
                           labels=labels, logits=logits)
  state = state.replace(opt_state=opt_state)
  before = optax.tree.get(state.opt_state, "RWMState")
  # Genuine inputs all the same (compact), fakes spread widely.
  genuine = np.tile([[1.0, 0.5, 0.2]], (6, 1))
  fakes = rng.normal(size=(6, 3)) * 3
  audio = jnp.asarray(np.concatenate([genuine, fakes]), jnp.float32)
  batch = {"audio": audio, "label": jnp.array([0] * 6 + [1] * 6),
           "mask": jnp.ones(12, bool)}
  seen = []

  def batches(split, task_ids):
    seen.append((split, tuple(task_ids)))
    return [batch]

  task = TaskContext(task_id=0, task_name="t0", num_tasks=2, model=model,
                     frontend=lambda a: a, batches=batches)
  state = strategy.end_task(state, task)
  after = optax.tree.get(state.opt_state, "RWMState")
  np.testing.assert_array_equal(after.projector, before.pending_projector)
  assert int(after.task_count) == 1
  assert seen == [("val", (0,))]
  np.testing.assert_array_equal(after.signs, [1.0, -1.0])


def test_config_errors_name_the_field():
  context = StrategyContext(model=None, num_classes=2, num_tasks=2,
                            frontend=None)
  with pytest.raises(ValueError, match="config.strategy.signs"):
    rwm_lib.make(context, signs=[1, 1, -1])
  with pytest.raises(ValueError, match="config.strategy.mode"):
    rwm_lib.make(context, mode="exact")
  with pytest.raises(ValueError, match="config.strategy.projector_schedule"):
    rwm_lib.make(context, mode="faithful", projector_schedule="past")


def test_rwm_audio_small_runs_end_to_end(tmp_path):
  workdir = tmp_path / "rwm-small"
  run_cli("cljax.main", "--config=configs/rwm_audio.py:small",
          "--config.data.stream.num_tasks=2", f"--workdir={workdir}")
  import json  # pylint: disable=g-import-not-at-top
  results = json.loads((workdir / "results" / "results.json").read_text())
  assert results["method"] == "rwm" and results["tasks_done"] == 2
  assert 0.0 <= results["summaries"]["eer"]["average_final"] <= 1.0
