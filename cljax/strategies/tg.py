r"""TG: T-GD's transfer recipe -- L2-SP towards the teacher, gated by it.

Jeon, Bang, Kim & Woo, "T-GD: Transferable GAN-generated Images Detection
Framework", ICML 2020 (official code: cutz-j/T-GD ``transfer.py``; the copy
seed 002 compares against: alsgkals2/CoReD ``TGD.py``). The teacher is the
model after the previous task and the student starts from it. Each batch:

.. math::
   \gamma = s\, \sigma\big(-\mathrm{CE}(z_t, y)\big), \qquad
   L = \mathrm{CE}(z_s, y) + \gamma \Big(
       \tfrac{a}{2} \lVert w_S - w^{t}_S \rVert^2
     + \tfrac{b}{2} \lVert w_{\bar S} \rVert^2 \Big),

with :math:`\mathrm{CE}(z_t, y)` the teacher's mean cross-entropy on the
batch's true labels (no gradient), :math:`S` the backbone, :math:`\bar S`
the classifier (``fc_name`` / ``last_linear`` there, ``classifier`` here),
:math:`w^t` the teacher's weights, :math:`s = a = b = 1` (``--s 1.0``; the
code has no separate strengths, fields ``backbone_weight`` / ``head_weight``
let a config set them). A batch the teacher already explains (low CE) pulls
the student hard towards it; a batch the teacher gets wrong lets it move.
The first task has no teacher: plain cross-entropy.

The penalty is ``cljax.strategies.l2sp.penalty`` (L2-SP's
:math:`\Omega`, with the teacher's weights as :math:`w^0`), added to the
loss rather than chained as the ``l2sp`` transform because its weight
:math:`\gamma` changes every batch with the teacher's outputs, which only
the loss sees.

"Self-training" in the official code is not a pseudo-label loss: every 200
epochs ``teacher_model.load_state_dict(student_model.state_dict())`` makes
the student the new teacher (and, as the saved anchor tensors alias the
teacher's, the new L2-SP anchor). In the continual loop the teacher is
renewed at each task boundary (``end_task``); tasks here are far shorter
than 200 epochs, so no renewal inside a task is offered. Not copied, as
outside the method: CutMix and the JPEG/blur augmentations of
``transfer.py``; ``TGD.py``'s indentation slip that steps the optimizer once
per epoch.

Example::

  strategy = make(context)          # s = a = b = 1
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cljax.strategies import _teacher
# The module's Omega (the package attribute ``l2sp`` is the transform).
from cljax.strategies.l2sp import penalty as l2sp_penalty
from cljax.strategies.base import Strategy, StrategyContext


def teacher_gate(teacher_logits: jax.Array, labels: jax.Array,
                 scale: float = 1.0) -> jax.Array:
  """``gamma = scale * sigmoid(-mean CE(teacher_logits, labels))``, no grad."""
  teacher_ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      jax.lax.stop_gradient(teacher_logits), labels))
  return scale * jax.nn.sigmoid(-teacher_ce)


def make(context: StrategyContext, scale: float = 1.0,
         backbone_weight: float = 1.0, head_weight: float = 1.0) -> Strategy:
  """TG for the continual loop (fields from ``config.strategy``).

  Args:
    context: supplies the model (the teacher's forward pass).
    scale: :math:`s`, the gate's maximum (official ``--s 1.0``).
    backbone_weight: :math:`a`, L2-SP pull of the backbone to the teacher.
    head_weight: :math:`b`, weight decay of the classifier.

  Returns:
    A ``Strategy`` with ``init_state`` (the teacher), ``loss`` and
    ``end_task`` (the teacher snapshot).
  """
  _teacher.check_non_negative("scale", scale)
  _teacher.check_non_negative("backbone_weight", backbone_weight)
  _teacher.check_non_negative("head_weight", head_weight)

  def loss(params, strategy_state, batch, outputs):
    teacher_logits, _ = _teacher.teacher_outputs(
        context.model, strategy_state, batch["features"])
    gate = teacher_gate(teacher_logits, batch["label"], scale)
    penalty = l2sp_penalty(params, strategy_state["teacher"]["params"],
                           backbone_weight, head_weight)
    return strategy_state["active"] * gate * penalty, {
        "tg_gate": gate, "l2sp_penalty": penalty}

  return Strategy(name="tg", init_state=_teacher.init_state, loss=loss,
                  end_task=_teacher.end_task)
