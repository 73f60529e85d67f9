"""EWC: the penalty gradient, consolidation, the Fisher, the cljax hooks."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.ewc import (EWCState, consolidate, ewc, find_ewc_state,
                                  fisher_diagonal, make, penalty,
                                  replace_ewc_state)


def _params(seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  return {"hidden0": {"kernel": jax.random.normal(keys[0], (4, 3)),
                      "bias": jax.random.normal(keys[1], (3,))},
          "classifier": {"kernel": jax.random.normal(keys[2], (3, 2)),
                         "bias": jax.random.normal(keys[3], (2,))}}


def _random_like(tree, seed, positive=False):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  new = [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]
  if positive:
    new = [jnp.abs(x) for x in new]
  return jax.tree.unflatten(treedef, new)


class EWCUpdateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_added_term_is_the_gradient_of_the_quadratic_penalty(self):
    params = _params()
    state = EWCState(fisher=_random_like(params, 1, positive=True),
                     anchor=_random_like(params, 2))
    grads = _random_like(params, 3)
    tx = ewc(strength=2.5)
    updates, new_state = self.variant(tx.update)(grads, state, params)
    expected = jax.grad(lambda p: penalty(state, p, 2.5))(params)
    chex.assert_trees_all_close(
        jax.tree.map(jnp.subtract, updates, grads), expected, rtol=1e-5)
    chex.assert_trees_all_equal(new_state, state)

  @chex.variants(with_jit=True, without_jit=True)
  def test_fresh_state_is_the_identity(self):
    params = _params()
    tx = ewc(strength=10.0)
    grads = _random_like(params, 3)
    updates, _ = self.variant(tx.update)(grads, tx.init(params), params)
    chex.assert_trees_all_equal(updates, grads)


def test_separate_mode_has_the_gradient_of_the_per_task_sum():
  params = _params()
  tx = ewc(strength=1.5)
  state = tx.init(params)
  fishers = [_random_like(params, 10 + k, positive=True) for k in range(3)]
  anchors = [_random_like(params, 20 + k) for k in range(3)]
  for fisher, anchor in zip(fishers, anchors):
    state = consolidate(state, fisher, anchor, mode="separate")
  theta = _random_like(params, 99)

  def per_task_sum(p):
    return sum(penalty(EWCState(f, a), p, 1.5)
               for f, a in zip(fishers, anchors))

  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(grads, state, theta)
  chex.assert_trees_all_close(updates, jax.grad(per_task_sum)(theta),
                              rtol=1e-4, atol=1e-5)


def test_online_accumulation_matches_the_recurrence_over_three_tasks():
  params = _params()
  state = ewc().init(params)
  fishers = [_random_like(params, 30 + k, positive=True) for k in range(3)]
  thetas = [_random_like(params, 40 + k) for k in range(3)]
  for fisher, theta in zip(fishers, thetas):
    state = consolidate(state, fisher, theta, mode="online", decay=0.1)
  # F3 = g (g F1 + F2) + F3.
  expected = jax.tree.map(lambda a, b, c: 0.1 * (0.1 * a + b) + c, *fishers)
  chex.assert_trees_all_close(state.fisher, expected, rtol=1e-6)
  chex.assert_trees_all_equal(state.anchor, thetas[-1])


def test_update_without_params_is_an_error():
  params = _params()
  tx = ewc()
  with pytest.raises(ValueError, match="needs the current parameters"):
    tx.update(params, tx.init(params))


def test_param_filter_penalises_only_the_selected_parameters():
  params = _params()
  tx = ewc(strength=3.0, param_filter=lambda path, _: "classifier" in path)
  state = tx.init(params)
  inner = find_ewc_state(state)
  assert isinstance(inner.fisher["hidden0"]["kernel"], optax.MaskedNode)
  new = consolidate(inner, _random_like(params, 5, positive=True), params)
  state = replace_ewc_state(state, new)
  theta = _random_like(params, 6)
  grads = _random_like(params, 7)
  updates, _ = tx.update(grads, state, theta)
  chex.assert_trees_all_equal(updates["hidden0"], grads["hidden0"])
  fisher = new.fisher["classifier"]["kernel"]
  np.testing.assert_allclose(
      updates["classifier"]["kernel"],
      grads["classifier"]["kernel"] + 3.0 * fisher * (
          theta["classifier"]["kernel"] - params["classifier"]["kernel"]),
      rtol=1e-5)


class _Tiny(nn.Module):
  """A model with batch norm, to check the Fisher uses running statistics."""

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.Dense(5, name="hidden")(x)
    h = nn.BatchNorm(use_running_average=not train, name="bn")(h)
    h = nn.tanh(h)
    return nn.Dense(3, name="classifier")(h), h


def _tiny_setup():
  model = _Tiny()
  x = jax.random.normal(jax.random.PRNGKey(0), (10, 4))
  variables = model.init(jax.random.PRNGKey(1), x)
  # Non-trivial running statistics.
  variables = {"params": variables["params"], "batch_stats": jax.tree.map(
      lambda s: s + 0.3, variables["batch_stats"])}
  labels = jnp.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 0])
  return model, variables, x, labels


def test_empirical_fisher_equals_a_per_example_loop_and_respects_the_mask():
  model, variables, x, labels = _tiny_setup()

  def logits_fn(params, inputs, batch_stats):
    return model.apply({"params": params, "batch_stats": batch_stats},
                       inputs)[0]

  mask = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 1], bool)
  batches = [{"inputs": x[:6], "label": labels[:6], "mask": mask[:6]},
             {"inputs": x[6:], "label": labels[6:], "mask": mask[6:]}]
  fisher = fisher_diagonal(logits_fn, variables["params"], batches,
                           constants=(variables["batch_stats"],))
  expected = jax.tree.map(jnp.zeros_like, variables["params"])
  for i in np.flatnonzero(mask):
    def log_lik(p):
      logits = logits_fn(p, x[i:i + 1], variables["batch_stats"])
      return jax.nn.log_softmax(logits)[0, labels[i]]
    g = jax.grad(log_lik)(variables["params"])
    expected = jax.tree.map(lambda e, gi: e + gi ** 2, expected, g)
  expected = jax.tree.map(lambda e: e / mask.sum(), expected)
  chex.assert_trees_all_close(fisher, expected, rtol=1e-5, atol=1e-7)


def test_sampled_fisher_has_the_expected_value():
  # Softmax regression on one input: E_y~p[(d log p_y / dW)^2] has the closed
  # form sum_y p_y ((onehot_y - p) x)^2.
  w = jnp.array([[0.5, -0.3, 0.1], [0.2, 0.4, -0.6]])
  x = jnp.array([1.0, -2.0])
  logits_fn = lambda params, inputs: inputs @ params["w"]  # noqa: E731
  p = jax.nn.softmax(x @ w)
  expected = sum(p[y] * (jnp.outer(x, jax.nn.one_hot(y, 3) - p)) ** 2
                 for y in range(3))
  n = 4000
  batches = [{"inputs": jnp.tile(x, (1000, 1)),
              "label": jnp.zeros(1000, jnp.int32)} for _ in range(n // 1000)]
  sampled = fisher_diagonal(logits_fn, {"w": w}, batches, sampled=True,
                            rng=jax.random.PRNGKey(0))
  np.testing.assert_allclose(sampled["w"], expected, rtol=0.08, atol=1e-3)
  # The empirical Fisher with label 0 is a different number: the test can
  # tell the two apart.
  empirical = fisher_diagonal(logits_fn, {"w": w}, batches[:1])
  assert not np.allclose(empirical["w"], expected, rtol=0.08, atol=1e-3)


def test_fisher_with_no_data_is_an_error():
  logits_fn = lambda params, inputs: inputs @ params  # noqa: E731
  with pytest.raises(ValueError, match="no data"):
    fisher_diagonal(logits_fn, jnp.ones((2, 2)), [])
  with pytest.raises(ValueError, match="no data"):
    fisher_diagonal(logits_fn, jnp.ones((2, 2)),
                    [{"inputs": jnp.ones((3, 2)), "label": jnp.zeros(3, int),
                      "mask": np.zeros(3, bool)}])


def _cljax_setup(batches_fn, **fields):
  model = MLP(num_classes=2, hidden_sizes=(6,))
  frontend = lambda audio: audio.astype(jnp.float32)  # noqa: E731
  strategy = make(StrategyContext(model=model, num_classes=2, num_tasks=2,
                                  frontend=frontend), **fields)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), strategy.tx,
                   optax.adam(1e-2))
  state = create_train_state(params=params, batch_stats={}, tx=tx,
                             strategy_state={}, rng=jax.random.PRNGKey(2))
  # Move Adam off its initial state so "untouched" means something.
  grads = jax.tree.map(jnp.ones_like, params)
  _, opt_state = tx.update(grads, state.opt_state, params)
  state = state.replace(opt_state=opt_state)
  context = TaskContext(task_id=1, task_name="b", num_tasks=2, model=model,
                        frontend=frontend, batches=batches_fn)
  return model, strategy, tx, state, context


def test_end_task_writes_the_fisher_into_a_real_chain_state():
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 4))
  y = jnp.array([[0, 1] * 4, [1, 1, 0, 0] * 2])
  requested = []

  def batches(split, task_ids):
    requested.append((split, tuple(task_ids)))
    return [{"audio": x[t], "label": y[t], "mask": np.ones(8, bool)}
            for t in task_ids]

  model, strategy, tx, state, context = _cljax_setup(
      batches, strength=4.0, fisher_split="val", fisher_tasks="all_seen")
  new_state = strategy.end_task(state, context)
  assert requested == [("val", (0, 1))]
  logits_fn = lambda p, a: model.apply({"params": p}, a)[0]  # noqa: E731
  fisher = fisher_diagonal(logits_fn, state.params, batches("val", (0, 1)),
                           input_key="audio")
  expected = consolidate(find_ewc_state(state.opt_state), fisher,
                         state.params)
  chex.assert_trees_all_close(find_ewc_state(new_state.opt_state), expected,
                              rtol=1e-5, atol=1e-8)
  assert float(optax.tree.norm(expected.fisher)) > 0
  # Clip and Adam states are untouched; the structure is unchanged.
  assert (jax.tree.structure(new_state.opt_state)
          == jax.tree.structure(state.opt_state))
  chex.assert_trees_all_equal(new_state.opt_state[0], state.opt_state[0])
  chex.assert_trees_all_equal(new_state.opt_state[2], state.opt_state[2])
  # The step then applies the penalty.
  moved = jax.tree.map(lambda p: p + 0.1, state.params)
  zeros = jax.tree.map(jnp.zeros_like, state.params)
  updates, _ = strategy.tx.update(zeros, new_state.opt_state[1], moved)
  chex.assert_trees_all_close(updates, jax.tree.map(
      lambda f: 4.0 * f * 0.1, expected.fisher), rtol=1e-4, atol=1e-7)


def test_end_task_with_an_empty_split_names_the_config_field():
  _, strategy, _, state, context = _cljax_setup(lambda split, ids: iter(()))
  with pytest.raises(ValueError, match="fisher_split"):
    strategy.end_task(state, context)


def test_state_survives_an_orbax_save_and_restore(tmp_path):
  params = _params()
  tx = optax.chain(
      ewc(2.0, param_filter=lambda path, _: "kernel" in path),
      optax.adam(1e-3))
  opt_state = tx.init(params)
  new = consolidate(find_ewc_state(opt_state),
                    _random_like(params, 1, positive=True),
                    _random_like(params, 2))
  opt_state = replace_ewc_state(opt_state, new)
  path = tmp_path / "ckpt"
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path, opt_state)
    checkpointer.wait_until_finished()
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, opt_state)
    restored = checkpointer.restore(path, target)
  chex.assert_trees_all_equal(find_ewc_state(restored), new)
  grads = _random_like(params, 3)
  chex.assert_trees_all_equal(tx.update(grads, restored, params)[0],
                              tx.update(grads, opt_state, params)[0])


def test_the_loop_runs_ewc_small_end_to_end(tmp_path):
  from cli_helpers import run_cli
  process = run_cli("cljax.main", "--config=configs/ewc_audio.py:small",
                    f"--workdir={tmp_path / 'run'}",
                    "--config.output.progress=none",
                    "--config.output.plots=False")
  assert (tmp_path / "run" / "results" / "results.json").exists(), (
      process.stderr[-2000:])
