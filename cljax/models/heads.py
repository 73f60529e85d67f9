r"""One-class softmax (OC-softmax) head and loss, as HM-Conformer uses them.

OC-softmax (Zhang, Jiang & Liu, "One-class learning towards synthetic voice
spoofing detection", IEEE SPL 2021) learns one direction :math:`w` in the
embedding space. For an embedding :math:`x` the score is the cosine

.. math:: c = \hat w^\top \hat x, \qquad \hat v = v / \lVert v \rVert_2,

and the loss pulls bona-fide embeddings inside a tight margin :math:`m_r` and
pushes spoofs outside :math:`m_f`:

.. math::
   \ell(c, y) = \operatorname{softplus}\big(\alpha (m_r - c)\big)
   \text{ if } y = \text{bona fide}, \qquad
   \operatorname{softplus}\big(\alpha (c - m_f)\big) \text{ if spoof},

averaged over the batch, with :math:`m_r = 0.9`, :math:`m_f = 0.2`,
:math:`\alpha = 20`.

Verified against talkingnow/HM-Conformer
``exp_lib/egg_exp/framework/loss/classification/oc_softmax.py``: weight
``[num_class=1, embedding_size]``, ``F.normalize`` of both the weight and the
input, ``scores[label == 0] = r_real - scores``, ``scores[label == 1] = scores
- r_fake``, ``softplus(alpha * scores).mean()``. At test time the official code
returns ``1 - cos`` (higher = spoof); cljax keeps ``cos`` (higher = bona fide).

Label convention (cljax and the official code): **class 0 = bona fide
(genuine), class 1 = spoof**. Higher cosine = more genuine.

cljax's EER code reads 2-column logits and scores with the genuine log-odds
``logits[:, 0] - logits[:, 1]``. :func:`oc_logits` turns a cosine into such
logits: :math:`z = \alpha\,(c - (m_r + m_f)/2)`, ``logits = [z/2, -z/2]``, so
the log-odds is :math:`z`, strictly increasing in :math:`c` (EER unchanged)
and ``argmax`` predicts bona fide above the mid-margin cosine 0.55.

Example::

  head = OCSoftmax(name="classifier")
  cos = head(embedding)                       # [B]
  loss = oc_softmax_loss(cos, labels)         # scalar
  logits = oc_logits(cos)                     # [B, 2], genuine = column 0
"""

from __future__ import annotations

from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

# Defaults of the official HM-Conformer arguments.py (r_real, r_fake, alpha).
M_REAL = 0.9
M_FAKE = 0.2
ALPHA = 20.0
# HM-Conformer's loss weights for heads [CLS@2, CLS@4, CLS@6, pooled, MCA]
# (arguments.py 'loss_weight').
HM_CONFORMER_LOSS_WEIGHTS = (0.4, 0.3, 0.2, 0.1, 0.1)
BONA_FIDE = 0

HEADS = ("softmax", "oc_softmax")

__all__ = [
    "OCSoftmax", "oc_softmax_per_example", "oc_softmax_loss", "oc_logits",
    "hm_conformer_per_example", "hm_conformer_loss",
    "HM_CONFORMER_LOSS_WEIGHTS", "M_REAL", "M_FAKE", "ALPHA", "HEADS",
    "classifier_head", "training_loss_per_example",
]


def _l2_normalize(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
  # torch F.normalize: x / max(||x||, 1e-12).
  norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
  return x / jnp.maximum(norm, 1e-12)


class OCSoftmax(nn.Module):
  """Cosine between the L2-normalised input and one learnt direction.

  The direction is stored as ``kernel`` of shape ``[D, 1]`` (a bias-free
  ``Dense`` layout), so a module named ``classifier`` exposes it at
  ``('classifier', 'kernel')``. Only its direction matters. Computed in
  float32 whatever the input dtype (cosines near the margins are sensitive).

  Returns ``cos [B]`` in ``[-1, 1]``, higher = more bona fide.
  """

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(x, 2)
    kernel = self.param("kernel", nn.initializers.he_uniform(),
                        (x.shape[-1], 1), jnp.float32)
    w = _l2_normalize(kernel, axis=0)
    x = _l2_normalize(x.astype(jnp.float32), axis=-1)
    return (x @ w)[:, 0]


def oc_softmax_per_example(cos: jnp.ndarray, labels: jnp.ndarray,
                           m_real: float = M_REAL, m_fake: float = M_FAKE,
                           alpha: float = ALPHA) -> jnp.ndarray:
  """Per-example OC-softmax loss ``float[B]`` (label 0 = bona fide)."""
  chex.assert_rank([cos, labels], 1)
  chex.assert_equal_shape([cos, labels])
  margin = jnp.where(labels == BONA_FIDE, m_real - cos, cos - m_fake)
  return jax.nn.softplus(alpha * margin)


def oc_softmax_loss(cos: jnp.ndarray, labels: jnp.ndarray,
                    m_real: float = M_REAL, m_fake: float = M_FAKE,
                    alpha: float = ALPHA) -> jnp.ndarray:
  """Mean OC-softmax loss over the batch (official ``loss.mean()``)."""
  return jnp.mean(oc_softmax_per_example(cos, labels, m_real, m_fake, alpha))


def oc_logits(cos: jnp.ndarray, m_real: float = M_REAL,
              m_fake: float = M_FAKE, alpha: float = ALPHA) -> jnp.ndarray:
  """2-column logits whose genuine log-odds ``l0 - l1`` is monotone in cos.

  ``z = alpha * (cos - (m_real + m_fake) / 2)``, logits ``[z/2, -z/2]``.
  """
  chex.assert_rank(cos, 1)
  z = alpha * (cos.astype(jnp.float32) - 0.5 * (m_real + m_fake))
  return jnp.stack([0.5 * z, -0.5 * z], axis=-1)


def hm_conformer_per_example(
    head_cos: jnp.ndarray, labels: jnp.ndarray,
    weights: Sequence[float] = HM_CONFORMER_LOSS_WEIGHTS,
    m_real: float = M_REAL, m_fake: float = M_FAKE,
    alpha: float = ALPHA) -> jnp.ndarray:
  """Per-example multi-head loss ``float[B]``: ``sum_i w_i OC(c_i, y)``.

  Its batch mean is :func:`hm_conformer_loss`; the per-example form is what
  a Strategy's ``classification_loss`` returns (so replay weights apply).
  """
  chex.assert_rank(head_cos, 2)
  if head_cos.shape[1] != len(weights):
    raise ValueError(
        f"hm_conformer_loss got {head_cos.shape[1]} heads but "
        f"{len(weights)} weights; give one weight per head.")
  labels = jnp.broadcast_to(labels[:, None], head_cos.shape)
  per_head = oc_softmax_per_example(
      head_cos.reshape(-1), labels.reshape(-1), m_real, m_fake,
      alpha).reshape(head_cos.shape)
  return per_head @ jnp.asarray(weights, jnp.float32)


def hm_conformer_loss(head_cos: jnp.ndarray, labels: jnp.ndarray,
                      weights: Sequence[float] = HM_CONFORMER_LOSS_WEIGHTS,
                      m_real: float = M_REAL, m_fake: float = M_FAKE,
                      alpha: float = ALPHA) -> jnp.ndarray:
  r"""HM-Conformer's multi-head loss :math:`\sum_i w_i\,\mathrm{OC}(c_i, y)`.

  Args:
    head_cos: ``[B, H]`` cosines of the H heads, in the order the model sows
      them (``[CLS@2, CLS@4, CLS@6, pooled frames, MCA]``).
    labels: ``int[B]``, 0 = bona fide.
    weights: one per head; official ``[0.4, 0.3, 0.2, 0.1, 0.1]``.

  Returns:
    The scalar weighted sum of the per-head batch-mean losses (as
    ``deepfake_detection_DA_multiloss.py`` sums ``loss_i * loss_weight[i]``).
  """
  return jnp.mean(hm_conformer_per_example(head_cos, labels, weights,
                                           m_real, m_fake, alpha))


def classifier_head(module: nn.Module, embedding: jnp.ndarray, head: str,
                    num_classes: int) -> jnp.ndarray:
  """The last layer of a detector, named ``classifier``: logits ``[B, C]``.

  Call it inside a compact ``__call__``; ``module`` is the calling model
  (it owns the layer and receives the sown cosines).

  * ``"softmax"``: ``Dense(num_classes)`` (2 classes = binary logistic
    regression on the logit difference, i.e. BCE).
  * ``"oc_softmax"``: :class:`OCSoftmax`; the cosine is sown as
    ``("intermediates", "head_cos")`` ``[B, 1]`` so the train step uses the
    OC-softmax loss (:func:`training_loss_per_example`), and the logits are
    :func:`oc_logits` of it.
  """
  if head == "softmax":
    return nn.Dense(num_classes, name="classifier")(embedding)
  if head == "oc_softmax":
    if num_classes != 2:
      raise ValueError(
          f"config.model.head='oc_softmax' is a binary head (bona fide vs "
          f"spoof) but the stream has {num_classes} classes; use "
          "head='softmax'.")
    cos = OCSoftmax(name="classifier")(embedding)
    module.sow("intermediates", "head_cos", cos[:, None])
    return oc_logits(cos)
  raise ValueError(f"config.model.head={head!r}: choose one of "
                   f"{list(HEADS)}.")


def training_loss_per_example(model: nn.Module, logits: jnp.ndarray,
                              intermediates, labels: jnp.ndarray
                              ) -> jnp.ndarray:
  """The per-example training loss a model asks for, ``float[B]``.

  A model that sows OC-softmax cosines ``("intermediates", "head_cos")
  [B, H]`` trains on :func:`hm_conformer_per_example` over those heads,
  weighted by its ``loss_weights`` field (HM-Conformer: 0.4, 0.3, 0.2, 0.1,
  0.1; one OC head: 1) with its margins; any other model on softmax
  cross-entropy of ``logits``. ``intermediates`` is the collection the
  model's ``apply(..., mutable=["intermediates"])`` returned (or ``{}``).
  """
  sown = (intermediates or {}).get("head_cos")
  if sown is None:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  head_cos = sown[-1]  # sow appends to a tuple; one call per forward pass
  weights = getattr(model, "loss_weights", None) or (1.0,) * head_cos.shape[1]
  return hm_conformer_per_example(
      head_cos, labels, weights,
      getattr(model, "m_real", M_REAL), getattr(model, "m_fake", M_FAKE),
      getattr(model, "alpha", ALPHA))
