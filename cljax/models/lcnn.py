r"""LFCC-LCNN: the ASVspoof 2021 LA/DF baseline (Wang & Yamagishi, NII).

Verified against asvspoof-challenge/2021
``LA/Baseline-LFCC-LCNN/project/baseline_LA/model.py`` (``m_transform``,
``m_before_pooling``, ``m_output_act``, ``_compute_embedding``) and the NII
``sandbox/block_nn.py`` (``MaxFeatureMap2D``: split channels into two halves
and take the element-wise max; ``BLSTMLayer``: ``nn.LSTM(in, out // 2,
bidirectional=True)``).

Input: features ``[B, T, F]`` (official: LFCC 20 coefficients + deltas + delta-
deltas = 60, n_fft 1024, 0-4 kHz, hop 160, window 320; any ``F`` works here).
Layers (``MFM`` halves the channels, ``BN`` = BatchNorm2d(affine=False),
``MP`` = 2x2 max-pool stride 2):

  Conv5x5(1->64) MFM MP | Conv1x1(32->64) MFM BN Conv3x3(32->96) MFM MP BN |
  Conv1x1(48->96) MFM BN Conv3x3(48->128) MFM MP |
  Conv1x1(64->128) MFM BN Conv3x3(64->64) MFM BN |
  Conv1x1(32->64) MFM BN Conv3x3(32->64) MFM MP | Dropout(0.7)

-> ``[B, T/16, F/16, 32]`` -> ``[B, T/16, 32 * (F//16)]`` (channel-major as
torch) ``= h``; two BLSTM layers (hidden ``16 * (F//16)`` per direction)
``= l``; ``embedding = mean_t(l + h)``; ``classifier`` = Dense(num_classes).

The official output layer is Dense(96 -> 1) + sigmoid + BCE; cljax uses a
2-class softmax ``classifier`` (genuine = class 0) so every cljax method and
the EER code apply unchanged; ``num_classes=1`` gives the official single
logit.

Parameters for ``F = 60`` (hand sum from the official layer list, tested):
convs 1664 + 2112 + 27744 + 4704 + 55424 + 8320 + 36928 + 2112 + 18496 =
157,504; BLSTMs 2 x 2 x (4 * 48 * (96 + 48) + 2 * 4 * 48) = 112,128 (PyTorch
LSTMs carry two bias vectors, b_ih and b_hh; kept here so the counts match);
output 96 * 1 + 1 = 97 -> **269,729** with ``num_classes=1``; 269,826 with the
default 2-class classifier.

Example::

  model = LCNN()
  logits, embedding = model.apply(variables, lfcc_60, train=False)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax.models import heads

_BN_MOMENTUM = 0.9


def max_feature_map(x: jnp.ndarray) -> jnp.ndarray:
  """MFM over the channel (last) axis: ``max(x[..., :C/2], x[..., C/2:])``."""
  half = x.shape[-1] // 2
  return jnp.maximum(x[..., :half], x[..., half:])


class LSTM(nn.Module):
  """Unidirectional LSTM with PyTorch's gate order (i, f, g, o) and biases.

  The input projection of all steps is one matmul; the recurrence scans.
  """

  hidden: int
  reverse: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    batch = x.shape[0]
    x_proj = nn.Dense(4 * self.hidden, dtype=self.dtype, name="ih")(x)
    hh_kernel = self.param("hh_kernel", nn.initializers.orthogonal(),
                           (self.hidden, 4 * self.hidden)).astype(self.dtype)
    hh_bias = self.param("hh_bias", nn.initializers.zeros,
                         (4 * self.hidden,)).astype(self.dtype)
    zeros = jnp.zeros((batch, self.hidden), self.dtype)

    def step(carry, gates_in):
      h, c = carry
      gates = gates_in + h @ hh_kernel + hh_bias
      i, f, g, o = jnp.split(gates.astype(jnp.float32), 4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
      h = (jax.nn.sigmoid(o) * jnp.tanh(c)).astype(self.dtype)
      return (h, c), h

    inputs = jnp.swapaxes(x_proj, 0, 1)                     # [T, B, 4H]
    init = (zeros, jnp.zeros((batch, self.hidden), jnp.float32))
    _, hs = jax.lax.scan(step, init, inputs, reverse=self.reverse)
    return jnp.swapaxes(hs, 0, 1)


class BLSTM(nn.Module):
  """NII ``BLSTMLayer``: forward and backward LSTMs, outputs concatenated."""

  dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    fwd = LSTM(self.dim // 2, dtype=self.dtype, name="forward")(x)
    bwd = LSTM(self.dim // 2, reverse=True, dtype=self.dtype,
               name="backward")(x)
    return jnp.concatenate([fwd, bwd], axis=-1)


class LCNN(nn.Module):
  """LFCC-LCNN (see the module docstring).

  Attributes:
    num_classes: classifier width (2 in cljax; 1 = official BCE logit).
    head: ``"softmax"`` (a Dense classifier) or ``"oc_softmax"`` (one-class
      softmax, trained with the OC loss); see ``heads.classifier_head``.
    dropout_rate: dropout after the conv stack (official 0.7).
    dtype: computation dtype (``jnp.bfloat16`` for mixed precision).
  """

  num_classes: int = 2
  head: str = "softmax"
  dropout_rate: float = 0.7
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if features.ndim != 3:
      raise ValueError(
          f"LCNN expects features [batch, frames, coefficients], got shape "
          f"{features.shape}. Use an LFCC front end.")
    if features.shape[1] < 16 or features.shape[2] < 16:
      raise ValueError(
          f"LCNN pools time and frequency by 16; got {features.shape[1]} "
          f"frames x {features.shape[2]} coefficients (need >= 16 each).")
    conv_id = iter(range(100))
    bn_id = iter(range(100))

    def conv(x, features_out, kernel):
      pad = kernel // 2
      return nn.Conv(features_out, (kernel, kernel), padding=[(pad, pad)] * 2,
                     dtype=self.dtype, name=f"conv{next(conv_id)}")(x)

    def bn(x):
      return nn.BatchNorm(use_running_average=not train, use_scale=False,
                          use_bias=False, momentum=_BN_MOMENTUM,
                          dtype=self.dtype, name=f"bn{next(bn_id)}")(x)

    def pool(x):
      return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")

    x = features[..., None].astype(self.dtype)              # [B, T, F, 1]
    x = pool(max_feature_map(conv(x, 64, 5)))
    x = max_feature_map(conv(x, 64, 1))
    x = bn(x)
    x = max_feature_map(conv(x, 96, 3))
    x = bn(pool(x))
    x = max_feature_map(conv(x, 96, 1))
    x = bn(x)
    x = max_feature_map(conv(x, 128, 3))
    x = pool(x)
    x = max_feature_map(conv(x, 128, 1))
    x = bn(x)
    x = max_feature_map(conv(x, 64, 3))
    x = bn(x)
    x = max_feature_map(conv(x, 64, 1))
    x = bn(x)
    x = pool(max_feature_map(conv(x, 64, 3)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    batch, frames, bins, channels = x.shape
    # torch: (b, c, t, f).permute(0, 2, 1, 3).view(b, t, c * f).
    hidden = jnp.transpose(x, (0, 1, 3, 2)).reshape(batch, frames,
                                                    channels * bins)
    lstm = BLSTM(hidden.shape[-1], self.dtype, name="blstm0")(hidden)
    lstm = BLSTM(hidden.shape[-1], self.dtype, name="blstm1")(lstm)
    embedding = jnp.mean((lstm + hidden).astype(jnp.float32), axis=1)
    logits = heads.classifier_head(self, embedding, self.head,
                                   self.num_classes)
    return logits, embedding
