"""Builds the jitted train and eval steps.

One train step is one compiled program: front end, forward pass, loss (plus
the strategy's loss terms), backward pass, the strategy's gradient transform
and the optimizer. The state is donated, and the step returns device scalars
that the loop fetches every ``log_every`` steps, so nothing syncs the host per
step. Both steps run on a ``jax.sharding.Mesh`` over the local devices: the
batch is sharded on the ``data`` axis, the state replicated; XLA inserts the
gradient all-reduce.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cljax.models import heads
from cljax.state import TrainState
from cljax.strategies.base import ReplayContext, Strategy

DATA_AXIS = "data"
Batch = Mapping[str, jax.Array]


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh with a ``data`` axis over ``devices`` (default: all)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def put_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, Any]:
  """Moves a host batch's arrays onto the mesh, sharded along the batch axis.

  Non-array entries (utterance ids) stay on the host. Uses
  ``make_array_from_process_local_data`` so the same call serves one host or
  many (each host passes its own slice of the global batch).
  """
  sharding = data_sharded(mesh)
  return {
      key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
      for key, value in batch.items()
      if isinstance(value, np.ndarray) and value.dtype != object
  }


def genuine_log_odds(logits: jax.Array) -> jax.Array:
  """Score for class 0 (genuine) vs the rest: higher = more genuine."""
  return logits[:, 0] - jax.nn.logsumexp(logits[:, 1:], axis=-1)


def make_train_step(*, model: nn.Module, frontend: Callable[[jax.Array], jax.Array],
                    strategy: Strategy, tx: optax.GradientTransformation,
                    mesh: Mesh, augment: Callable[[jax.Array, jax.Array],
                                                  jax.Array] | None = None
                    ) -> Callable[[TrainState, Batch],
                                  tuple[TrainState, dict[str, jax.Array]]]:
  """Returns ``train_step(state, batch) -> (state, metrics)``, jitted.

  The classification loss is the model's own
  (:func:`cljax.models.heads.training_loss_per_example`: OC-softmax over the
  heads a model sows, else softmax cross-entropy) unless the strategy
  replaces it (``strategy.classification_loss``).

  Args:
    model: Flax module, ``apply(variables, features, train) -> (logits,
      embedding)``.
    frontend: waveform batch -> features, traced into the step.
    strategy: supplies the extra loss (``strategy.loss``); its ``tx`` must
      already be part of ``tx``.
    tx: ``optax.chain(strategy.tx, optimizer)`` (the state's optimizer).
    mesh: the device mesh; the batch is sharded on its ``data`` axis.
    augment: ``(key, audio) -> audio`` applied to the training waveforms
      before the front end (``cljax.features.augment``), or None.
  """

  def apply_model(params, batch_stats, features, *, train, dropout_rng=None):
    """``((logits, embedding), batch_stats, intermediates)``."""
    variables = {"params": params}
    if batch_stats:
      variables["batch_stats"] = batch_stats
    rngs = {"dropout": dropout_rng} if train else {}
    # "intermediates" holds what a model sows for its loss (OC heads).
    mutable = ["intermediates"]
    if train and batch_stats:
      mutable.append("batch_stats")
    outputs, new_model_state = model.apply(
        variables, features, train=train, rngs=rngs, mutable=mutable)
    return (outputs, new_model_state.get("batch_stats", batch_stats),
            new_model_state.get("intermediates", {}))

  def model_loss(logits, intermediates, labels):
    return heads.training_loss_per_example(model, logits, intermediates,
                                           labels)

  def per_example_loss(params, batch_stats, batch):
    (logits, _), _, intermediates = apply_model(
        params, batch_stats, frontend(batch["audio"]), train=False)
    return model_loss(logits, intermediates, batch["label"])

  def loss_fn(params, state: TrainState, batch: Batch, dropout_rng):
    audio = batch["audio"]
    if augment is not None:
      # Derived, not split, so runs without augmentation keep their keys.
      audio = augment(jax.random.fold_in(dropout_rng, 2), audio)
    features = frontend(audio)
    (logits, embedding), batch_stats, intermediates = apply_model(
        params, state.batch_stats, features, train=True,
        dropout_rng=dropout_rng)
    labels = batch["label"]
    if strategy.classification_loss is not None:
      per_example = strategy.classification_loss(logits, labels,
                                                 state.strategy_state)
    else:
      per_example = model_loss(logits, intermediates, labels)
    if "weight" in batch:  # A replay policy chose how rows count.
      cross_entropy = jnp.sum(batch["weight"] * per_example)
    else:
      cross_entropy = per_example.mean()
    total = cross_entropy
    aux = {}
    if strategy.loss is not None:
      extra, aux = strategy.loss(params, state.strategy_state,
                                 {**batch, "features": features},
                                 (logits, embedding))
      total = total + extra
    return total, (cross_entropy, logits, embedding, batch_stats, aux)

  def train_step(state: TrainState, batch: Batch):
    rng, dropout_rng = jax.random.split(state.rng)
    buffer = state.buffer
    if strategy.replay is not None:
      # Derived, not split, so strategies without replay keep their keys.
      replay_rng = jax.random.fold_in(dropout_rng, 1)
      context = ReplayContext(
          params=state.params, variables=state.variables,
          strategy_state=state.strategy_state,
          per_example_loss=lambda params, rows: per_example_loss(
              params, state.batch_stats, rows))
      batch, buffer = strategy.replay(buffer, batch, replay_rng, context)
    (total, (cross_entropy, logits, embedding, batch_stats, aux)), grads = (
        jax.value_and_grad(loss_fn, has_aux=True)(state.params, state, batch,
                                                  dropout_rng))
    updates, opt_state = tx.update(
        grads, state.opt_state, state.params,
        features=jax.lax.stop_gradient(embedding),
        logits=jax.lax.stop_gradient(logits), labels=batch["label"])
    params = optax.apply_updates(state.params, updates)
    correct = jnp.argmax(logits, -1) == batch["label"]
    if "weight" in batch:  # Accuracy over the rows that count.
      counted = batch["weight"] > 0
      accuracy = jnp.sum(correct & counted) / jnp.maximum(counted.sum(), 1)
    else:
      accuracy = jnp.mean(correct)
    metrics = {
        "loss": total,
        "cross_entropy": cross_entropy,
        "accuracy": accuracy,
        "grad_norm": optax.tree.norm(grads),
        "update_norm": optax.tree.norm(updates),
    }
    metrics.update(aux)
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state,
                              rng=rng, buffer=buffer)
    return new_state, metrics

  return jax.jit(train_step, donate_argnums=0,
                 in_shardings=(replicated(mesh), data_sharded(mesh)),
                 out_shardings=(replicated(mesh), replicated(mesh)))


def make_eval_step(*, model: nn.Module,
                   frontend: Callable[[jax.Array], jax.Array],
                   mesh: Mesh, strategy: Strategy | None = None,
                   augment: Callable[[jax.Array, jax.Array],
                                     jax.Array] | None = None
                   ) -> Callable[..., dict[str, jax.Array]]:
  """Returns ``eval_step(variables, audio, extras=None) -> {scores,
  predictions}``, jitted.

  ``scores`` are genuine log-odds (higher = more genuine), as EER expects.
  When ``strategy.eval_logits`` is set (iCaRL's nearest-mean classifier),
  ``extras`` must be ``(strategy_state, buffer)`` and the scores come from
  the logits it returns. ``augment`` (a recipe's test-time quirk, off by
  default) is applied with a fixed key, so scores stay deterministic.
  """
  eval_logits = strategy.eval_logits if strategy is not None else None

  def eval_step(variables, audio, extras):
    if augment is not None:
      audio = augment(jax.random.PRNGKey(0), audio)
    logits, embedding = model.apply(variables, frontend(audio), train=False)
    if eval_logits is not None:
      strategy_state, buffer = extras
      logits = eval_logits(strategy_state, buffer, logits, embedding)
    return {"scores": genuine_log_odds(logits),
            "predictions": jnp.argmax(logits, -1)}

  jitted = jax.jit(eval_step, in_shardings=(
      replicated(mesh), data_sharded(mesh), replicated(mesh)),
                   out_shardings=replicated(mesh))
  return lambda variables, audio, extras=(): jitted(variables, audio, extras)
