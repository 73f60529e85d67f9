"""The base optimizer, built from ``config.optimizer``.

The learning rate is injected as a hyperparameter
(``optax.inject_hyperparams``) so the loop can log the value in use and a
user can change it between tasks with ``optax.tree.set``.
"""

from __future__ import annotations

from typing import Any, Mapping

import optax


def learning_rate_schedule(block: Mapping[str, Any],
                           total_steps: int) -> optax.Schedule:
  """Constant, cosine decay or linear warm-up then cosine, over the run."""
  peak = block["learning_rate"]
  total_steps = max(int(total_steps), 1)
  if block["schedule"] == "constant":
    return optax.constant_schedule(peak)
  if block["schedule"] == "cosine":
    return optax.cosine_decay_schedule(peak, decay_steps=total_steps)
  warmup = min(int(block["warmup_steps"]), total_steps - 1)
  return optax.warmup_cosine_decay_schedule(
      0.0, peak, warmup_steps=warmup, decay_steps=total_steps)


def make_optimizer(block: Mapping[str, Any],
                   total_steps: int) -> optax.GradientTransformation:
  """The base optimizer named by ``config.optimizer.name`` (lr injected)."""
  schedule = learning_rate_schedule(block, total_steps)
  name = block["name"]
  if name == "adam":
    base = optax.inject_hyperparams(optax.adam)(learning_rate=schedule)
  elif name == "adamw":
    base = optax.inject_hyperparams(optax.adamw)(
        learning_rate=schedule, weight_decay=block["weight_decay"])
  elif name == "sgd":
    base = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule)
  elif name == "momentum":
    base = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule,
                                               momentum=block["momentum"])
  else:  # config_schema.validate lists the valid names.
    raise ValueError(f"config.optimizer.name={name!r} is unknown.")
  if block["weight_decay"] and name != "adamw":
    # Coupled L2 (added to the gradient), as torch.optim's weight_decay.
    base = optax.chain(optax.add_decayed_weights(block["weight_decay"]), base)
  return base


def make_tx(block: Mapping[str, Any], strategy_tx: optax.GradientTransformation,
            total_steps: int) -> optax.GradientTransformationExtraArgs:
  """``chain(clip, strategy.tx, optimizer)``: what the train step applies.

  Clipping comes first so a strategy sees the clipped gradient it will
  modify; the strategy comes before the optimizer, as DESIGN.md fixes.
  """
  parts = []
  if block["grad_clip_norm"]:
    parts.append(optax.clip_by_global_norm(block["grad_clip_norm"]))
  parts += [strategy_tx, make_optimizer(block, total_steps)]
  return optax.chain(*parts)


def reset_base_optimizer(tx: optax.GradientTransformation, opt_state: Any,
                         params: Any) -> Any:
  """``opt_state`` of a ``make_tx`` chain with only the base optimizer re-initialised.

  ``config.optimizer.reset_per_task`` restarts Adam's moments (and the
  schedule) at a task boundary; the strategy's own state in the chain (RWM's
  projector, EWC's Fisher and anchor) is knowledge, not optimiser momentum,
  and must survive.
  """
  fresh = tx.init(params)
  return (*opt_state[:-1], fresh[-1])


def current_learning_rate(opt_state: Any) -> Any:
  """The injected learning rate inside a ``make_tx`` state (or None)."""
  # The schedule's own state is also keyed "learning_rate"; take the value.
  return optax.tree.get(opt_state, "learning_rate",
                        filtering=lambda _, value: hasattr(value, "dtype"))
