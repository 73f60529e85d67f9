"""Pieces the image backbones share (Xception, EfficientNet)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

# PyTorch BatchNorm2d defaults: momentum 0.1 on the new value (Flax 0.9 on
# the old), eps 1e-5; the reference models were trained with them.
TORCH_BN_MOMENTUM = 0.9
TORCH_BN_EPSILON = 1e-5


def torch_batch_norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
  """``nn.BatchNorm`` with PyTorch's defaults (call inside a compact method)."""
  return nn.BatchNorm(use_running_average=not train,
                      momentum=TORCH_BN_MOMENTUM, epsilon=TORCH_BN_EPSILON,
                      dtype=dtype, name=name)


def check_rgb_images(x: jnp.ndarray, model: str) -> None:
  """ValueError unless ``x`` is ``[batch, height, width, 3]`` (NHWC RGB)."""
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(
        f"{model} expects images [batch, height, width, 3] (NHWC, RGB), got "
        f"shape {x.shape}. Check the image pipeline's layout (channels "
        "last).")


class DepthwiseConv2D(nn.Module):
  """``nn.Conv(C, (k, k), strides, padding, feature_group_count=C,
  use_bias=False)`` as ``k * k`` shifted multiply-adds.

  Same parameter (``kernel [k, k, 1, C]``, the same default initialiser)
  and the same outputs (tested against ``nn.Conv``). XLA's CPU grouped
  convolution is several times slower forward and backward than this for
  the depthwise layers of Xception and EfficientNet (the same finding as
  HM-Conformer's 1-D ``DepthwiseConv1D``); on an accelerator both are fast.
  Each tap reads the padded input with the layer's stride, so a strided
  layer computes only its own outputs.
  """

  kernel_size: int
  strides: int = 1
  padding: int | None = None   # symmetric; None: (kernel_size - 1) // 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    k, s = self.kernel_size, self.strides
    channels = x.shape[-1]
    kernel = self.param("kernel", nn.linear.default_kernel_init,
                        (k, k, 1, channels), jnp.float32)
    kernel = kernel[:, :, 0, :].astype(self.dtype)
    pad = (k - 1) // 2 if self.padding is None else self.padding
    x = jnp.pad(x.astype(self.dtype),
                ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height = (x.shape[1] - k) // s + 1
    width = (x.shape[2] - k) // s + 1
    out = None
    for i in range(k):
      for j in range(k):
        tap = x[:, i:i + (height - 1) * s + 1:s,
                j:j + (width - 1) * s + 1:s, :] * kernel[i, j]
        out = tap if out is None else out + tap
    return out
