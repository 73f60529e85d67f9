"""MIR: interference scores, selection, the replay hook, the fields, the loop."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import registry
from cljax import train
from cljax.models import MLP
from cljax.replay import reservoir
from cljax.strategies import mir
from cljax.strategies.base import ReplayContext
from run_helpers import load_config, memory_bytes_per_example


ETA = 0.1
SPEC = {"audio": jax.ShapeDtypeStruct((2,), jnp.float32),
        "label": jax.ShapeDtypeStruct((), jnp.int32),
        "task": jax.ShapeDtypeStruct((), jnp.int32)}
# Candidates (x = (a, 0.3), label): with zero weights, a virtual step on a
# batch of x = (1, 0) labelled 1 moves the log-odds z1 - z0 of every input
# to eta * (a + 1) (kernel row 0 and bias each gain eta / 2 per class; the
# second feature is 0 in the batch so its weights stay). From log 2 the loss
# becomes softplus(-eta (a + 1)) for label 1, softplus(eta (a + 1)) for
# label 0: the rises, largest first, are rows 0 (label 0, a = 3: 4 eta),
# 7 (label 1, a = -4.5: 3.5 eta), 1 (label 0, a = 2: 3 eta), then 2, ...
A = np.array([3.0, 2.0, 1.0, 0.0, -2.0, 3.0, 1.0, -4.5], np.float32)
LABELS = np.array([0, 0, 0, 0, 0, 1, 1, 1], np.int32)
MOST_INTERFERED = [0, 7, 1]


def _candidates():
  return {"audio": jnp.asarray(np.stack([A, np.full_like(A, 0.3)], 1)),
          "label": jnp.asarray(LABELS),
          "task": jnp.arange(len(A), dtype=jnp.int32)}  # Row ids.


def _incoming(num=4):
  return {"audio": jnp.tile(jnp.array([[1.0, 0.0]]), (num, 1)),
          "label": jnp.ones((num,), jnp.int32),
          "task": jnp.full((num,), 99, jnp.int32)}


def _zero_model():
  model = MLP(num_classes=2, hidden_sizes=())
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
  params = jax.tree.map(jnp.zeros_like, params)

  def per_example_loss(p, rows):
    logits, _ = model.apply({"params": p}, rows["audio"])
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           rows["label"])

  context = ReplayContext(params=params, variables={"params": params},
                          strategy_state={},
                          per_example_loss=per_example_loss)
  return params, per_example_loss, context


def _softplus(x):
  return np.logaddexp(0.0, x)


class InterferenceTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_scores_are_the_closed_form_loss_rises(self):
    params, per_example_loss, _ = _zero_model()
    scores = self.variant(
        lambda p, x, c: mir.interference(per_example_loss, p, x, c, ETA))(
            params, _incoming(), _candidates())
    log_odds = ETA * (A + 1)
    after = np.where(LABELS == 1, _softplus(-log_odds), _softplus(log_odds))
    np.testing.assert_allclose(scores, after - np.log(2), rtol=1e-5,
                               atol=1e-6)
    assert np.argsort(-np.asarray(scores))[:3].tolist() == MOST_INTERFERED

  @chex.variants(with_jit=True, without_jit=True)
  def test_invalid_candidates_are_never_picked_over_valid_ones(self):
    scores = jnp.array([5.0, -1.0, 9.0, jnp.nan, 0.5, 7.0])
    valid = jnp.array([False, True, False, True, True, False])
    indices, chosen_valid = self.variant(
        lambda s, v: mir.select(s, v, 4))(scores, valid)
    # Valid by score (0.5, -1.0, then the NaN one), then an invalid one.
    assert indices[:3].tolist() == [4, 1, 3]
    assert chosen_valid.tolist() == [True, True, True, False]


def test_replay_hook_replays_the_most_interfered_memories():
  _, _, context = _zero_model()
  strategy = mir.make(None, memory_size=8, candidates=8, replay_batch_size=3,
                      virtual_lr=ETA)
  buffer = reservoir.insert(strategy.init_buffer(SPEC), _candidates(),
                            jax.random.PRNGKey(0))
  incoming = _incoming()
  replay_fn = jax.jit(lambda b, x, k: strategy.replay(b, x, k, context))
  for seed in range(3):  # Whatever order the candidates are drawn in.
    train_batch, new_buffer = replay_fn(buffer, incoming,
                                        jax.random.PRNGKey(seed))
    assert sorted(train_batch["task"][4:].tolist()) == sorted(MOST_INTERFERED)
    np.testing.assert_allclose(train_batch["weight"],
                               [0.25] * 4 + [1 / 3] * 3)
    assert (int(new_buffer.size), int(new_buffer.seen)) == (8, 12)


def test_a_memory_with_fewer_rows_than_asked_replays_only_real_ones():
  _, _, context = _zero_model()
  strategy = mir.make(None, memory_size=8, candidates=8, replay_batch_size=3,
                      virtual_lr=ETA)
  stored = jax.tree.map(lambda x: x[6:], _candidates())  # Rows 6 and 7.
  buffer = reservoir.insert(strategy.init_buffer(SPEC), stored,
                            jax.random.PRNGKey(0))
  train_batch, _ = strategy.replay(buffer, _incoming(), jax.random.PRNGKey(1),
                                   context)
  # Row 7 interferes most; row 6 (label 1, a = 1) least, yet it beats the
  # placeholders, which carry weight 0.
  assert train_batch["task"][4:6].tolist() == [7, 6]
  np.testing.assert_allclose(train_batch["weight"][4:], [0.5, 0.5, 0.0])


def test_empty_memory_replays_nothing():
  _, _, context = _zero_model()
  strategy = mir.make(None, memory_size=8, candidates=8, virtual_lr=ETA)
  train_batch, buffer = strategy.replay(strategy.init_buffer(SPEC),
                                        _incoming(), jax.random.PRNGKey(1),
                                        context)
  np.testing.assert_allclose(train_batch["weight"], [0.25] * 4 + [0.0] * 4)
  assert int(buffer.size) == 4


@pytest.mark.parametrize("fields, name", [
    (dict(memory_size=0), "memory_size"),
    (dict(memory_size=-1), "memory_size"),
    (dict(memory_size=12.0), "memory_size"),
    (dict(candidates=0), "candidates"),
    (dict(virtual_lr=0.0), "virtual_lr"),
    (dict(candidates=10, replay_batch_size=11), "replay_batch_size"),
])
def test_bad_fields_name_the_field(fields, name):
  with pytest.raises(registry.ConfigError, match=f"strategy.{name}"):
    mir.make(None, **fields)


def test_a_batch_larger_than_the_candidates_is_a_config_error():
  _, _, context = _zero_model()
  strategy = mir.make(None, memory_size=8, candidates=2)
  with pytest.raises(registry.ConfigError, match="replay_batch_size"):
    strategy.replay(strategy.init_buffer(SPEC), _incoming(),
                    jax.random.PRNGKey(0), context)


def test_mir_runs_through_the_loop_on_the_small_config(tmp_path):
  config = load_config("mir_audio", "small")
  assert config.strategy.memory_size == 16
  results = train.train_and_evaluate(config, str(tmp_path / "mir"))
  exp = train.build_experiment(config)
  assert results.memory_bytes == 16 * memory_bytes_per_example(exp)
  eer = np.asarray(results.matrix("eer"))
  assert eer.shape == (3, 3) and np.isfinite(eer).all()
