r"""KD: knowledge distillation from the previous task's model (seed 003).

Tassone, Maiano & Amerini, "Continuous Fake Media Detection: Adapting
Deepfake Detectors to New Generative Techniques", CVIU 2024 (seed 003). The
model after the previous task is the teacher; the student starts from it
(in the continual loop the model entering task :math:`t` *is* that model)
and trains on the new task with

.. math::
   L = \mathrm{CE}(z_s, y) + \alpha\,
       \mathrm{clip}\big(L_{KD}, c_{\min}, c_{\max}\big), \qquad
   L_{KD} = T^2\, \mathrm{mean}_b\,
       \mathrm{KL}\big(\mathrm{softmax}(z_t/T) \,\|\,
                       \mathrm{softmax}(z_s/T)\big)

(the batch's distillation loss is clipped, then weighted), and plain
cross-entropy on the first task (no teacher yet).

Defaults and where they come from: seed 003's README shows only the command
line (``train.py --network ResNet --input_model ... --source_datasets ...
--target_dataset ...``); its training code is not in the searched index, so
the clamp bounds, :math:`\alpha` and :math:`T` could not be verified. cljax
picks documented defaults: :math:`T = 2` (Hinton et al. 2015's usual value,
also LwF's in seed 001), :math:`\alpha = 1` (the two terms equally), and
clamp bounds ``[0, 10]``: the lower bound removes float round-off below 0
(KL >= 0), the upper one caps a batch whose teacher and student disagree
wildly (a binary KL at T = 2 with a confident teacher flipped is about 8),
where the clipped term stops pushing rather than dominating the update.
Change them in the config when the official values are known.

Example::

  strategy = make(context, alpha=1.0, temperature=2.0)
"""

from __future__ import annotations

import jax.numpy as jnp

from cljax import registry
from cljax.strategies import _teacher
from cljax.strategies.base import Strategy, StrategyContext


def clipped_distillation(student_logits, teacher_logits, temperature: float,
                         clamp_min: float, clamp_max: float):
  """``clip(T^2 mean KL, clamp_min, clamp_max)``; the raw value too."""
  kd = _teacher.distillation_loss(student_logits, teacher_logits, temperature)
  return jnp.clip(kd, clamp_min, clamp_max), kd


def make(context: StrategyContext, alpha: float = 1.0,
         temperature: float = 2.0, clamp_min: float = 0.0,
         clamp_max: float = 10.0) -> Strategy:
  """KD for the continual loop (fields from ``config.strategy``).

  Args:
    context: supplies the model (the teacher's forward pass).
    alpha: weight of the clipped distillation term.
    temperature: softening :math:`T`.
    clamp_min, clamp_max: bounds of the batch's distillation loss.

  Returns:
    A ``Strategy`` with ``init_state`` (the teacher), ``loss`` and
    ``end_task`` (the teacher snapshot).
  """
  _teacher.check_non_negative("alpha", alpha)
  _teacher.check_positive("temperature", temperature)
  _teacher.check_non_negative("clamp_min", clamp_min)
  _teacher.check_positive("clamp_max", clamp_max)
  if clamp_min >= clamp_max:
    raise registry.ConfigError(
        f"config.strategy.clamp_min={clamp_min} must be below "
        f"config.strategy.clamp_max={clamp_max}.")

  def loss(params, strategy_state, batch, outputs):
    del params
    teacher_logits, _ = _teacher.teacher_outputs(
        context.model, strategy_state, batch["features"])
    clipped, kd = clipped_distillation(outputs[0], teacher_logits,
                                       temperature, clamp_min, clamp_max)
    return strategy_state["active"] * alpha * clipped, {"kd": kd}

  return Strategy(name="kd", init_state=_teacher.init_state, loss=loss,
                  end_task=_teacher.end_task)
