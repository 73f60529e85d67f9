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
