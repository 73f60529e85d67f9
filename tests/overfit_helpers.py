"""Fitting a model to one tiny fixed batch: the models' overfit tests."""

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
