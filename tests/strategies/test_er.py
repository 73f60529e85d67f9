"""ER: the replay loss, the memory's bookkeeping, the fields, the loop."""

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
from cljax import train
from cljax.models import MLP
from cljax.replay import reservoir
from cljax.state import create_train_state
from cljax.strategies import Strategy, er
from run_helpers import load_config, memory_bytes_per_example

NUM_CLASSES, DIM, BATCH = 3, 5, 8
SPEC = {"audio": jax.ShapeDtypeStruct((DIM,), jnp.float32),
        "label": jax.ShapeDtypeStruct((), jnp.int32),
        "task": jax.ShapeDtypeStruct((), jnp.int32)}
LR = 0.1


def _rows(seed, num, labels=None):
  rng = np.random.default_rng(seed)
  labels = (rng.integers(0, NUM_CLASSES, num) if labels is None
            else np.full(num, labels))
  return {"audio": jnp.asarray(rng.normal(size=(num, DIM)), jnp.float32),
          "label": jnp.asarray(labels, jnp.int32),
          "task": jnp.full((num,), seed, jnp.int32)}


def _model_and_params():
  model = MLP(num_classes=NUM_CLASSES, hidden_sizes=())
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, DIM)))["params"]
  return model, params


def _mean_ce(model, params, rows):
  logits, _ = model.apply({"params": params}, rows["audio"])
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, rows["label"]).mean()


def _one_step(strategy, buffer, batch):
  """One jitted cljax train step (plain SGD) from fresh MLP parameters."""
  model, params = _model_and_params()
  tx = optax.chain(strategy.tx, optax.sgd(LR))
  state = create_train_state(params=jax.tree.map(jnp.copy, params),
                             batch_stats={}, tx=tx, strategy_state={},
                             rng=jax.random.PRNGKey(1), buffer=buffer)
  train_step = step_lib.make_train_step(
      model=model, frontend=lambda audio: audio, strategy=strategy, tx=tx,
      mesh=step_lib.make_mesh())
  new_state, metrics = train_step(state, batch)
  return model, params, new_state, metrics


def _filled(memory_size, rows):
  return reservoir.insert(replay.empty(SPEC, memory_size), rows,
                          jax.random.PRNGKey(5))


@pytest.mark.parametrize("stored, replayed, memory_label", [
    (4, 4, None),   # memory holds exactly the replayed rows
    (3, 5, None),   # 2 of the 5 replayed rows are placeholders (weight 0)
    (4, 4, 2),      # the memory holds class 2 only; the batch has 0 and 1
])
def test_step_descends_the_sum_of_the_two_mean_cross_entropies(
    stored, replayed, memory_label):
  memory = _rows(7, stored, memory_label)
  batch = _rows(3, BATCH, None if memory_label is None else 0)
  if memory_label is not None:
    batch["label"] = jnp.arange(BATCH, dtype=jnp.int32) % 2
  strategy = er.make(None, memory_size=8, replay_batch_size=replayed)
  model, params, state, metrics = _one_step(strategy, _filled(8, memory),
                                            batch)

  def expected_loss(p):  # The seed's loss: two means, summed.
    return _mean_ce(model, p, batch) + _mean_ce(model, p, memory)

  np.testing.assert_allclose(metrics["cross_entropy"], expected_loss(params),
                             rtol=1e-5)
  expected_params = jax.tree.map(lambda p, g: p - LR * g, params,
                                 jax.grad(expected_loss)(params))
  chex.assert_trees_all_close(state.params, expected_params, rtol=1e-5,
                              atol=1e-6)
  # The batch was stored after the replay draw.
  assert int(state.buffer.seen) == stored + BATCH
  assert int(state.buffer.size) == 8


def test_empty_memory_is_plain_training():
  batch = _rows(3, BATCH)
  strategy = er.make(None, memory_size=16)
  model, params, state, metrics = _one_step(
      strategy, strategy.init_buffer(SPEC), batch)
  np.testing.assert_allclose(metrics["cross_entropy"],
                             _mean_ce(model, params, batch), rtol=1e-6)
  _, _, finetuned, _ = _one_step(Strategy("finetune"), {}, batch)
  chex.assert_trees_all_close(state.params, finetuned.params, rtol=1e-6)
  np.testing.assert_array_equal(state.buffer.data["audio"][:BATCH],
                                batch["audio"])
  assert (int(state.buffer.size), int(state.buffer.seen)) == (BATCH, BATCH)


class ReplayHookTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_weights_rows_and_insertion(self):
    strategy = er.make(None, memory_size=6, replay_batch_size=4)
    memory = _rows(7, 3)
    batch = _rows(3, BATCH)
    replay_fn = self.variant(lambda b, x, k: strategy.replay(b, x, k, None))
    train_batch, buffer = replay_fn(_filled(6, memory), batch,
                                    jax.random.PRNGKey(0))
    assert set(train_batch) == {"audio", "label", "task", "weight"}
    np.testing.assert_allclose(
        train_batch["weight"], [1 / BATCH] * BATCH + [1 / 3] * 3 + [0.0])
    np.testing.assert_array_equal(train_batch["audio"][:BATCH],
                                  batch["audio"])
    # The 3 valid replayed rows are the 3 stored ones, in some order.
    replayed = np.asarray(train_batch["task"][BATCH:BATCH + 3])
    np.testing.assert_array_equal(replayed, [7, 7, 7])
    np.testing.assert_allclose(
        np.sort(np.asarray(train_batch["audio"][BATCH:BATCH + 3]), 0),
        np.sort(np.asarray(memory["audio"]), 0))
    assert (int(buffer.size), int(buffer.seen)) == (6, 3 + BATCH)

  def test_memory_larger_than_the_data_keeps_every_example(self):
    strategy = er.make(None, memory_size=100)
    buffer = strategy.init_buffer(SPEC)
    batches = [_rows(seed, BATCH) for seed in range(5)]
    replay_fn = jax.jit(lambda b, x, k: strategy.replay(b, x, k, None))
    for step, batch in enumerate(batches):
      train_batch, buffer = replay_fn(buffer, batch, jax.random.PRNGKey(step))
      # Replayed rows: BATCH drawn from the step*BATCH stored so far.
      assert float(train_batch["weight"][BATCH:].sum()) == (
          1.0 if step else 0.0)
    assert int(buffer.size) == int(buffer.seen) == 5 * BATCH
    np.testing.assert_array_equal(
        buffer.data["audio"][:5 * BATCH],
        np.concatenate([b["audio"] for b in batches]))


@pytest.mark.parametrize("value", [0, -5, 2.5, "5000", True, None])
def test_bad_memory_size_names_the_field(value):
  with pytest.raises(registry.ConfigError, match="strategy.memory_size"):
    er.make(None, memory_size=value)


@pytest.mark.parametrize("value", [0, -1, 3.0, 17])
def test_bad_replay_batch_size_names_the_field(value):
  with pytest.raises(registry.ConfigError,
                     match="strategy.replay_batch_size"):
    er.make(None, memory_size=16, replay_batch_size=value)


def test_er_runs_through_the_loop_on_the_small_config(tmp_path):
  config = load_config("er_audio", "small")
  assert config.strategy.memory_size == 16
  results = train.train_and_evaluate(config, str(tmp_path / "er"))
  exp = train.build_experiment(config)
  assert results.memory_bytes == 16 * memory_bytes_per_example(exp)
  # The memory evicted: more examples were offered than it holds.
  assert sum(exp.steps_per_task) * config.data.batch_size > 16
  eer = np.asarray(results.matrix("eer"))
  assert eer.shape == (3, 3) and np.isfinite(eer).all()
