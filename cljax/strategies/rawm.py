r"""RAWM: regularized adaptive weight modification, as optax.

Reference: X. Zhang, J. Yi, J. Tao, C. Wang, C. Y. Zhang, "Do You Remember?
Overcoming Catastrophic Forgetting for Fake Audio Detection", ICML 2023
(official code: Cecile-hi/Regularized-Adaptive-Weight-Modification; the
version compared in EVDA is ``avalanche/training/plugins/rawm.py`` of
Cecile-hi/Evolving-FAD-CL-Benchmark).

Math. Like RWM (``cljax.strategies.rwm``) the classifier kernel gradient
``G`` becomes ``(P + beta Q) G``, with ``P`` OWM's projector over past
inputs and ``Q`` the old-input direction, but the coefficient comes from the
batch's class counts::

  beta = (n_genuine + 1) / (n_fake + 1)

(EVDA's formula; genuine = ``genuine_class``, every other class is fake).
More genuine speech in a batch turns the update towards plasticity. The
``+1``s keep it finite on a one-class batch, where the official counting
(``fake_num, real_num = torch.unique(y, return_counts=True)[1]``) crashes.
The paper's regulariser ("force the network to remember the old
distribution") is absent from the official code; ``make(kd_weight > 0)``
adds it in the form cljax reads it, a distillation term on the model saved
at the end of the previous task (teacher ``t``, student ``s``, temperature
``T``, after the first task only)::

  L_kd = kd_weight * T^2 * mean_batch KL(softmax(z_t / T) || softmax(z_s / T))

The teacher's variables live in the strategy state and its forward pass runs
in the same jitted step (``cljax.strategies._teacher``, shared with LwF, KD,
CoReD and TG). Off by default (``kd_weight=0``), as in the
official code.

Modes: ``well_posed`` (default: textbook projector, ``Q = I - P``, so
``(P + beta Q) G = beta G + (1 - beta) P G``) and ``faithful`` (official:
element-wise P update, Frobenius normalisation, degenerate Q, first task
skipped); see ``cljax.strategies._projection``. The official runners never
apply the modification (REFERENCE.md); cljax does.

Args (of ``rawm``):
  genuine_class: the label of bona fide speech (cljax: 0).
  mode, projector_schedule, alpha, layer: as in ``owm``.

Returns:
  An ``optax.GradientTransformationExtraArgs`` (state ``RAWMState``);
  ``update(grads, state, params, *, features, labels)``.

Example::

  tx = optax.chain(rawm(), optax.adam(1e-3))
  updates, opt_state = tx.update(grads, opt_state, params,
                                 features=embedding, labels=labels)
  opt_state = commit(opt_state)   # at the end of each task
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies import _projection
from cljax.strategies import _teacher
from cljax.strategies._projection import commit  # Re-exported.
# Re-exported: the KL form, T^2 * mean_batch KL(softmax(t/T) || softmax(s/T)).
from cljax.strategies._teacher import distillation_loss
from cljax.strategies.base import Strategy, StrategyContext

__all__ = ["RAWMState", "rawm", "rawm_beta", "commit", "distillation_loss",
           "make"]


class RAWMState(NamedTuple):
  """State of ``rawm``."""

  projector: jax.Array          # [d, d], P applied to the gradient
  pending_projector: jax.Array  # [d, d], P learning the current task
  task_count: jax.Array         # int32 scalar


def rawm_beta(labels: jax.Array, genuine_class: int = 0) -> jax.Array:
  """``(n_genuine + 1) / (n_fake + 1)`` over the batch's labels."""
  genuine = jnp.sum(labels == genuine_class).astype(jnp.float32)
  fake = labels.shape[0] - genuine
  return (genuine + 1.0) / (fake + 1.0)


def rawm(*, genuine_class: int = 0, mode: str = "well_posed",
         projector_schedule: str | None = None,
         alpha: float = _projection.DEFAULT_ALPHA,
         layer: _projection.LayerSpec = "classifier/kernel"
         ) -> optax.GradientTransformationExtraArgs:
  """Regularized adaptive weight modification; see the module docstring."""
  schedule = _projection.validate(mode, projector_schedule, alpha, "rawm()")

  def rotation(grad, projector, q, state, features, labels, logits):
    del state, features, logits
    beta = rawm_beta(labels, genuine_class)
    if q is None:
      return _projection.rotate_well_posed(grad, projector, beta)
    return _projection.rotate_faithful(grad, projector, q, beta)

  return _projection.surgery_transform(
      RAWMState, rotation, mode=mode, schedule=schedule, alpha=alpha,
      layer=layer, needs_q=True)


def make(context: StrategyContext, mode: str = "well_posed",
         projector_schedule: str | None = None,
         alpha: float = _projection.DEFAULT_ALPHA,
         layer: str = "classifier/kernel", kd_weight: float = 0.0,
         kd_temperature: float = 2.0) -> Strategy:
  """RAWM for the continual loop (fields from ``config.strategy``).

  ``kd_weight > 0`` adds the paper's regulariser (module docstring) with
  temperature ``kd_temperature``.
  """
  _projection.validate(mode, projector_schedule, alpha)
  if kd_weight < 0 or kd_temperature <= 0:
    raise registry.ConfigError(
        f"config.strategy.kd_weight={kd_weight} must be >= 0 and "
        f"config.strategy.kd_temperature={kd_temperature} > 0.")
  tx = rawm(mode=mode, projector_schedule=projector_schedule, alpha=alpha,
            layer=layer)
  strategy = _projection.committing_strategy("rawm", tx, RAWMState)
  if kd_weight == 0:
    return strategy

  def loss(params, strategy_state, batch, outputs):
    del params
    teacher_logits, _ = _teacher.teacher_outputs(
        context.model, strategy_state, batch["features"])
    kd = distillation_loss(outputs[0], teacher_logits, kd_temperature)
    return kd_weight * strategy_state["active"] * kd, {"kd": kd}

  def end_task(state, task):
    # The projector commits first, then the model it leaves teaches.
    return _teacher.end_task(strategy.end_task(state, task), task)

  return strategy._replace(init_state=_teacher.init_state, loss=loss,
                           end_task=end_task)
