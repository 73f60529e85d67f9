"""iCaRL: NME classifier, exemplar memory, loss split, end_task, the loop."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import registry
from cljax.models import MLP
from cljax.replay.herding import herding
from cljax.state import create_train_state
from cljax.strategies.base import StrategyContext, TaskContext
from cljax.strategies.icarl import (class_means, make, nme_logits,
                                    plan_memory, sigmoid_bce)
from run_helpers import run_small_config


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def numpy_nme(embeddings, labels, queries, num_classes):
  phi = _unit(embeddings)
  means = np.stack([_unit(phi[labels == c].mean(0)) for c in
                    range(num_classes)])
  q = _unit(queries)
  return -((q[:, None, :] - means[None]) ** 2).sum(-1)


class NMETest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_classifies_a_toy_set_and_matches_numpy(self):
    gen = np.random.default_rng(0)
    centres = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]])
    labels = np.repeat(np.arange(3), 10)
    embeddings = centres[labels] + gen.normal(size=(30, 3)) * 0.5
    queries = centres[[2, 0, 1, 1]] * np.array([[2.0], [0.5], [1], [3]]) \
        + gen.normal(size=(4, 3)) * 0.3

    def run(e, y, q):
      means, present = class_means(e, y, 3)
      return nme_logits(q, means, present)

    logits = self.variant(run)(jnp.asarray(embeddings), jnp.asarray(labels),
                               jnp.asarray(queries))
    np.testing.assert_array_equal(np.argmax(logits, -1), [2, 0, 1, 1])
    np.testing.assert_allclose(logits, numpy_nme(embeddings, labels, queries,
                                                 3), rtol=1e-5, atol=1e-6)

  def test_a_class_without_exemplars_gets_the_largest_distance(self):
    embeddings = jnp.array([[1.0, 0.0], [2.0, 0.1]])
    means, present = class_means(embeddings, jnp.array([0, 0]), 2)
    np.testing.assert_array_equal(present, [True, False])
    np.testing.assert_array_equal(means[1], [0.0, 0.0])
    logits = nme_logits(jnp.array([[-1.0, 0.0], [0.0, 1.0]]), means, present)
    np.testing.assert_allclose(logits[:, 1], [-4.0, -4.0])
    # Even the opposite direction (distance 4) does not lose to the absent
    # class; scores stay finite.
    assert np.all(np.argmax(logits, -1) == 0)
    assert np.all(np.isfinite(logits))

  def test_padded_rows_do_not_enter_the_means(self):
    e = jnp.array([[1.0, 0.0], [0.0, 5.0], [0.0, 1.0]])
    means, _ = class_means(e, jnp.array([0, 0, 1]), 2,
                           mask=jnp.array([True, False, True]))
    np.testing.assert_allclose(means, [[1.0, 0.0], [0.0, 1.0]], atol=1e-6)


def test_plan_memory_splits_evenly_and_truncates_old_groups():
  # Two old groups of 5 rows each; a new task with 3 genuine and 7 fake.
  old_tasks = np.array([0] * 10)
  old_labels = np.array([0] * 5 + [1] * 5)
  new_labels = np.array([0] * 3 + [1] * 7)
  keep, quota = plan_memory(old_tasks, old_labels, new_labels, 1, 10)
  # 4 groups -> 2 each: the first two (herding order) of each old group.
  np.testing.assert_array_equal(keep, [0, 1, 5, 6])
  assert quota == {0: 2, 1: 2}
  # A memory larger than the data keeps all of it.
  keep, quota = plan_memory(old_tasks, old_labels, new_labels, 1, 1000)
  np.testing.assert_array_equal(keep, np.arange(10))
  assert quota == {0: 3, 1: 7}


def _context(model, batches_fn, task_id=0):
  return TaskContext(task_id=task_id, task_name=f"t{task_id}", num_tasks=2,
                     model=model, frontend=lambda a: a.astype(jnp.float32),
                     batches=batches_fn)


def _setup(memory_size=6, **fields):
  # hidden_sizes=() makes the embedding the input itself: exact checks.
  model = MLP(num_classes=2, hidden_sizes=())
  frontend = lambda a: a.astype(jnp.float32)  # noqa: E731
  strategy = make(StrategyContext(model=model, num_classes=2, num_tasks=2,
                                  frontend=frontend),
                  memory_size=memory_size, **fields)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  spec = {"audio": jax.ShapeDtypeStruct((4,), jnp.float32),
          "label": jax.ShapeDtypeStruct((), jnp.int32),
          "task": jax.ShapeDtypeStruct((), jnp.int32)}
  state = create_train_state(
      params=variables["params"], batch_stats={}, tx=optax.sgd(0.1),
      strategy_state=strategy.init_state(variables), rng=jax.random.PRNGKey(1),
      buffer=strategy.init_buffer(spec))
  return model, strategy, state


def _task_data(seed, n0, n1, length=6):
  gen = np.random.default_rng(seed)
  audio = gen.normal(size=(n0 + n1, length)).astype(np.float32)
  audio[:n0, 0] += 3.0
  audio[n0:, 1] += 3.0
  labels = np.array([0] * n0 + [1] * n1, np.int32)
  return audio, labels


def _batches(audio, labels, batch=4):
  # Fixed-size eval batches with a padding mask, as the loop yields them.
  out = []
  for start in range(0, len(labels), batch):
    a = np.zeros((batch, audio.shape[1]), np.float32)
    y = np.zeros(batch, np.int32)
    m = np.zeros(batch, bool)
    n = min(batch, len(labels) - start)
    a[:n], y[:n], m[:n] = audio[start:start + n], labels[start:start + n], True
    out.append({"audio": jnp.asarray(a), "label": jnp.asarray(y),
                "mask": jnp.asarray(m)})
  return out


def test_end_task_herds_each_group_then_reduces_and_computes_means():
  model, strategy, state = _setup(memory_size=6)
  data = {0: _task_data(0, 6, 4), 1: _task_data(1, 5, 5)}
  requested = []

  def batches_fn(split, ids):
    requested.append((split, tuple(ids)))
    return _batches(*data[ids[0]])

  state = strategy.end_task(state, _context(model, batches_fn, 0))
  assert requested == [("train", (0,))]
  audio0, labels0 = data[0]
  crop0 = audio0[:, :4]  # Eval windows cut to the buffer's crop length.
  herd = {c: np.flatnonzero(labels0 == c)[np.asarray(herding(
      jnp.asarray(crop0[labels0 == c]), 3))] for c in (0, 1)}
  assert int(state.buffer.size) == 6
  np.testing.assert_allclose(state.buffer.data["audio"],
                             crop0[np.concatenate([herd[0], herd[1]])])
  np.testing.assert_array_equal(state.buffer.data["label"], [0, 0, 0, 1, 1, 1])
  np.testing.assert_array_equal(state.buffer.data["task"], [0] * 6)
  # NME means from the exemplars (embedding = input for this model).
  ss = state.strategy_state
  assert bool(ss["nme_ready"]) and float(ss["active"]) == 1.0
  stored = np.asarray(state.buffer.data["audio"])
  expected = np.stack([_unit(_unit(stored[:3]).mean(0)),
                       _unit(_unit(stored[3:]).mean(0))])
  np.testing.assert_allclose(ss["class_means"], expected, rtol=1e-5)
  chex.assert_trees_all_equal(ss["teacher"], state.variables)

  # Task 1: 4 groups share 6 slots -> 1 each; old groups keep their first.
  state = strategy.end_task(state, _context(model, batches_fn, 1))
  audio1, labels1 = data[1]
  first1 = {c: np.flatnonzero(labels1 == c)[int(herding(
      jnp.asarray(audio1[labels1 == c, :4]), 1)[0])] for c in (0, 1)}
  assert int(state.buffer.size) == 4
  np.testing.assert_allclose(
      state.buffer.data["audio"][:4],
      np.stack([crop0[herd[0][0]], crop0[herd[1][0]],
                audio1[first1[0], :4], audio1[first1[1], :4]]))
  np.testing.assert_array_equal(state.buffer.data["task"][:4], [0, 0, 1, 1])
  np.testing.assert_array_equal(state.buffer.data["audio"][4:], 0.0)


def test_eval_logits_use_nme_after_the_first_task_end_only():
  model, strategy, state = _setup(memory_size=6)
  audio = jnp.asarray(np.random.default_rng(3).normal(size=(5, 4)),
                      jnp.float32)
  logits, embedding = model.apply(state.variables, audio)
  before = strategy.eval_logits(state.strategy_state, state.buffer, logits,
                                embedding)
  np.testing.assert_array_equal(before, logits)
  data = _task_data(0, 5, 5)
  state = strategy.end_task(state, _context(model, lambda s, i: _batches(
      *data)))
  after = strategy.eval_logits(state.strategy_state, state.buffer, logits,
                               embedding)
  ss = state.strategy_state
  np.testing.assert_allclose(after, nme_logits(embedding, ss["class_means"],
                                               ss["class_present"]))
  assert not np.allclose(after, logits)


def test_a_task_with_one_class_leaves_the_other_mean_missing():
  model, strategy, state = _setup(memory_size=6)
  data = _task_data(0, 5, 0)
  state = strategy.end_task(state, _context(model, lambda s, i: _batches(
      *data)))
  np.testing.assert_array_equal(state.strategy_state["class_present"],
                                [True, False])
  assert int(state.buffer.size) == 5  # One group: quota 6 > 5 examples.


def test_loss_terms_sum_to_bce_towards_the_mixed_target():
  model, strategy, state = _setup(distillation_weight=0.3)
  gen = np.random.default_rng(4)
  logits = jnp.asarray(gen.normal(size=(6, 2)), jnp.float32)
  labels = jnp.array([0, 1, 1, 0, 1, 0])
  features = jnp.asarray(gen.normal(size=(6, 4)), jnp.float32)
  teacher = {"params": jax.tree.map(lambda p: p + 0.5,
                                    state.variables["params"])}
  ss = dict(state.strategy_state, teacher=teacher)
  weight = jnp.asarray(gen.random(6), jnp.float32)
  weight = weight / weight.sum()
  batch = {"features": features, "label": labels, "weight": weight}
  # Task 0 (inactive): plain one-hot BCE, no distillation.
  ce = strategy.classification_loss(logits, labels, ss)
  np.testing.assert_allclose(ce, sigmoid_bce(logits, jax.nn.one_hot(
      labels, 2)), rtol=1e-6)
  extra, _ = strategy.loss(None, ss, batch, (logits, None))
  assert float(extra) == 0.0
  # Later tasks: (1 - w) BCE(onehot) + w BCE(q) = BCE((1 - w) y + w q).
  ss = dict(ss, active=jnp.ones([], jnp.float32))
  ce = strategy.classification_loss(logits, labels, ss)
  extra, aux = strategy.loss(None, ss, batch, (logits, None))
  q = jax.nn.sigmoid(model.apply(teacher, features)[0])
  target = 0.7 * jax.nn.one_hot(labels, 2) + 0.3 * q
  np.testing.assert_allclose(
      jnp.sum(weight * ce) + extra,
      jnp.sum(weight * sigmoid_bce(logits, target)), rtol=1e-5)
  assert float(aux["distillation"]) > 0


def test_replay_mixes_exemplars_with_union_weights():
  model, strategy, state = _setup(memory_size=6)
  data = _task_data(0, 3, 2)
  state = strategy.end_task(state, _context(model, lambda s, i: _batches(
      *data)))
  batch = {"audio": jnp.ones((4, 4)), "label": jnp.zeros(4, jnp.int32),
           "task": jnp.ones(4, jnp.int32)}
  mixed, buffer = jax.jit(strategy.replay, static_argnums=3)(
      state.buffer, batch, jax.random.PRNGKey(0), None)
  # 4 incoming + 4 drawn, of which 5 stored -> all 4 valid: 8 rows of 1/8.
  np.testing.assert_allclose(mixed["weight"], np.full(8, 1 / 8))
  assert mixed["audio"].shape == (8, 4)
  chex.assert_trees_all_equal(buffer, state.buffer)  # Unchanged in a task.


@pytest.mark.parametrize("fields, name", [
    ({"memory_size": 0}, "memory_size"),
    ({"memory_size": -5}, "memory_size"),
    ({"distillation_weight": 1.5}, "distillation_weight"),
    ({"replay_batch_size": 0}, "replay_batch_size")])
def test_bad_fields_are_config_errors(fields, name):
  context = StrategyContext(model=MLP(), num_classes=2, num_tasks=2,
                            frontend=lambda a: a)
  with pytest.raises(registry.ConfigError, match=name):
    make(context, **fields)


def test_the_loop_runs_icarl_small_end_to_end(tmp_path):
  run_small_config("icarl_audio", str(tmp_path / "run"))
