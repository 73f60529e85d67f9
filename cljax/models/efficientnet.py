"""EfficientNet-B0 (Tan & Le 2019), laid out as torchvision's efficientnet_b0.

Stem Conv 3x3/2 (32) -> BN -> swish; seven stages of MBConv blocks; a 1x1
conv to 1280 -> BN -> swish; global average pool -> the 1280-d
``embedding`` -> Dropout(0.2) -> ``classifier``. B0 stage table
(expand ratio, kernel, stride, output channels, repeats):

====== ====== ====== ====== =======
expand kernel stride out    repeats
====== ====== ====== ====== =======
1      3      1      16     1
6      3      2      24     2
6      5      2      40     2
6      3      2      80     3
6      5      1      112    3
6      5      2      192    4
6      3      1      320    1
====== ====== ====== ====== =======

MBConv: (1x1 expand conv -> BN -> swish, when expand > 1) -> depthwise kxk
conv (stride on the first block of a stage) -> BN -> swish -> squeeze-
excitation (mean pool, 1x1 conv to ``max(1, C_in // 4)`` with bias, swish,
1x1 conv back with bias, sigmoid gate) -> 1x1 project conv -> BN (no
activation) -> (+ input, when stride 1 and width unchanged, after optional
stochastic depth). Convs before BN carry no bias. Padding is PyTorch's
symmetric ``(k - 1) // 2``, not TF "SAME", so torchvision weights map one to
one.

With ``num_classes=1000`` the model has 5,288,548 trainable parameters, the
count of torchvision's ``efficientnet_b0`` (and timm's ``efficientnet_b0``).

BatchNorm follows torchvision's EfficientNet-V1: ``nn.BatchNorm2d`` defaults,
momentum 0.1 (Flax ``momentum=0.9``) and ``epsilon=1e-5`` (the TF original
uses 0.99 / 1e-3). Running statistics update only with ``train=True``.

Stochastic depth (``stochastic_depth_rate``) is off by default; when > 0
block ``i`` of ``N`` drops its residual branch per example with probability
``rate * i / N`` in training (torchvision's linear rule, ``mode="row"``,
survivors rescaled by ``1 / (1 - p)``), using the ``'dropout'`` rng.

CPU cost: the depthwise convs are ``_image.DepthwiseConv2D`` (shifted
multiply-adds; XLA's CPU grouped convolution was 2-16x slower on these
layers), still full B0 at 224x224 is meant for an accelerator. ``width_multiplier`` /
``depth_multiplier`` (torchvision's rounding) give small variants for tests.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax.models import heads
from cljax.models._image import (DepthwiseConv2D, check_rgb_images,
                                 torch_batch_norm)

# (expand_ratio, kernel, stride, out_channels, repeats) of B0.
B0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2),
             (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
             (6, 3, 1, 320, 1))
_STEM = 32


def _make_divisible(value: float, divisor: int = 8) -> int:
  """torchvision's ``_make_divisible``: nearest multiple, at most 10% down."""
  new = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if new < 0.9 * value:
    new += divisor
  return new


def _pad(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
  p = (kernel - 1) // 2
  return ((p, p), (p, p))


class SqueezeExcitation(nn.Module):
  """Channel gate ``x * sigmoid(W2 swish(W1 mean_hw(x) + b1) + b2)``."""

  squeeze_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = nn.swish(nn.Conv(self.squeeze_channels, (1, 1), dtype=self.dtype,
                         name="fc1")(s))
    s = nn.Conv(x.shape[-1], (1, 1), dtype=self.dtype, name="fc2")(s)
    return x * nn.sigmoid(s)


class MBConv(nn.Module):
  """Mobile inverted bottleneck with squeeze-excitation (see module doc)."""

  features: int
  expand_ratio: int
  kernel: int
  strides: int
  drop_prob: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    in_features = x.shape[-1]
    expanded = _make_divisible(in_features * self.expand_ratio)
    h = x
    if expanded != in_features:
      h = nn.Conv(expanded, (1, 1), use_bias=False, dtype=self.dtype,
                  name="expand")(h)
      h = nn.swish(torch_batch_norm(train, self.dtype, "expand_bn")(h))
    h = DepthwiseConv2D(self.kernel, self.strides, dtype=self.dtype,
                        name="depthwise")(h)
    h = nn.swish(torch_batch_norm(train, self.dtype, "depthwise_bn")(h))
    h = SqueezeExcitation(max(1, in_features // 4), dtype=self.dtype,
                          name="se")(h)
    h = nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype,
                name="project")(h)
    h = torch_batch_norm(train, self.dtype, "project_bn")(h)
    if self.strides != 1 or in_features != self.features:
      return h
    if train and self.drop_prob > 0:
      keep = 1.0 - self.drop_prob
      mask = jax.random.bernoulli(self.make_rng("dropout"), keep,
                                  (h.shape[0], 1, 1, 1))
      h = jnp.where(mask, h / keep, 0).astype(h.dtype)
    return h + x


class EfficientNet(nn.Module):
  """EfficientNet-B0 image detector: ``(logits [B, C], embedding [B, 1280])``.

  Input NHWC ``[B, H, W, 3]`` (224x224 for B0; any size >= 32 works).

  Attributes:
    num_classes: output classes (set from the stream by ``make_model``).
    head: ``"softmax"`` or ``"oc_softmax"``; see ``heads.classifier_head``.
    dtype: computation dtype of convs and BatchNorm (params stay float32);
      pooling and the classifier run in float32.
    dropout_rate: dropout before the classifier in training (torchvision
      B0: 0.2); > 0 needs the ``'dropout'`` rng in ``apply(..., train=True)``.
    stochastic_depth_rate: final-block drop probability (torchvision: 0.2);
      0 = off (default).
    width_multiplier: scales the widths (torchvision rounding to multiples
      of 8; 1.0 = B0).
    depth_multiplier: scales the repeats, ``ceil(repeats * d)`` (1.0 = B0).
  """

  num_classes: int = 2
  head: str = "softmax"
  dtype: Any = jnp.float32
  dropout_rate: float = 0.2
  stochastic_depth_rate: float = 0.0
  width_multiplier: float = 1.0
  depth_multiplier: float = 1.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    check_rgb_images(x, "EfficientNet")
    if self.width_multiplier <= 0 or self.depth_multiplier <= 0:
      raise ValueError(
          "config.model.width_multiplier and config.model.depth_multiplier "
          f"must be > 0; got {self.width_multiplier} and "
          f"{self.depth_multiplier}.")

    def width(c):
      return _make_divisible(c * self.width_multiplier)

    stages = [(e, k, s, width(c), int(math.ceil(n * self.depth_multiplier)))
              for e, k, s, c, n in B0_STAGES]
    total_blocks = sum(n for *_, n in stages)
    x = x.astype(self.dtype)
    x = nn.Conv(width(_STEM), (3, 3), strides=(2, 2), padding=_pad(3),
                use_bias=False, dtype=self.dtype, name="stem")(x)
    x = nn.swish(torch_batch_norm(train, self.dtype, "stem_bn")(x))
    block_id = 0
    for stage, (expand, kernel, stride, features, repeats) in enumerate(
        stages):
      for i in range(repeats):
        drop = self.stochastic_depth_rate * block_id / total_blocks
        x = MBConv(features, expand, kernel, stride if i == 0 else 1,
                   drop_prob=drop, dtype=self.dtype,
                   name=f"stage{stage + 1}_block{i}")(x, train)
        block_id += 1
    x = nn.Conv(4 * stages[-1][3], (1, 1), use_bias=False, dtype=self.dtype,
                name="head_conv")(x)
    x = nn.swish(torch_batch_norm(train, self.dtype, "head_bn")(x))
    embedding = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    h = embedding
    if self.dropout_rate > 0:
      h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    logits = heads.classifier_head(self, h, self.head, self.num_classes)
    return logits, embedding
