"""The Strategy interface: how a continual-learning method plugs into the loop.

A strategy is a NamedTuple of pure pieces, each optional:

* ``tx`` — an ``optax.GradientTransformationExtraArgs`` chained *before* the
  base optimizer (``optax.chain(strategy.tx, optimizer)``). The train step
  calls ``tx.update(grads, opt_state, params, features=..., logits=...,
  labels=...)``: ``features`` is the classifier's input (the embedding),
  ``logits`` the model output and ``labels`` the integer targets. Gradient
  surgery (RWM, RAWM, OWM) and quadratic penalties (EWC, SI, L2-SP) live here.
* ``loss(params, strategy_state, batch, outputs) -> (scalar, aux)`` — extra
  loss terms (LwF, KD, CoReD). ``batch`` holds ``audio``, ``label`` and the
  front end's ``features``; ``outputs`` is the model's ``(logits, embedding)``.
* ``init_state(variables) -> strategy_state`` — the strategy's own pytree,
  from the initial model variables (``{"params", "batch_stats"?}``, as
  ``TrainState.variables``; e.g. a teacher's shapes).
* ``start_task(state, context) -> state`` and ``end_task(state, context) ->
  state`` — consolidation at task boundaries (Fisher, anchors, teacher
  snapshot, projector). They return a new ``TrainState``; surgery on the
  optax state uses ``optax.tree.get`` / ``optax.tree.set``.
* ``train_tasks(task_id) -> task ids`` — whose training data the task is
  fitted on: the current task alone, or for ``joint`` every task so far.
* ``init_buffer(example_spec) -> buffer`` and ``replay(buffer, batch, rng,
  context) -> (train_batch, buffer)`` — a replay memory (``cljax.replay``)
  kept in ``TrainState.buffer``. Inside the jitted step, ``replay`` stores
  the incoming ``batch`` (``audio``, ``label``, ``task``) by its insertion
  policy and returns the batch to train on (e.g. the incoming one with
  replayed rows appended). A ``weight`` entry in the returned batch makes the
  cross-entropy ``sum(weight * ce)`` instead of the mean (rows of weight 0
  are padding), so a method chooses how new and replayed examples count.
* ``classification_loss(logits, labels, strategy_state) -> float[B]`` — the
  per-example loss that replaces the default softmax cross-entropy (iCaRL's
  sigmoid BCE; LwF's task-weighted cross-entropy). ``None``: cross-entropy.
* ``eval_logits(strategy_state, buffer, logits, embedding) -> logits`` —
  replaces the model's logits at evaluation (iCaRL's nearest-mean-of-
  exemplars classifier).

Adding a method is one file ``cljax/strategies/<name>.py`` that defines
``make(context, **fields) -> Strategy`` (fields come from ``config.strategy``)
plus its config; the loop finds it by ``config.strategy.name``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import flax.linen as nn
import optax

LossFn = Callable[[Any, Any, Mapping[str, Any], tuple[Any, Any]],
                  tuple[Any, Mapping[str, Any]]]
BoundaryFn = Callable[[Any, "TaskContext"], Any]
ReplayFn = Callable[[Any, Mapping[str, Any], Any, "ReplayContext"],
                    tuple[Mapping[str, Any], Any]]
EvalLogitsFn = Callable[[Any, Any, Any, Any], Any]


def current_task_only(task_id: int) -> Sequence[int]:
  """Fine-tuning's data policy: train on the current task's data."""
  return (task_id,)


class StrategyContext(NamedTuple):
  """What a strategy factory may need to know about the experiment."""

  model: nn.Module
  num_classes: int
  num_tasks: int
  # Front end applied to a batch's audio, jnp -> jnp (for teacher passes).
  frontend: Callable[[Any], Any]


class TaskContext(NamedTuple):
  """What a task-boundary function may use (besides the TrainState)."""

  task_id: int
  task_name: str
  num_tasks: int
  model: nn.Module
  frontend: Callable[[Any], Any]
  # batches(split, task_ids) -> iterable of device batches (``audio``,
  # ``label``, ``mask``) of the named split of those tasks, in a fixed order.
  batches: Callable[[str, Sequence[int]], Iterable[Mapping[str, Any]]]


class ReplayContext(NamedTuple):
  """What a replay policy may use inside the jitted train step."""

  params: Any
  # The model variables at this step ({"params", "batch_stats"?}).
  variables: Mapping[str, Any]
  strategy_state: Any
  # per_example_loss(params, batch) -> float32[B]: cross-entropy of each row
  # of ``batch`` (``audio``, ``label``) under ``params`` in evaluation mode
  # (no dropout, frozen batch statistics); differentiable in ``params``, for
  # MIR's virtual step.
  per_example_loss: Callable[[Any, Mapping[str, Any]], Any]


class Strategy(NamedTuple):
  """A continual-learning method as pure pieces; see the module docstring."""

  name: str
  tx: optax.GradientTransformationExtraArgs = optax.with_extra_args_support(
      optax.identity())
  loss: LossFn | None = None
  init_state: Callable[[Any], Any] | None = None
  start_task: BoundaryFn | None = None
  end_task: BoundaryFn | None = None
  train_tasks: Callable[[int], Sequence[int]] = current_task_only
  init_buffer: Callable[[Mapping[str, Any]], Any] | None = None
  replay: ReplayFn | None = None
  classification_loss: Callable[[Any, Any, Any], Any] | None = None
  eval_logits: EvalLogitsFn | None = None
