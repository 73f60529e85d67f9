r"""The teacher shared by the distillation methods (LwF, KD, CoReD, TG, RAWM).

A *teacher* is a frozen copy of the model taken at the end of a task (the
model after the previous task). It lives in the strategy state, a dict::

  {"teacher": {"params": ..., "batch_stats"?: ...},   # model variables
   "active": float32[]}                                 # 0 before, 1 after

``init_state(variables)`` copies the initial model and sets ``active = 0``:
on the first task there is no previous model, so every teacher term is
multiplied by ``active`` and the first task is plain training (the missing
teacher is *defined*, not an error). ``snapshot(strategy_state, variables)``
at ``end_task`` replaces the teacher by the current model and sets
``active = 1``. Methods add their own entries to the same dict (LwF's task
count, CoReD's per-bin teacher means); ``snapshot`` keeps them.

``teacher_outputs`` runs the teacher on ``batch["features"]`` (the front
end's output, already computed by the train step) in evaluation mode --
dropout off, BatchNorm on its running statistics -- under
``stop_gradient``, inside the same jitted step as the student.

Distillation losses (temperature :math:`T`, teacher probabilities
:math:`p = \mathrm{softmax}(z_t / T)`, student :math:`q = \mathrm{softmax}(z_s
/ T)`, mean over the batch):

.. math::
   L_{KL} = T^2 \, \mathrm{mean}_b \sum_c p_c (\log p_c - \log q_c)
   \qquad
   L_{CE} = T^2 \, \mathrm{mean}_b \sum_c -p_c \log q_c

They differ by :math:`T^2 H(p)`, constant in the student, so their gradients
are equal; ``"kl"`` is Hinton et al. 2015 (and RAWM's regulariser),
``"cross_entropy"`` is the value RaptorMai/online-continual-learning
``utils/kd_manager.py::loss_fn_kd`` (LwF, T = 2) reports. The
:math:`T^2` keeps the gradient's scale independent of :math:`T`.

Example::

  strategy_state = init_state(variables)            # teacher off
  logits_t, _ = teacher_outputs(model, strategy_state, features)
  kd = strategy_state["active"] * distillation_loss(logits_s, logits_t, 2.0)
  strategy_state = snapshot(strategy_state, variables)  # at end_task
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax import registry
from cljax.strategies.base import TaskContext

FORMS = ("kl", "cross_entropy")


def init_state(variables: Mapping[str, Any]) -> dict[str, Any]:
  """The teacher state before any task ended: a copy of ``variables``, off.

  The copy only fixes shapes (and is a harmless model for ``active = 0``).
  """
  return {"teacher": jax.tree.map(jnp.copy, dict(variables)),
          "active": jnp.zeros([], jnp.float32)}


def snapshot(strategy_state: Mapping[str, Any],
             variables: Mapping[str, Any]) -> dict[str, Any]:
  """``strategy_state`` with the teacher = ``variables`` and ``active = 1``.

  Other entries of the dict are kept.
  """
  return {**strategy_state,
          "teacher": jax.tree.map(jnp.copy, dict(variables)),
          "active": jnp.ones([], jnp.float32)}


def end_task(state: Any, task: TaskContext) -> Any:
  """A ``Strategy.end_task``: the model at the end of the task teaches next."""
  del task
  return state.replace(strategy_state=snapshot(state.strategy_state,
                                               state.variables))


def teacher_outputs(model: nn.Module, strategy_state: Mapping[str, Any],
                    features: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(logits, embedding)`` of the teacher in eval mode, no gradient."""
  logits, embedding = model.apply(strategy_state["teacher"], features,
                                  train=False)
  return jax.lax.stop_gradient(logits), jax.lax.stop_gradient(embedding)


def distillation_loss(student_logits: jax.Array, teacher_logits: jax.Array,
                      temperature: float, form: str = "kl") -> jax.Array:
  """``T^2 * mean_batch`` of the KL (or soft cross-entropy); module docstring.

  Args:
    student_logits: ``[B, C]``, differentiable.
    teacher_logits: ``[B, C]`` (the caller stops its gradient).
    temperature: :math:`T > 0`.
    form: ``"kl"`` (0 when student = teacher) or ``"cross_entropy"``.

  Returns:
    A float32 scalar.
  """
  chex.assert_rank(student_logits, 2)
  chex.assert_equal_shape([student_logits, teacher_logits])
  if form not in FORMS:
    raise ValueError(f"distillation form {form!r}: choose one of {FORMS}.")
  teacher_log_p = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
  student_log_p = jax.nn.log_softmax(student_logits / temperature, axis=-1)
  teacher_p = jnp.exp(teacher_log_p)
  if form == "kl":
    per_example = jnp.sum(teacher_p * (teacher_log_p - student_log_p), -1)
  else:
    per_example = -jnp.sum(teacher_p * student_log_p, -1)
  return temperature ** 2 * jnp.mean(per_example)


def check_positive(field: str, value: Any) -> None:
  """ConfigError naming ``config.strategy.<field>`` unless ``value > 0``."""
  if not (isinstance(value, (int, float)) and not isinstance(value, bool)
          and value > 0):
    raise registry.ConfigError(
        f"config.strategy.{field}={value!r}: expected a number > 0.")


def check_non_negative(field: str, value: Any) -> None:
  """ConfigError naming ``config.strategy.<field>`` unless ``value >= 0``."""
  if not (isinstance(value, (int, float)) and not isinstance(value, bool)
          and value >= 0):
    raise registry.ConfigError(
        f"config.strategy.{field}={value!r}: expected a number >= 0.")


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
  """ConfigError naming ``config.strategy.<field>`` unless in ``choices``."""
  if value not in choices:
    raise registry.ConfigError(
        f"config.strategy.{field}={value!r}: choose one of "
        f"{', '.join(choices)}.")
