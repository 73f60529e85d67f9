r"""Herding exemplar selection (iCaRL, Algorithm 4), jittable.

Rebuffi, Kolesnikov, Sperl, Lampert, "iCaRL: Incremental Classifier and
Representation Learning", CVPR 2017, Algorithm 4 (ConstructExemplarSet).
With :math:`\varphi(x)` the L2-normalised embedding of example :math:`x` and
:math:`\mu = \frac{1}{n} \sum_x \varphi(x)` the class mean, exemplars are
chosen greedily, for :math:`k = 1, \dots, m`,

.. math::
   p_k = \arg\min_{x \notin \{p_1..p_{k-1}\}}
         \Big\| \mu - \frac{1}{k}\Big(\varphi(x)
                + \sum_{j<k} \varphi(p_j)\Big) \Big\|_2 ,

so every prefix :math:`p_1..p_k` has a mean as close to :math:`\mu` as one
greedy step allows. The *order* matters: iCaRL's ReduceExemplarSet
(Algorithm 5) shrinks a set to :math:`m' < m` by keeping its first
:math:`m'` exemplars, so this returns the indices in selection order.

Notes: the paper writes :math:`x \in X` without excluding earlier picks;
its Algorithm 4 defines a *set* of :math:`m` distinct exemplars, and the
official Theano/TF code counts an example once even when the argmax returns
it again (looping until :math:`m` distinct ones are found). Here a picked
example is excluded, which gives :math:`m` distinct exemplars in :math:`m`
steps. :math:`\mu` is the plain mean of the normalised embeddings (not
renormalised), as in the paper. Ties: the smallest index.

Padded rows (``mask=False``) are never picked and do not enter :math:`\mu`;
when fewer than :math:`m` rows are valid, the trailing entries are ``-1``.

Example::

  order = herding(embeddings, 20, mask=valid)   # int32[20]
  exemplars = order[:10]                        # ReduceExemplarSet to 10
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

__all__ = ["herding", "l2_normalize"]


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero)."""
  norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(norm, eps)


def herding(embeddings: jax.Array, m: int, mask: jax.Array | None = None
            ) -> jax.Array:
  """Indices of ``m`` herding exemplars of ``embeddings`` [N, D], in order.

  Args:
    embeddings: float[N, D], one row per candidate (normalised inside).
    m: how many to select (static).
    mask: optional bool[N]; ``False`` rows are padding.

  Returns:
    int32[m]: the selected rows in selection order; ``-1`` past the number of
    valid rows.
  """
  chex.assert_rank(embeddings, 2)
  n = embeddings.shape[0]
  if mask is None:
    mask = jnp.ones((n,), bool)
  chex.assert_shape(mask, (n,))
  mask = mask.astype(bool)
  phi = l2_normalize(embeddings.astype(jnp.float32))
  phi = jnp.where(mask[:, None], phi, 0.0)
  num_valid = jnp.sum(mask)
  mu = jnp.sum(phi, axis=0) / jnp.maximum(num_valid, 1)

  def select(k, carry):
    running_sum, available, order = carry
    candidate_means = (running_sum[None, :] + phi) / (k + 1)
    distance = jnp.sum(jnp.square(mu[None, :] - candidate_means), axis=-1)
    distance = jnp.where(available, distance, jnp.inf)
    pick = jnp.argmin(distance).astype(jnp.int32)
    has_pick = jnp.any(available)
    order = order.at[k].set(jnp.where(has_pick, pick, -1))
    running_sum = running_sum + jnp.where(has_pick, phi[pick], 0.0)
    available = available.at[pick].set(available[pick] & ~has_pick)
    return running_sum, available, order

  init = (jnp.zeros_like(mu), mask, jnp.full((m,), -1, jnp.int32))
  _, _, order = jax.lax.fori_loop(0, m, select, init)
  return order
