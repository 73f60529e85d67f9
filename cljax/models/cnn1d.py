"""CNN1D: the default small CPU detector over log-mel features.

Input ``[B, T, F]`` (time x mel bands, bands as channels); output
``(logits [B, num_classes], embedding [B, embed_dim])``. The last layer is a
``nn.Dense`` named ``classifier`` applied to exactly ``embedding``, so methods
that act on the classifier kernel find it at ``('classifier', 'kernel')``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cljax.models import heads


class CNN1D(nn.Module):
  r"""Three 1-D conv blocks, mean+std pooling, an embedding and a classifier.

  Layers, with :math:`x \in \mathbb{R}^{T \times F}`:

  1. :math:`x \leftarrow x - \frac{1}{T}\sum_t x_t` per utterance and band.
     On log features a fixed channel gain or EQ is an additive per-band
     constant, so removing the time mean makes the detector insensitive to
     recording level and channel colouring (cepstral mean normalisation).
  2. For each width in ``channels``: Conv1D(kernel_size, stride, dilation)
     -> BatchNorm -> ReLU. The conv has no bias: BatchNorm's shift replaces it.
  3. Statistics pooling :math:`[\mu, \sigma]` over time,
     :math:`\sigma = \sqrt{\mathrm{Var}_t + 10^{-5}}`.
  4. Dense(embed_dim) -> ReLU (-> Dropout) = ``embedding``.
  5. ``classifier``: Dense(num_classes) on ``embedding``.

  Attributes:
    num_classes: output classes (set from the stream by ``make_model``).
    head: ``"softmax"`` (a Dense classifier) or ``"oc_softmax"`` (one-class
      softmax, trained with the OC loss); see ``heads.classifier_head``.
    channels: conv widths, one conv block each.
    kernel_size: conv kernel length in frames.
    strides: conv stride per block (an int applies to all blocks).
    dilations: conv dilation per block (an int applies to all blocks).
    embed_dim: embedding width ``D``.
    dropout_rate: dropout on the embedding in training; > 0 needs the
      ``'dropout'`` rng in ``apply``.
    batch_norm_momentum: running-average momentum of BatchNorm.
  """

  num_classes: int = 2
  head: str = "softmax"
  channels: Sequence[int] = (64, 64, 64)
  kernel_size: int = 5
  strides: int | Sequence[int] = 1
  dilations: int | Sequence[int] = 1
  embed_dim: int = 128
  dropout_rate: float = 0.0
  batch_norm_momentum: float = 0.9

  def _per_block(self, value: int | Sequence[int], field: str) -> list[int]:
    if isinstance(value, int):
      return [value] * len(self.channels)
    value = list(value)
    if len(value) != len(self.channels):
      raise ValueError(
          f"config.model.{field} has {len(value)} entries but "
          f"config.model.channels has {len(self.channels)}; give one per conv "
          "block or a single int.")
    return value

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if x.ndim != 3:
      raise ValueError(
          f"CNN1D expects features [batch, time, bands], got shape {x.shape}. "
          "Use a time-frequency front end (config.frontend.name='logmel').")
    x = x.astype(jnp.float32)
    x = x - jnp.mean(x, axis=1, keepdims=True)
    strides = self._per_block(self.strides, "strides")
    dilations = self._per_block(self.dilations, "dilations")
    for i, (width, stride, dilation) in enumerate(
        zip(self.channels, strides, dilations)):
      x = nn.Conv(width, kernel_size=(self.kernel_size,), strides=(stride,),
                  kernel_dilation=(dilation,), padding="SAME", use_bias=False,
                  name=f"conv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train,
                       momentum=self.batch_norm_momentum, name=f"bn{i}")(x)
      x = nn.relu(x)
    mean = jnp.mean(x, axis=1)
    std = jnp.sqrt(jnp.var(x, axis=1) + 1e-5)
    x = jnp.concatenate([mean, std], axis=-1)
    x = nn.relu(nn.Dense(self.embed_dim, name="embed")(x))
    if self.dropout_rate > 0:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    embedding = x
    logits = heads.classifier_head(self, embedding, self.head,
                                   self.num_classes)
    return logits, embedding
