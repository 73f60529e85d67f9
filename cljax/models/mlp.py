"""MLP: a detector over precomputed feature vectors or sequences.

Input ``[B, D]`` (e.g. a pooled SSL embedding) or ``[B, T, D]`` (mean-pooled
over time first); output ``(logits [B, num_classes], embedding [B, E])`` with
the final ``nn.Dense`` named ``classifier`` applied to exactly ``embedding``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cljax.models import heads


class MLP(nn.Module):
  r"""Dense -> ReLU layers, then a linear ``classifier``.

  .. math::
     h_0 = \bar x, \quad h_i = \mathrm{ReLU}(W_i h_{i-1} + b_i), \quad
     \text{embedding} = h_n, \quad \text{logits} = W_c h_n + b_c,

  where :math:`\bar x` is ``x`` or its mean over time for ``[B, T, D]``
  input. With ``hidden_sizes=()`` the embedding is :math:`\bar x` itself and
  the model is a linear (logistic-regression) probe.

  Attributes:
    num_classes: output classes (set from the stream by ``make_model``).
    head: ``"softmax"`` (a Dense classifier) or ``"oc_softmax"`` (one-class
      softmax, trained with the OC loss); see ``heads.classifier_head``.
    hidden_sizes: widths of the hidden layers; the last is the embedding.
    dropout_rate: dropout after each hidden layer in training; > 0 needs the
      ``'dropout'`` rng in ``apply``.
  """

  num_classes: int = 2
  head: str = "softmax"
  hidden_sizes: Sequence[int] = (256,)
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if x.ndim == 3:
      x = jnp.mean(x, axis=1)
    if x.ndim != 2:
      raise ValueError(
          f"MLP expects features [batch, dim] or [batch, time, dim], got "
          f"shape {x.shape}.")
    x = x.astype(jnp.float32)
    for i, width in enumerate(self.hidden_sizes):
      x = nn.relu(nn.Dense(width, name=f"hidden{i}")(x))
      if self.dropout_rate > 0:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    embedding = x
    logits = heads.classifier_head(self, embedding, self.head,
                                   self.num_classes)
    return logits, embedding
