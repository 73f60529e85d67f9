"""Tests for the ResNet-18/34/50 image backbones."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import registry
from cljax.models import CLASSIFIER_KERNEL
from cljax.models.resnet import ResNet, ResNet18, ResNet34, ResNet50
from overfit_helpers import assert_batch_stats_update_only_in_train_mode
from overfit_helpers import overfit_losses

B = 4
# Registered here as the lead will register them in cljax/models/__init__.py.
_MODELS = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50,
           "resnet": ResNet}


def _images(seed=0, batch=B, size=32, channels=3):
  return jax.random.normal(jax.random.PRNGKey(seed + 100),
                           (batch, size, size, channels))


# One-block-per-stage models keep compile times (most of this file's time
# on CPU) small; the full depths are covered by the eval_shape counts.
_SHALLOW = (1, 1, 1, 1)


@functools.lru_cache(maxsize=None)
def _jitted_init(model):
  # Jitted: eager Flax dispatches op by op and is slow on a small CPU.
  return jax.jit(model.init)


def _init(model, x, seed=0):
  return _jitted_init(model)(jax.random.PRNGKey(seed), x)


@functools.lru_cache(maxsize=None)
def _jitted_apply(model, train, mutable):
  # One compiled function per (model, mode): a fresh jax.jit of a fresh
  # partial would recompile on every call.
  return jax.jit(functools.partial(
      model.apply, train=train,
      **({"mutable": list(mutable)} if mutable else {})))


def _apply(model, variables, x, train=False, mutable=()):
  return _jitted_apply(model, train, tuple(mutable))(variables, x)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


# torchvision's resnet18/34/50 trainable parameter counts at 1000 classes
# (sum of p.numel() over model.parameters(): BN weight+bias included, running
# statistics are buffers). 2 classes: minus (D + 1) * 998, D = 512 / 2048.
@pytest.mark.parametrize("cls, classes, expected", [
    (ResNet18, 1000, 11_689_512),
    (ResNet34, 1000, 21_797_672),
    (ResNet50, 1000, 25_557_032),
    (ResNet18, 2, 11_689_512 - 513 * 998),
    (ResNet34, 2, 21_797_672 - 513 * 998),
    (ResNet50, 2, 25_557_032 - 2049 * 998),
])
def test_parameter_counts_equal_torchvision(cls, classes, expected):
  model = cls(num_classes=classes)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 224, 224, 3)))
  assert _count(variables["params"]) == expected
  # Running mean and variance: two per BN channel, not trainable.
  assert set(variables) == {"params", "batch_stats"}


def test_stem_and_stage_shapes_at_224():
  model = ResNet34(num_classes=2)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 224, 224, 3)))
  params = variables["params"]
  assert params["conv1"]["kernel"].shape == (7, 7, 3, 64)
  # 3, 4, 6, 3 blocks; downsampling shortcuts only where the shape changes.
  for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3),
                                              (64, 128, 256, 512))):
    names = [k for k in params if k.startswith(f"layer{stage + 1}_")]
    assert len(names) == blocks
    first = params[f"layer{stage + 1}_0"]
    assert first["conv2"]["kernel"].shape == (3, 3, width, width)
    assert ("downsample_conv" in first) == (stage > 0)
  # 224 -> 112 (conv1) -> 56 (pool) -> 56, 28, 14, 7: the last stage's map.
  _, state = jax.eval_shape(
      functools.partial(model.apply, capture_intermediates=True,
                        mutable=["intermediates"]),
      variables, jnp.zeros((1, 224, 224, 3)))
  assert state["intermediates"]["layer4_2"]["__call__"][0].shape == (
      1, 7, 7, 512)


def test_small_stem_keeps_full_resolution():
  """stem="small": one 3x3 stride-1 conv, no max-pool, so a 32-px image
  reaches the first stage at 32 px (the ImageNet stem: 8 px), and the stem
  kernel is 3*3*3*width instead of 7*7*3*width."""
  small, imagenet = (ResNet18(num_classes=2, width=8, stem=stem)
                     for stem in ("small", "imagenet"))
  x = jnp.zeros((1, 32, 32, 3))
  shapes = {}
  for name, model in (("small", small), ("imagenet", imagenet)):
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    _, state = jax.eval_shape(
        functools.partial(model.apply, capture_intermediates=True,
                          mutable=["intermediates"]), variables, x)
    shapes[name] = (state["intermediates"]["layer1_0"]["__call__"][0].shape,
                    _count(variables["params"]))
  assert shapes["small"][0] == (1, 32, 32, 8)
  assert shapes["imagenet"][0] == (1, 8, 8, 8)
  assert shapes["imagenet"][1] - shapes["small"][1] == (49 - 9) * 3 * 8
  with pytest.raises(ValueError, match="config.model.stem='cifar'"):
    ResNet18(stem="cifar").init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize("cls, embed", [(ResNet18, 64), (ResNet50, 256)])
def test_shapes_and_classifier_path(cls, embed):
  model = registry.build(
      _MODELS, {"name": cls.__name__.lower(), "width": 8,
                "stage_sizes": _SHALLOW}, "model", num_classes=3)
  assert isinstance(model, cls)
  x = _images()
  variables = _init(model, x)
  (logits, embedding), _ = _apply(model, variables, x,
                                  mutable=["batch_stats"])
  assert logits.shape == (B, 3) and embedding.shape == (B, embed)
  params = flax.traverse_util.flatten_dict(variables["params"])
  assert params[CLASSIFIER_KERNEL].shape == (embed, 3)
  kernel = variables["params"]["classifier"]["kernel"]
  bias = variables["params"]["classifier"]["bias"]
  np.testing.assert_allclose(logits, embedding @ kernel + bias, atol=1e-5)
  # Post-ReLU global average: non-negative.
  assert float(jnp.min(embedding)) >= 0.0


def test_registry_rejects_unknown_field():
  with pytest.raises(registry.ConfigError, match="config.model.depth"):
    registry.build(_MODELS, {"name": "resnet18", "depth": 18}, "model",
                   num_classes=2)


def test_bad_block_and_input_rank_raise():
  with pytest.raises(ValueError, match="config.model.block='wide'"):
    ResNet(block="wide").init(jax.random.PRNGKey(0), _images())
  with pytest.raises(ValueError, match="batch, height, width, channels"):
    ResNet18(width=8).init(jax.random.PRNGKey(0), jnp.zeros((2, 32, 32)))


def test_batch_stats_update_only_in_train_mode():
  # The same model as test_shapes_and_classifier_path[ResNet18] (compiled
  # functions are shared).
  model = ResNet18(num_classes=3, width=8, stage_sizes=_SHALLOW)
  variables = _init(model, _images())
  x = _images(seed=1) * 3 + 1
  before, train_state = assert_batch_stats_update_only_in_train_mode(
      lambda train: _apply(model, variables, x, train=train,
                           mutable=["batch_stats"]),
      variables["batch_stats"])
  # Eval mode reads the running averages: with the updated statistics its
  # output changes, and one example's output does not depend on the others.
  updated = {"params": variables["params"],
             "batch_stats": train_state["batch_stats"]}
  after, _ = _apply(model, updated, x, mutable=["batch_stats"])
  assert not np.allclose(before[0], after[0], atol=1e-3)
  other = x.at[1:].set(_images(seed=2)[1:])
  after_other, _ = _apply(model, updated, other, mutable=["batch_stats"])
  np.testing.assert_allclose(after_other[0][0], after[0][0], atol=1e-5)
  assert not np.allclose(after_other[0][1:], after[0][1:], atol=1e-3)


def test_oc_softmax_head_and_bfloat16_compute():
  # Shapes and dtypes only (eval_shape): the OC head's values are tested in
  # tests/models/test_heads.py.
  model = ResNet18(width=8, head="oc_softmax", dtype=jnp.bfloat16)
  x = jax.ShapeDtypeStruct((B, 32, 32, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  assert all(p.dtype == jnp.float32
             for p in jax.tree_util.tree_leaves(variables["params"]))
  (logits, embedding), state = jax.eval_shape(
      functools.partial(model.apply, mutable=["intermediates"]), variables, x)
  assert logits.dtype == jnp.float32 and embedding.dtype == jnp.float32
  assert logits.shape == (B, 2) and embedding.shape == (B, 64)
  assert state["intermediates"]["head_cos"][0].shape == (B, 1)
  with pytest.raises(ValueError, match="oc_softmax"):
    jax.eval_shape(ResNet18(num_classes=3, head="oc_softmax").init,
                   jax.random.PRNGKey(0), x)


def test_overfits_a_tiny_batch():
  # ResNet-18 at width 8 on 4 random 32x32 images (train-mode loss, batch
  # statistics); measured: 1.42 at step 0, ~3e-3 by step 12.
  model = ResNet18(width=8)
  x = _images(seed=3)
  labels = jnp.array([0, 1, 1, 0])
  variables = _init(model, x)
  losses = overfit_losses(model, variables, x, labels, learning_rate=1e-2,
                          steps=15)
  assert losses[0] > 0.5
  assert losses[-1] < 0.01, losses[-5:]
