"""Shared checks of the model tests: overfitting one tiny fixed batch, and
batch statistics that move only in training."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import optax


def cross_entropy(outputs, intermediates, labels) -> jax.Array:
  """The default loss: softmax cross-entropy of the model's logits."""
  del intermediates
  logits, _ = outputs
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def overfit_losses(model: nn.Module, variables: dict[str, Any],
                   inputs: jax.Array, labels: jax.Array, *,
                   learning_rate: float, steps: int,
                   loss: Callable[..., jax.Array] = cross_entropy
                   ) -> list[float]:
  """Runs ``steps`` Adam steps on ``(inputs, labels)``; the loss of each.

  ``loss(outputs, intermediates, labels)`` sees the model's output and its
  sown ``intermediates`` (HM-Conformer's five heads); batch statistics are
  updated as in training. The batch is an argument of the jitted step, not
  a closed-over constant, so XLA does not constant-fold the front of the
  model at compile time.
  """
  tx = optax.adam(learning_rate)

  @jax.jit
  def step(params, batch_stats, opt_state, inputs, labels):
    def loss_fn(params):
      outputs, state = model.apply(
          {"params": params, "batch_stats": batch_stats}, inputs, train=True,
          mutable=["batch_stats", "intermediates"])
      return (loss(outputs, state.get("intermediates", {}), labels),
              state["batch_stats"])
    (value, batch_stats), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, value

  params, batch_stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)
  losses = []
  for _ in range(steps):
    params, batch_stats, opt_state, value = step(params, batch_stats,
                                                 opt_state, inputs, labels)
    losses.append(float(value))
  return losses


def assert_batch_stats_update_only_in_train_mode(apply, batch_stats):
  """Eval mode leaves ``batch_stats`` as they are; train mode moves all.

  ``apply(train)`` runs the model with ``mutable=["batch_stats"]`` and
  returns ``(outputs, state)``. Returns the eval-mode outputs and the
  train-mode state for further checks.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  eval_outputs, eval_state = apply(False)
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         eval_state["batch_stats"], batch_stats)
  _, train_state = apply(True)
  changed = jax.tree_util.tree_map(
      lambda a, b: bool(jnp.any(a != b)), train_state["batch_stats"],
      batch_stats)
  assert all(jax.tree_util.tree_leaves(changed))
  return eval_outputs, train_state
