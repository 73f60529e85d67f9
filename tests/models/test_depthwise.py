"""DepthwiseConv2D equals Flax's grouped nn.Conv: parameter and outputs."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models._image import DepthwiseConv2D


@pytest.mark.parametrize("kernel,stride,shape", [
    (3, 1, (2, 9, 9, 4)),      # Xception's separable convs
    (5, 2, (2, 10, 10, 6)),    # EfficientNet's strided 5x5, even input
    (3, 2, (1, 7, 7, 3)),      # strided 3x3, odd input
])
def test_matches_grouped_conv(kernel, stride, shape):
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  pad = (kernel - 1) // 2
  grouped = nn.Conv(shape[-1], (kernel, kernel), strides=(stride, stride),
                    padding=((pad, pad), (pad, pad)),
                    feature_group_count=shape[-1], use_bias=False)
  ours = DepthwiseConv2D(kernel, stride)
  reference = grouped.init(jax.random.PRNGKey(1), x)
  mine = ours.init(jax.random.PRNGKey(1), x)
  # The same parameter tree, shape and initial values (same initialiser).
  np.testing.assert_array_equal(mine["params"]["kernel"],
                                reference["params"]["kernel"])
  want = grouped.apply(reference, x)
  got = ours.apply(reference, x)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5)
  # Gradients with respect to input and kernel agree too.
  loss = lambda m: lambda v, x: jnp.sum(m.apply(v, x) ** 2)
  for g, w in zip(jax.tree.leaves(jax.grad(loss(ours), (0, 1))(reference, x)),
                  jax.tree.leaves(jax.grad(loss(grouped), (0, 1))(reference,
                                                                  x))):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
