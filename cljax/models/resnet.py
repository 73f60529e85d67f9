"""ResNet-18/34/50 image backbones in the torchvision layout (Flax Linen).

Input NHWC float images ``[B, H, W, C]`` (any ``C``: 3 for RGB or the FFT
spectrum of ``cljax/features/spectrum.py``); output ``(logits [B,
num_classes], embedding [B, D])`` with ``D = 512 * width / 64`` for the basic
block and ``2048 * width / 64`` for the bottleneck. The last layer is the
project's ``heads.classifier_head`` on exactly ``embedding``, so its kernel
sits at ``('classifier', 'kernel')``.

Architecture (He et al. 2016, as torchvision ``resnet18/34/50``):

1. Stem: Conv 7x7 stride 2, padding 3, no bias -> BatchNorm -> ReLU ->
   max-pool 3x3 stride 2, padding 1 (padding with -inf, as torch does).
   ``stem="small"``: Conv 3x3 stride 1 -> BatchNorm -> ReLU, no pool, for
   small images (the CIFAR ResNets' stem; not a torchvision layout).
2. Four stages of widths ``width * (1, 2, 4, 8)``; stage ``i`` has
   ``stage_sizes[i]`` blocks, the first block of stages 2-4 has stride 2.

   * ``"basic"``: Conv3x3(stride) -> BN -> ReLU -> Conv3x3 -> BN, plus the
     shortcut, -> ReLU (expansion 1).
   * ``"bottleneck"`` (ResNet v1.5, stride on the 3x3 as torchvision):
     Conv1x1 -> BN -> ReLU -> Conv3x3(stride) -> BN -> ReLU -> Conv1x1(4x)
     -> BN, plus the shortcut, -> ReLU (expansion 4).

   The shortcut is Conv1x1(stride, no bias) -> BN when the shape changes,
   the identity otherwise.
3. Global average pool over H, W = ``embedding``; ``classifier``.

Padding is explicit and symmetric, as torch's, not ``"SAME"`` (which pads
stride-2 layers asymmetrically on even inputs), so a torchvision checkpoint
converted by transposing kernels gives the same outputs. Convolutions use
torchvision's He-normal fan-out init. BatchNorm: eps 1e-5, running-average
momentum 0.9 (torch ``momentum=0.1``); ``train=True`` normalises with batch
statistics and updates ``batch_stats`` (apply with
``mutable=["batch_stats"]``), ``train=False`` uses the running averages.

Trainable parameters (conv kernels, BN scale and bias, classifier; BN
running statistics excluded), ``width=64`` on a 224x224x3 input, checked in
tests/models/test_resnet.py:

============  ===============  ============
model         1000 classes     2 classes
============  ===============  ============
ResNet-18     11,689,512       11,177,538
ResNet-34     21,797,672       21,285,698
ResNet-50     25,557,032       23,512,130
============  ===============  ============

The 1000-class counts equal torchvision's. The counts do not depend on the
image size (global pooling); they do depend on the input channels (stem
kernel ``7 * 7 * C * width``).

Example::

  model = ResNet34(num_classes=2)
  variables = model.init(rng, images)                  # images [B, 224, 224, 3]
  logits, embedding = model.apply(variables, images)   # eval mode
  (logits, embedding), state = model.apply(
      variables, images, train=True, mutable=["batch_stats"])
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cljax.models import heads

__all__ = ["ResNet", "ResNet18", "ResNet34", "ResNet50", "BLOCKS",
           "BasicBlock", "Bottleneck"]

# torchvision's init: kaiming_normal_(mode="fan_out", nonlinearity="relu").
_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
_BN_EPSILON = 1e-5


def _conv(features: int, kernel: int, stride: int, name: str,
          dtype: Any) -> nn.Conv:
  pad = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False,
                 kernel_init=_CONV_INIT, dtype=dtype, name=name)


class _Block(nn.Module):
  """Shared fields of the residual blocks."""

  features: int
  stride: int = 1
  train: bool = False
  momentum: float = 0.9
  dtype: Any = jnp.float32

  def _bn(self, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not self.train,
                        momentum=self.momentum, epsilon=_BN_EPSILON,
                        dtype=self.dtype, name=name)

  def _shortcut(self, x: jnp.ndarray, out_features: int) -> jnp.ndarray:
    if self.stride == 1 and x.shape[-1] == out_features:
      return x
    x = _conv(out_features, 1, self.stride, "downsample_conv", self.dtype)(x)
    return self._bn("downsample_bn")(x)


class BasicBlock(_Block):
  """Two 3x3 convolutions (ResNet-18/34); output width ``features``."""

  expansion = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    y = _conv(self.features, 3, self.stride, "conv1", self.dtype)(x)
    y = nn.relu(self._bn("bn1")(y))
    y = _conv(self.features, 3, 1, "conv2", self.dtype)(y)
    y = self._bn("bn2")(y)
    return nn.relu(y + self._shortcut(x, self.features))


class Bottleneck(_Block):
  """1x1 -> 3x3(stride) -> 1x1 (ResNet-50); output ``4 * features``."""

  expansion = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    out_features = self.features * self.expansion
    y = _conv(self.features, 1, 1, "conv1", self.dtype)(x)
    y = nn.relu(self._bn("bn1")(y))
    y = _conv(self.features, 3, self.stride, "conv2", self.dtype)(y)
    y = nn.relu(self._bn("bn2")(y))
    y = _conv(out_features, 1, 1, "conv3", self.dtype)(y)
    y = self._bn("bn3")(y)
    return nn.relu(y + self._shortcut(x, out_features))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
# "imagenet": 7x7 stride-2 conv + 3x3 stride-2 max-pool (torchvision), the
# input reduced 4x before the first block. "small": one 3x3 stride-1 conv,
# no pool (the CIFAR ResNets' stem) -- for small images whose evidence is
# pixel-level (an up-sampler's period-2 pattern), which the ImageNet stem
# averages away.
STEMS = ("imagenet", "small")


class ResNet(nn.Module):
  """A torchvision-layout ResNet; see the module docstring.

  Attributes:
    num_classes: output classes (set from the stream by ``make_model``).
    stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50).
    width: stem and first-stage width (64 in the standard models); stage
      ``i`` is ``width * 2**i`` wide (times 4 at a bottleneck's output).
    dtype: computation dtype (e.g. ``jnp.bfloat16`` on accelerators);
      parameters stay float32, and the pooled embedding and the logits are
      float32 whatever this is.
    head: ``"softmax"`` or ``"oc_softmax"``; see ``heads.classifier_head``.
    batch_norm_momentum: running-average momentum of every BatchNorm.
    stem: ``"imagenet"`` (torchvision's, the counts below) or ``"small"``
      (3x3 stride 1, no max-pool; see ``STEMS``).
  """

  num_classes: int = 2
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = "basic"
  width: int = 64
  dtype: Any = jnp.float32
  head: str = "softmax"
  batch_norm_momentum: float = 0.9
  stem: str = "imagenet"

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if self.block not in BLOCKS:
      raise ValueError(f"config.model.block={self.block!r}: choose one of "
                       f"{sorted(BLOCKS)}.")
    if x.ndim != 4:
      raise ValueError(
          f"ResNet expects images [batch, height, width, channels], got shape "
          f"{x.shape}. Use an image front end (config.frontend.name="
          "'spectrum' or 'rgb').")
    if self.stem not in STEMS:
      raise ValueError(f"config.model.stem={self.stem!r}: choose one of "
                       f"{list(STEMS)}.")
    block_cls = BLOCKS[self.block]
    x = x.astype(self.dtype)
    if self.stem == "imagenet":
      x = _conv(self.width, 7, 2, "conv1", self.dtype)(x)
    else:
      x = _conv(self.width, 3, 1, "conv1", self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train,
                     momentum=self.batch_norm_momentum, epsilon=_BN_EPSILON,
                     dtype=self.dtype, name="bn1")(x)
    x = nn.relu(x)
    if self.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for stage, num_blocks in enumerate(self.stage_sizes):
      for index in range(num_blocks):
        stride = 2 if stage > 0 and index == 0 else 1
        x = block_cls(self.width * 2 ** stage, stride=stride, train=train,
                      momentum=self.batch_norm_momentum, dtype=self.dtype,
                      name=f"layer{stage + 1}_{index}")(x)
    # Pool in float32: a bf16 mean over 49+ positions loses precision.
    embedding = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    logits = heads.classifier_head(self, embedding, self.head,
                                   self.num_classes)
    return logits.astype(jnp.float32), embedding


class ResNet18(ResNet):
  """ResNet-18: basic blocks ``(2, 2, 2, 2)``."""

  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = "basic"


class ResNet34(ResNet):
  """ResNet-34: basic blocks ``(3, 4, 6, 3)`` (seed 001's backbone)."""

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  block: str = "basic"


class ResNet50(ResNet):
  """ResNet-50: bottleneck blocks ``(3, 4, 6, 3)``."""

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  block: str = "bottleneck"
