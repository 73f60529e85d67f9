r"""OWM: orthogonal weight modification of the classifier layer, as optax.

Reference: G. Zeng, Y. Chen, B. Cui, S. Yu, "Continual learning of
context-dependent processing in neural networks", Nature Machine
Intelligence 1, 364-372 (2019); the copy compared in the audio-deepfake
papers is ``avalanche/training/plugins/owm.py`` of
Cecile-hi/Radian-Weight-Modification (and of the EVDA benchmark).

Math. The classifier kernel gradient ``G`` (``[d, C]`` in Flax) is replaced
by ``P G``, where ``P`` is a recursive-least-squares projector onto the
orthogonal complement of the layer inputs seen so far. Each step, with
``r`` the batch mean of the layer input (the embedding)::

  k = P r;   P <- P - k k^T / (alpha + r^T k)

so for inputs ``X`` that ``P`` has learned, ``X (P G) ~ 0``: the update
leaves the layer's outputs on those inputs unchanged (up to ``alpha``).

Modes (REFERENCE.md, "Orthogonal-projection family"):

* ``well_posed`` (default): the recursion above, symmetrised, no
  renormalisation; ``projector_schedule`` ``"past"`` (P frozen during a task,
  the task's inputs committed at its end: protects past tasks only) or
  ``"online"`` (P learns each batch, then projects it: classic OWM).
* ``faithful``: the official code exactly: element-wise division
  ``k k^T / (alpha + k r)`` (``k r`` is ``d x d``), then ``P / ||P||_F``;
  nothing on the first task; ``G <- P G`` from the second task on. The
  official runners never reach it (REFERENCE.md); cljax applies it.

Args (of ``owm``):
  mode, projector_schedule, alpha: as above (official ``alpha`` 1).
  layer: the kernel to modify: ``/`` path suffix, key sequence or predicate
    ``(path, leaf) -> bool``; default ``"classifier/kernel"``.

Returns:
  An ``optax.GradientTransformationExtraArgs`` (state ``OWMState``);
  ``update(grads, state, params, *, features, labels)``.

Example::

  tx = optax.chain(owm(), optax.adam(1e-3))
  updates, opt_state = tx.update(grads, opt_state, params,
                                 features=embedding, labels=labels)
  opt_state = commit(opt_state)   # at the end of each task
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from cljax.strategies import _projection
from cljax.strategies._projection import commit  # Re-exported.
from cljax.strategies.base import Strategy, StrategyContext

__all__ = ["OWMState", "owm", "commit", "make"]


class OWMState(NamedTuple):
  """State of ``owm``."""

  projector: jax.Array          # [d, d], P applied to the gradient
  pending_projector: jax.Array  # [d, d], P learning the current task
  task_count: jax.Array         # int32 scalar


def owm(*, mode: str = "well_posed", projector_schedule: str | None = None,
        alpha: float = _projection.DEFAULT_ALPHA,
        layer: _projection.LayerSpec = "classifier/kernel"
        ) -> optax.GradientTransformationExtraArgs:
  """Orthogonal weight modification; see the module docstring."""
  schedule = _projection.validate(mode, projector_schedule, alpha, "owm()")

  def rotation(grad, projector, q, state, features, labels, logits):
    del q, state, features, labels, logits
    return projector @ grad

  return _projection.surgery_transform(
      OWMState, rotation, mode=mode, schedule=schedule, alpha=alpha,
      layer=layer, needs_q=False)


def make(context: StrategyContext, mode: str = "well_posed",
         projector_schedule: str | None = None,
         alpha: float = _projection.DEFAULT_ALPHA,
         layer: str = "classifier/kernel") -> Strategy:
  """OWM for the continual loop (fields from ``config.strategy``)."""
  del context
  _projection.validate(mode, projector_schedule, alpha)
  tx = owm(mode=mode, projector_schedule=projector_schedule, alpha=alpha,
           layer=layer)
  return _projection.committing_strategy("owm", tx, OWMState)
