r"""LwF: Learning without Forgetting, as seed 001 runs it.

Li & Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2017. The model
saved at the end of the previous task (the teacher) labels the new task's
inputs with its softened outputs, and the student is trained on the new
labels and on those soft targets at once. With :math:`t` the number of tasks
already learned (0 on the first task), seed 001's version (RaptorMai/
online-continual-learning, ``agents/lwf.py``, ``train_learner``) is

.. math::
   L = \frac{1}{t+1}\, \mathrm{CE}(z_s, y)
     + \Big(1 - \frac{1}{t+1}\Big)\, T^2\, \mathrm{mean}_b
       \sum_c -\mathrm{softmax}(z_t/T)_c \log \mathrm{softmax}(z_s/T)_c ,

``T = 2`` (``utils/kd_manager.py::loss_fn_kd``'s default; its soft
cross-entropy form, ``distillation_form="cross_entropy"``), ``t`` =
``task_seen`` (``agents/base.py``: incremented in ``after_train``, where the
teacher is also refreshed: ``kd_manager.update_teacher(model)`` for LWF).
So the first task is plain cross-entropy and task :math:`t` weights the
old knowledge by :math:`t/(t+1)`: 0, 1/2, 2/3, 3/4, ...

The cross-entropy weight is applied in ``classification_loss`` (per example,
so a replay ``weight`` still composes), the distillation term in ``loss``.

``weighting="linear"`` is EVDA's setting instead (Avalanche's
``LwF(alpha=[...], temperature=1)`` in Cecile-hi/Evolving-FAD-CL-Benchmark,
REFERENCE.md): cross-entropy weight 1 and distillation weight rising
linearly from 0 on the first task to ``linear_max_weight`` (2) on task
``linear_tasks - 1`` (8 tasks), held there after; use it with
``temperature=1`` and ``distillation_form="kl"`` (Avalanche's
``kl_div(batchmean)``; at ``T = 1`` the :math:`T^2` changes nothing).

Deviation: the official teacher is a ``deepcopy`` of the model in training
mode (BatchNorm on batch statistics); cljax runs the teacher in evaluation
mode, the standard reading of LwF.

Example::

  strategy = make(context, temperature=2.0)
  # loss = strategy.classification_loss(...) (mean) + strategy.loss(...)[0]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies import _teacher
from cljax.strategies.base import Strategy, StrategyContext, TaskContext

WEIGHTINGS = ("task_index", "linear")


def task_weights(tasks_seen: jax.Array, weighting: str = "task_index",
                 linear_max_weight: float = 2.0, linear_tasks: int = 8
                 ) -> tuple[jax.Array, jax.Array]:
  """``(ce_weight, kd_weight)`` after ``tasks_seen`` tasks (module docstring).

  ``task_index``: ``(1/(t+1), 1 - 1/(t+1))``. ``linear``: ``(1, w_max *
  min(t, n-1) / (n-1))`` with ``n = linear_tasks``.
  """
  t = jnp.asarray(tasks_seen, jnp.float32)
  if weighting == "task_index":
    ce_weight = 1.0 / (t + 1.0)
    return ce_weight, 1.0 - ce_weight
  if weighting == "linear":
    steps = max(linear_tasks - 1, 1)
    return (jnp.ones_like(t),
            linear_max_weight * jnp.minimum(t, steps) / steps)
  raise ValueError(f"weighting {weighting!r}: choose one of {WEIGHTINGS}.")


def make(context: StrategyContext, temperature: float = 2.0,
         weighting: str = "task_index",
         distillation_form: str = "cross_entropy",
         linear_max_weight: float = 2.0, linear_tasks: int = 8) -> Strategy:
  """LwF for the continual loop (fields from ``config.strategy``).

  Args:
    context: supplies the model (the teacher's forward pass).
    temperature: softening :math:`T` (seed 001: 2; EVDA: 1).
    weighting: ``"task_index"`` (seed 001) or ``"linear"`` (EVDA).
    distillation_form: ``"cross_entropy"`` (seed 001's value) or ``"kl"``;
      same gradient.
    linear_max_weight, linear_tasks: the ``linear`` schedule.

  Returns:
    A ``Strategy`` with ``init_state``, ``classification_loss``, ``loss``
    and ``end_task``; its strategy state is the teacher's dict plus
    ``tasks_seen`` (float32 scalar).
  """
  _teacher.check_positive("temperature", temperature)
  _teacher.check_choice("weighting", weighting, WEIGHTINGS)
  _teacher.check_choice("distillation_form", distillation_form,
                        _teacher.FORMS)
  _teacher.check_non_negative("linear_max_weight", linear_max_weight)
  if not (isinstance(linear_tasks, int) and linear_tasks >= 2):
    raise registry.ConfigError(
        f"config.strategy.linear_tasks={linear_tasks!r}: expected an int "
        ">= 2 (the task on which the linear weight reaches its maximum, +1).")

  def weights(strategy_state):
    return task_weights(strategy_state["tasks_seen"], weighting,
                        linear_max_weight, linear_tasks)

  def init_state(variables):
    return {**_teacher.init_state(variables),
            "tasks_seen": jnp.zeros([], jnp.float32)}

  def classification_loss(logits, labels, strategy_state):
    ce_weight, _ = weights(strategy_state)
    return ce_weight * optax.softmax_cross_entropy_with_integer_labels(
        logits, labels)

  def loss(params, strategy_state, batch, outputs):
    del params
    teacher_logits, _ = _teacher.teacher_outputs(
        context.model, strategy_state, batch["features"])
    kd = _teacher.distillation_loss(outputs[0], teacher_logits, temperature,
                                    distillation_form)
    _, kd_weight = weights(strategy_state)
    # ``active`` is 0 on the first task, where kd_weight is 0 too; it also
    # keeps the initial (random) teacher out of any other schedule.
    return strategy_state["active"] * kd_weight * kd, {"kd": kd,
                                                       "kd_weight": kd_weight}

  def end_task(state, task: TaskContext):
    state = _teacher.end_task(state, task)
    strategy_state = dict(state.strategy_state)
    strategy_state["tasks_seen"] = strategy_state["tasks_seen"] + 1.0
    return state.replace(strategy_state=strategy_state)

  return Strategy(name="lwf", init_state=init_state,
                  classification_loss=classification_loss, loss=loss,
                  end_task=end_task)
