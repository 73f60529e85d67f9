"""Xception (Chollet 2017) as the face-forgery literature uses it.

The layout is Cadene's ``pretrainedmodels`` ``xception`` (identical to timm's
``legacy_xception``), the backbone of FaceForensics++ (Roessler et al. 2019)
and CoReD (Kim et al. 2021):

* entry flow: Conv 3x3/2 (32, VALID) -> BN -> ReLU -> Conv 3x3 (64, VALID)
  -> BN -> ReLU, then blocks 1-3 (128, 256, 728 channels, each two separable
  convs and a 3x3/2 max pool, with a strided 1x1 conv + BN shortcut);
* middle flow: 8 blocks of three ReLU -> SeparableConv(728) -> BN with an
  identity shortcut;
* exit flow: block 12 (728 -> 728 -> 1024, max pool /2, conv shortcut), then
  SeparableConv(1536) -> BN -> ReLU -> SeparableConv(2048) -> BN -> ReLU;
* global average pool -> the 2048-d ``embedding`` -> (Dropout) ->
  ``classifier``.

A separable conv is a depthwise 3x3 conv (one filter per channel, no
bias) followed by a pointwise 1x1 conv (no bias), as in the reference. Convs
that precede a BatchNorm carry no bias. Padding matches PyTorch exactly
(explicit symmetric pads; max pools pad with -inf), so reference weights map
one to one.

With ``num_classes=1000`` the model has 22,855,952 trainable parameters, the
count of timm's ``legacy_xception`` / Cadene's ``xception`` (the sum is
spelt out layer by layer in ``tests/models/test_xception.py``).

BatchNorm: PyTorch defaults (momentum 0.1, i.e. Flax ``momentum=0.9``,
``epsilon=1e-5``). Running statistics update only with ``train=True`` (pass
``mutable=['batch_stats']``); ``train=False`` uses them.

CPU cost: the depthwise convs are ``_image.DepthwiseConv2D`` (9 shifted
multiply-adds, the same parameter and outputs as the grouped ``nn.Conv``,
which XLA's CPU backend ran 2-16x slower). A full Xception at 299x299 is
still meant for an accelerator; tests and the ``small`` recipes use a
reduced ``width_multiplier`` / ``num_middle_blocks``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cljax.models import heads
from cljax.models._image import (DepthwiseConv2D, check_rgb_images,
                                 torch_batch_norm)

# Reference widths: entry convs, blocks 1-3, block 12 out, exit convs.
_WIDTHS = {"conv1": 32, "conv2": 64, "block1": 128, "block2": 256,
           "block3": 728, "block12": 1024, "conv3": 1536, "conv4": 2048}


class SeparableConv(nn.Module):
  """Depthwise 3x3 conv (one filter per channel) then a pointwise 1x1 conv.

  No biases (each is followed by BatchNorm in Xception). Parameters:
  ``9 C_in + C_in C_out``.
  """

  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = DepthwiseConv2D(3, dtype=self.dtype, name="depthwise")(x)
    return nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype,
                   name="pointwise")(x)


class XceptionBlock(nn.Module):
  """Cadene's ``Block``: ``reps`` x (ReLU -> SeparableConv -> BN), a shortcut.

  ``grow_first`` puts the width change on the first separable conv (else on
  the last). ``start_with_relu=False`` drops the leading ReLU (block 1).
  ``strides=2`` appends a 3x3/2 max pool (padding 1). The shortcut is the
  identity when width and resolution are unchanged, else a strided 1x1 conv
  (no bias) -> BN.
  """

  features: int
  reps: int
  strides: int = 1
  start_with_relu: bool = True
  grow_first: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    in_features = x.shape[-1]
    if self.features != in_features or self.strides != 1:
      skip = nn.Conv(self.features, (1, 1), strides=(self.strides,) * 2,
                     use_bias=False, dtype=self.dtype, name="skip")(x)
      skip = torch_batch_norm(train, self.dtype, "skipbn")(skip)
    else:
      skip = x
    if self.grow_first:
      widths = [self.features] * self.reps
    else:
      widths = [in_features] * (self.reps - 1) + [self.features]
    h = x
    for i, width in enumerate(widths):
      if i > 0 or self.start_with_relu:
        h = nn.relu(h)
      h = SeparableConv(width, dtype=self.dtype, name=f"sepconv{i}")(h)
      h = torch_batch_norm(train, self.dtype, f"bn{i}")(h)
    if self.strides != 1:
      h = nn.max_pool(h, (3, 3), strides=(self.strides,) * 2,
                      padding=((1, 1), (1, 1)))
    return h + skip


class Xception(nn.Module):
  """Xception image detector: ``(logits [B, C], embedding [B, 2048])``.

  Input NHWC ``[B, H, W, 3]`` (FaceForensics++ uses 299x299 face crops
  normalised to [-1, 1]); the entry flow needs ``H, W >= 29`` for a
  non-empty feature map (two VALID 3x3 convs, then four /2 stages).

  Attributes:
    num_classes: output classes (set from the stream by ``make_model``).
    head: ``"softmax"`` or ``"oc_softmax"``; see ``heads.classifier_head``.
    dtype: computation dtype of convs and BatchNorm (params stay float32);
      pooling and the classifier run in float32.
    dropout_rate: dropout on the embedding before the classifier in
      training. 0 as Cadene/timm; FaceForensics++ fine-tunes with 0.5.
      > 0 needs the ``'dropout'`` rng in ``apply(..., train=True)``.
    width_multiplier: scales every width (1.0 = the reference; tests use a
      small value for speed).
    num_middle_blocks: middle-flow blocks (8 = the reference).
  """

  num_classes: int = 2
  head: str = "softmax"
  dtype: Any = jnp.float32
  dropout_rate: float = 0.0
  width_multiplier: float = 1.0
  num_middle_blocks: int = 8

  def _width(self, key: str) -> int:
    return max(1, int(round(_WIDTHS[key] * self.width_multiplier)))

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    check_rgb_images(x, "Xception")
    if self.width_multiplier <= 0 or self.num_middle_blocks < 0:
      raise ValueError(
          "config.model.width_multiplier must be > 0 and "
          "config.model.num_middle_blocks >= 0; got "
          f"{self.width_multiplier} and {self.num_middle_blocks}.")
    w = self._width
    x = x.astype(self.dtype)
    # Entry flow.
    x = nn.Conv(w("conv1"), (3, 3), strides=(2, 2), padding="VALID",
                use_bias=False, dtype=self.dtype, name="conv1")(x)
    x = nn.relu(torch_batch_norm(train, self.dtype, "bn1")(x))
    x = nn.Conv(w("conv2"), (3, 3), padding="VALID", use_bias=False,
                dtype=self.dtype, name="conv2")(x)
    x = nn.relu(torch_batch_norm(train, self.dtype, "bn2")(x))
    x = XceptionBlock(w("block1"), 2, 2, start_with_relu=False,
                      dtype=self.dtype, name="block1")(x, train)
    x = XceptionBlock(w("block2"), 2, 2, dtype=self.dtype,
                      name="block2")(x, train)
    x = XceptionBlock(w("block3"), 2, 2, dtype=self.dtype,
                      name="block3")(x, train)
    # Middle flow (reference blocks 4-11).
    for i in range(self.num_middle_blocks):
      x = XceptionBlock(w("block3"), 3, 1, dtype=self.dtype,
                        name=f"block{4 + i}")(x, train)
    # Exit flow.
    x = XceptionBlock(w("block12"), 2, 2, grow_first=False, dtype=self.dtype,
                      name="block12")(x, train)
    x = SeparableConv(w("conv3"), dtype=self.dtype, name="conv3")(x)
    x = nn.relu(torch_batch_norm(train, self.dtype, "bn3")(x))
    x = SeparableConv(w("conv4"), dtype=self.dtype, name="conv4")(x)
    x = nn.relu(torch_batch_norm(train, self.dtype, "bn4")(x))
    embedding = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    h = embedding
    if self.dropout_rate > 0:
      h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    logits = heads.classifier_head(self, h, self.head, self.num_classes)
    return logits, embedding
