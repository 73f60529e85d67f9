"""Tests for the HM-Conformer port (sizes, hierarchy, heads, training)."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models import CLASSIFIER_KERNEL, HMConformer, make_model
from cljax.models import heads
from overfit_helpers import overfit_losses

# Reduced sizes for the tests that run the model (CPU compile time); the
# code path is the full model's: pooling after blocks 2 and 4, three CLS
# outputs (after blocks 2, 4 and the last), five heads.
SMALL = dict(dim=32, num_heads=4, ffn_dim=64, head_dim=16, num_blocks=4)


@functools.lru_cache(maxsize=None)
def _jit_apply(**fields):
  return jax.jit(HMConformer(**SMALL, **fields).apply)


def _count(tree):
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def test_parameter_counts_match_the_official_model():
  model = make_model({"name": "hm_conformer"}, num_classes=2)
  assert isinstance(model, HMConformer)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 401, 120)))
  params = variables["params"]
  encoder = _count(params["encoder"])
  mca = _count(params["mca"])
  head_params = _count({k: v for k, v in params.items()
                        if k not in ("encoder", "mca")})
  assert (encoder, mca, head_params) == (2_574_592, 116_352, 42_240)
  assert _count(params) == 2_733_184
  flat = flax.traverse_util.flatten_dict(params)
  assert flat[CLASSIFIER_KERNEL].shape == (64, 1)


def _frames_seen(model, length):
  """Frame counts sown by the encoder, read while tracing (no compute)."""
  seen = []

  def forward(x):
    variables = model.init(jax.random.PRNGKey(0), x)
    _, state = model.apply(variables, x, mutable=["intermediates"])
    seen.append(state["intermediates"]["encoder"]["frames"])
    return state["intermediates"]["head_cos"]

  head_cos = jax.eval_shape(forward, jnp.zeros((2, length, 120)))
  return tuple(int(n) for n in seen[0]), head_cos


def test_sequence_lengths_through_the_hierarchy_for_4_seconds():
  frames, head_cos = _frames_seen(HMConformer(), 401)
  # input, subsampling, then after each of the six blocks.
  assert frames == (401, 200, 200, 100, 100, 50, 50, 50)
  assert head_cos[0].shape == (2, 5)


def test_sequence_lengths_for_a_short_clip():
  frames, _ = _frames_seen(HMConformer(**SMALL), 41)
  assert frames == (41, 20, 20, 10, 10, 5)


def _features(batch=4, frames=41, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (batch, frames, 120))


@functools.lru_cache(maxsize=None)
def _small_variables():
  return jax.jit(HMConformer(**SMALL).init)(jax.random.PRNGKey(0),
                                            _features())


def test_logits_come_from_the_mca_head_and_all_heads_are_sown():
  model = HMConformer(**SMALL)
  variables = _small_variables()
  (logits, embedding), state = jax.jit(functools.partial(
      model.apply, mutable=["intermediates"]))(variables, _features())
  # The sown value is the one the plain call returns.
  np.testing.assert_allclose(_jit_apply()(variables, _features())[0], logits,
                             atol=1e-6)
  head_cos = state["intermediates"]["head_cos"][0]
  assert logits.shape == (4, 2)
  # The embedding is what the classifier (the main OC head) reads.
  assert embedding.shape == (4, SMALL["head_dim"])
  assert variables["params"]["classifier"]["kernel"].shape == (
      SMALL["head_dim"], 1)
  assert head_cos.shape == (4, 5)
  assert np.all(np.abs(head_cos) <= 1.0 + 1e-6)
  np.testing.assert_allclose(logits, heads.oc_logits(head_cos[:, 4]),
                             atol=1e-5)


def test_overfits_a_tiny_batch():
  model = HMConformer(**SMALL, dropout_rate=0.0, emb_dropout=0.0,
                      mca_dropout=0.0)
  x = _features()
  labels = jnp.array([0, 1, 0, 1])

  def five_head_loss(outputs, intermediates, labels):
    del outputs
    return heads.hm_conformer_loss(intermediates["head_cos"][0], labels)

  losses = overfit_losses(model, _small_variables(), x, labels,
                          learning_rate=3e-3, steps=150,
                          loss=five_head_loss)
  # OC-softmax cannot reach 0: a bona-fide clip at cos = 1 still costs
  # softplus(20 * (0.9 - 1)) = log(1 + e^-2) = 0.127, so with half the batch
  # bona fide the floor is 0.5 * 0.127 * (0.4+0.3+0.2+0.1+0.1) = 0.0698.
  floor = 0.5 * np.log1p(np.exp(-2.0)) * 1.1
  assert losses[0] > 1.0
  assert losses[-1] < floor + 0.03, losses[-5:]


def test_bfloat16_forward_agrees_with_float32():
  variables = _small_variables()
  x = _features(seed=3)
  out32 = _jit_apply()(variables, x)
  out16 = _jit_apply(dtype=jnp.bfloat16)(variables, x)
  # bf16 keeps 8 mantissa bits; OC cosines (computed in f32 from a bf16
  # 16-d projection) agree to 0.03, i.e. log-odds to 20 * 0.03.
  cos32 = (out32[0][:, 0] - out32[0][:, 1]) / 20.0
  cos16 = (out16[0][:, 0] - out16[0][:, 1]) / 20.0
  np.testing.assert_allclose(cos16, cos32, atol=0.03)
  scale = np.max(np.abs(np.asarray(out32[1])))
  np.testing.assert_allclose(out16[1], out32[1], atol=0.05 * scale)


def test_faithful_keeps_the_frame_mask_at_test_time():
  variables = _small_variables()
  x = _features(seed=5)
  plain = _jit_apply()(variables, x)[0]
  masked = [_jit_apply(faithful=True)(variables, x)[0] for _ in range(2)]
  # Without an rng the faithful mask uses a fixed key: deterministic.
  np.testing.assert_allclose(masked[0], masked[1])
  # The fixed key masks a non-empty span here, so the scores change.
  assert not np.allclose(masked[0], plain, atol=1e-6)
  # Masking frames equals zeroing them by hand before a plain forward.
  key_w, key_s = jax.random.split(jax.random.PRNGKey(0))
  width = int(jax.random.randint(key_w, (), 0, 20))
  start = int(jax.random.randint(key_s, (), 0, max(41 - width, 1)))
  assert width > 0
  zeroed = x.at[:, start:start + width].set(0.0)
  np.testing.assert_allclose(
      masked[0], _jit_apply()(variables, zeroed)[0], atol=1e-5)


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match="LFCC features"):
    HMConformer().init(jax.random.PRNGKey(0), jnp.zeros((2, 64000)))
  with pytest.raises(ValueError, match="binary"):
    jax.eval_shape(HMConformer(num_classes=3).init, jax.random.PRNGKey(0),
                   jnp.zeros((1, 41, 120)))


def test_the_train_step_trains_the_five_heads_with_their_weights():
  from cljax import step as step_lib  # pylint: disable=g-import-not-at-top
  from cljax.state import create_train_state  # pylint: disable=g-import-not-at-top
  from cljax.strategies import Strategy  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  model = HMConformer(**SMALL, dropout_rate=0.0, emb_dropout=0.0,
                      mca_dropout=0.0)
  variables = _small_variables()
  x = np.asarray(_features())
  labels = np.array([0, 1, 0, 1], np.int32)
  # The loss by hand: a train-mode forward pass (batch statistics of this
  # batch) and the official weighted sum of the five heads' OC losses.
  _, state = model.apply(variables, jnp.asarray(x), train=True,
                         mutable=["batch_stats", "intermediates"])
  expected = heads.hm_conformer_loss(state["intermediates"]["head_cos"][0],
                                     jnp.asarray(labels))
  tx = optax.sgd(0.0)
  # Copies: the step donates its state, and the variables are cached.
  train_state = create_train_state(
      params=jax.tree.map(jnp.copy, variables["params"]),
      batch_stats=jax.tree.map(jnp.copy, variables["batch_stats"]),
      tx=tx, strategy_state={}, rng=jax.random.PRNGKey(0))
  mesh = step_lib.make_mesh()
  train_step = step_lib.make_train_step(
      model=model, frontend=lambda features: features,
      strategy=Strategy("finetune"), tx=tx, mesh=mesh)
  _, metrics = train_step(train_state, step_lib.put_batch(
      {"audio": x, "label": labels}, mesh))
  np.testing.assert_allclose(float(metrics["loss"]), float(expected),
                             rtol=1e-4)


@pytest.mark.parametrize("kernel_size", [15, 4])
def test_depthwise_conv_equals_flax_grouped_conv(kernel_size):
  from cljax.models.hm_conformer import DepthwiseConv1D  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 23, 8))
  ours = DepthwiseConv1D(kernel_size)
  reference = nn.Conv(8, (kernel_size,), padding="SAME",
                      feature_group_count=8)
  variables = reference.init(jax.random.PRNGKey(1), x)
  # Same parameter tree and initial values.
  own = ours.init(jax.random.PRNGKey(1), x)
  assert jax.tree.map(jnp.shape, own) == jax.tree.map(jnp.shape, variables)
  np.testing.assert_array_equal(own["params"]["kernel"],
                                variables["params"]["kernel"])
  variables = {"params": {"kernel": variables["params"]["kernel"],
                          "bias": jnp.arange(8.0)}}
  np.testing.assert_allclose(ours.apply(variables, x),
                             reference.apply(variables, x), atol=1e-5)
