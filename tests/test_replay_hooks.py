"""The train and eval steps' replay hooks, and the replay memory's basics."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import registry
from cljax import replay
from cljax import step as step_lib
from cljax.models import MLP
from cljax.state import create_train_state
from cljax.strategies import Strategy

NUM_CLASSES, DIM, BATCH, MEMORY = 2, 4, 6, 10


def _setup(strategy: Strategy):
  model = MLP(num_classes=NUM_CLASSES, hidden_sizes=())
  rng = np.random.default_rng(0)
  batch = {"audio": rng.normal(size=(BATCH, DIM)).astype(np.float32),
           "label": rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32),
           "task": np.zeros(BATCH, np.int32)}
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(batch["audio"]))[
      "params"]
  tx = optax.chain(strategy.tx, optax.sgd(0.1))
  buffer = (strategy.init_buffer(replay.example_spec(batch))
            if strategy.init_buffer else None)
  state = create_train_state(params=jax.tree.map(jnp.copy, params),
                             batch_stats={}, tx=tx, strategy_state={},
                             rng=jax.random.PRNGKey(1), buffer=buffer)
  mesh = step_lib.make_mesh()
  train_step = step_lib.make_train_step(model=model, frontend=lambda a: a,
                                        strategy=strategy, tx=tx, mesh=mesh)
  return model, params, batch, state, train_step, mesh


def _per_example_ce(model, params, audio, labels):
  logits, _ = model.apply({"params": params}, jnp.asarray(audio))
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.asarray(labels))


def test_replay_hook_trains_on_the_batch_it_returns_with_its_weights():
  """A replay that appends the memory's first rows, weighted 2:1."""
  memory_audio = np.linspace(-1, 1, MEMORY * DIM, dtype=np.float32).reshape(
      MEMORY, DIM)

  def init_buffer(spec):
    buffer = replay.empty(spec, MEMORY)
    return buffer._replace(data={**buffer.data,
                                 "audio": jnp.asarray(memory_audio)},
                           size=jnp.asarray(MEMORY, jnp.int32))

  def replay_fn(buffer, batch, rng, context):
    del rng
    assert context.variables["params"] is context.params
    rows = replay.gather(buffer, jnp.arange(3))
    mixed = {key: jnp.concatenate([batch[key], rows[key]])
             for key in ("audio", "label")}
    mixed["weight"] = jnp.concatenate([jnp.full((BATCH,), 2.0 / BATCH),
                                       jnp.full((3,), 1.0 / 3)])
    return mixed, buffer._replace(seen=buffer.seen + BATCH)

  strategy = Strategy("probe", init_buffer=init_buffer, replay=replay_fn)
  model, params, batch, state, train_step, mesh = _setup(strategy)

  def expected_loss(p):
    new = _per_example_ce(model, p, batch["audio"], batch["label"]).mean()
    old = _per_example_ce(model, p, memory_audio[:3],
                          np.zeros(3, np.int32)).mean()
    return 2.0 * new + old

  loss, grads = jax.value_and_grad(expected_loss)(params)
  state, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  assert float(metrics["cross_entropy"]) == pytest.approx(float(loss),
                                                           rel=1e-5)
  chex.assert_trees_all_close(
      state.params, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads),
      atol=1e-6)
  assert int(state.buffer.seen) == BATCH  # The new buffer is kept.


def test_per_example_loss_in_the_replay_context_is_differentiable():
  seen = {}

  def replay_fn(buffer, batch, rng, context):
    del rng
    losses = context.per_example_loss(context.params, batch)
    seen["grad_norm"] = optax.tree.norm(jax.grad(
        lambda p: context.per_example_loss(p, batch).mean())(context.params))
    return {**batch, "weight": jnp.zeros_like(losses)}, buffer

  strategy = Strategy("probe", init_buffer=lambda spec: replay.empty(spec, 4),
                      replay=replay_fn)
  _, params, batch, state, train_step, mesh = _setup(strategy)
  state, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  # All weights zero: no loss, no update; accuracy counts no row.
  assert float(metrics["loss"]) == 0.0
  assert float(metrics["accuracy"]) == 0.0
  chex.assert_trees_all_close(state.params, params)


def test_classification_loss_replaces_cross_entropy():
  def squared_margin(logits, labels, strategy_state):
    del strategy_state
    return (logits[:, 0] - labels) ** 2

  strategy = Strategy("probe", classification_loss=squared_margin)
  model, params, batch, state, train_step, mesh = _setup(strategy)
  logits, _ = model.apply({"params": params}, jnp.asarray(batch["audio"]))
  expected = jnp.mean((logits[:, 0] - batch["label"]) ** 2)
  _, metrics = train_step(state, step_lib.put_batch(batch, mesh))
  assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_strategies_without_replay_keep_their_random_keys():
  """Replay's key is derived, so adding the hook changed no other run."""
  _, _, batch, state, train_step, mesh = _setup(Strategy("finetune"))
  rng = np.asarray(state.rng)  # The step donates the state.
  state, _ = train_step(state, step_lib.put_batch(batch, mesh))
  np.testing.assert_array_equal(state.rng, jax.random.split(rng)[0])


def test_eval_logits_replace_the_model_logits_when_scoring():
  def constant_logits(strategy_state, buffer, logits, embedding):
    del buffer, embedding
    return jnp.broadcast_to(strategy_state["logits"], logits.shape)

  model = MLP(num_classes=NUM_CLASSES, hidden_sizes=())
  audio = np.ones((4, DIM), np.float32)
  variables = model.init(jax.random.PRNGKey(0), jnp.asarray(audio))
  mesh = step_lib.make_mesh()
  eval_step = step_lib.make_eval_step(
      model=model, frontend=lambda a: a, mesh=mesh,
      strategy=Strategy("nme", eval_logits=constant_logits))
  out = eval_step(variables, audio,
                  ({"logits": jnp.asarray([0.0, 3.0])}, {}))
  np.testing.assert_allclose(out["scores"], -3.0)
  np.testing.assert_array_equal(out["predictions"], 1)
  plain = step_lib.make_eval_step(model=model, frontend=lambda a: a,
                                  mesh=mesh)
  logits, _ = model.apply(variables, jnp.asarray(audio))
  np.testing.assert_allclose(plain(variables, audio)["scores"],
                             logits[:, 0] - logits[:, 1], rtol=1e-6)


class SampleTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_draws_distinct_filled_rows_and_flags_missing_ones(self):
    spec = {"audio": jax.ShapeDtypeStruct((3,), jnp.int16),
            "label": jax.ShapeDtypeStruct((), jnp.int32)}
    buffer = replay.empty(spec, 8)
    buffer = buffer._replace(
        data={"audio": jnp.arange(24, dtype=jnp.int16).reshape(8, 3),
              "label": jnp.arange(8, dtype=jnp.int32)},
        size=jnp.asarray(5, jnp.int32))
    sample = self.variant(replay.sample, static_argnums=2)
    for seed in range(20):
      rows, valid = sample(buffer, jax.random.PRNGKey(seed), 4)
      labels = np.asarray(rows["label"])
      assert np.all(valid) and len(set(labels)) == 4 and labels.max() < 5
      np.testing.assert_array_equal(rows["audio"][:, 0], labels * 3)
    rows, valid = sample(buffer, jax.random.PRNGKey(0), 7)
    np.testing.assert_array_equal(valid, [True] * 5 + [False] * 2)
    assert sorted(np.asarray(rows["label"])[:5]) == [0, 1, 2, 3, 4]


def test_empty_memory_samples_nothing_valid_and_counts_its_bytes():
  spec = {"audio": jax.ShapeDtypeStruct((100,), jnp.int16),
          "label": jax.ShapeDtypeStruct((), jnp.int32)}
  buffer = replay.empty(spec, 50)
  _, valid = replay.sample(buffer, jax.random.PRNGKey(0), 10)
  assert not np.any(valid)
  assert replay.nbytes(buffer) == 50 * (100 * 2 + 4)
  assert replay.nbytes({"a": buffer, "b": [buffer], "c": jnp.ones(9)}) == (
      2 * 50 * 204)
  assert replay.nbytes({}) == 0


@pytest.mark.parametrize("capacity", [0, -5, 2.5, True, "100"])
def test_memory_size_must_be_a_positive_integer(capacity):
  with pytest.raises(registry.ConfigError, match="memory_size"):
    replay.empty({"label": jax.ShapeDtypeStruct((), jnp.int32)}, capacity)
