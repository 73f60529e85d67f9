r"""GDumb: a greedy class-balanced memory and a model trained on it alone.

Reference: Prabhu, Torr, Dokania, "GDumb: A Simple Approach that Questions
Our Progress in Continual Learning", ECCV 2020 (official code:
drimpossible/GDumb, ``src/main.py`` and ``src/opts.py``; the copy seed 001
builds on: RaptorMai/online-continual-learning ``agents/gdumb.py``; both
read for this file).

Method. The stream only fills a memory of ``memory_size`` examples (seed
001: 3000) by the greedy class-balancing rule of
``cljax.replay.class_balanced``. Whenever the model is needed — at each task
end, before evaluation — a model is initialised *from scratch* (fresh
``params`` and ``batch_stats`` from ``context.model.init``, key
``fold_in(state.rng, task_id)``) and trained on the memory only, with the
softmax cross-entropy, for ``epochs`` passes (seed 001: ``--mem_epoch
10``):

* SGD with momentum :math:`0.9` and coupled weight decay :math:`10^{-6}`,
  as ``torch.optim.SGD(lr, momentum=0.9, weight_decay=wd)``:
  :math:`b \leftarrow 0.9 b + (g + wd\,\theta)`,
  :math:`\theta \leftarrow \theta - \eta_e b`, after clipping the loss
  gradient to global norm ``clip`` (seed 001: ``--clip 10``;
  ``clip_grad_norm_`` runs before ``opt.step`` adds the decay);
* learning rate per epoch :math:`e` (official ``main.py``): :math:`\eta_0 =
  0.1\,\eta_{max}` (warm start), :math:`\eta_1 = \eta_{max}`, then PyTorch's
  ``CosineAnnealingWarmRestarts(T_0=1, T_mult=2, eta_min=min_lr)`` stepped
  once per epoch from epoch 2:
  :math:`\eta = \eta_{min} + \tfrac12(\eta_{max} - \eta_{min})
  (1 + \cos(\pi T_{cur} / T_i))` with restarts after 1, 2, 4, 8... epochs
  (``gdumb_learning_rates``; for 10 epochs: 0.1, 1, 1, .5, 1, .85, .5, .15,
  1, .96 of the range). ``learning_rate`` :math:`\eta_{max}` = 0.05,
  ``min_lr`` 0.0005 (seed 001's ``--minlr``; also the official default),
  ``momentum`` 0.9, ``weight_decay`` 1e-6: ``opts.py`` defaults;
* each epoch a fresh permutation of the memory, ``len // batch_size``
  batches (``drop_last``, as both codes); a memory smaller than a batch is
  one batch of all of it.

The stream's own gradient steps must not change the model: ``tx`` is
``optax.set_to_zero()``, so ``optax.chain(tx, base)`` receives zero
gradients (Adam, SGD and momentum then give exactly zero updates; a base
optimizer with decoupled weight decay, ``adamw``, would still shrink the
weights — harmless, since ``end_task`` replaces them). The loop still runs a
forward and backward pass per stream step: wasted compute (the price of
sharing the one train step; only the memory insertion matters).

Deviations, stated: RaptorMai's copy has the scheduler and the warm start
commented out (constant ``learning_rate`` of the generic ``setup_opt``);
seed 001 passes ``--minlr``, which only matters with the scheduler, so
cljax follows the official GDumb schedule. The official code trains in
half precision and evaluates the best epoch on the test set; cljax trains
in float32 and keeps the last epoch. Cutmix (official, optional) is off
(seed 001 does not use it).

Example::

  strategy = make(context, memory_size=3000, batch_size=32)
  # config.strategy.name = "gdumb"; the loop calls replay / end_task.
"""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import registry
from cljax import replay as replay_lib
from cljax.replay import class_balanced
from cljax.replay.buffer import ReplayBuffer
from cljax.strategies.base import ReplayContext, Strategy, StrategyContext

__all__ = ["gdumb_learning_rates", "make", "memory_optimizer",
           "train_on_memory"]


def gdumb_learning_rates(epochs: int, max_lr: float, min_lr: float, *,
                         t_0: int = 1, t_mult: int = 2,
                         warm_start: bool = True) -> np.ndarray:
  """The official per-epoch learning rates (module docstring), float64[E]."""
  rates = []
  t_cur, t_i = 0, t_0
  for epoch in range(epochs):
    if warm_start and epoch == 0:
      rates.append(0.1 * max_lr)
      continue
    if warm_start and epoch == 1:
      rates.append(max_lr)
      continue
    if not warm_start and epoch == 0:
      rates.append(max_lr)
      continue
    t_cur += 1  # scheduler.step() at the start of the epoch.
    if t_cur >= t_i:
      t_cur -= t_i
      t_i *= t_mult
    rates.append(min_lr + 0.5 * (max_lr - min_lr)
                 * (1.0 + math.cos(math.pi * t_cur / t_i)))
  return np.asarray(rates)


def memory_optimizer(clip: float, weight_decay: float, momentum: float
                     ) -> optax.GradientTransformation:
  """Clip, coupled weight decay, momentum trace; the step scales by -lr."""
  return optax.chain(optax.clip_by_global_norm(clip),
                     optax.add_decayed_weights(weight_decay),
                     optax.trace(decay=momentum, nesterov=False))


def _memory_step_fn(model, frontend, tx):
  """Jitted ``(params, batch_stats, opt_state, audio, labels, rows, lr, rng)
  -> (params, batch_stats, opt_state, loss)``."""

  def step(params, batch_stats, opt_state, audio_all, labels_all, rows,
           learning_rate, rng):
    audio = jnp.take(audio_all, rows, axis=0)
    labels = jnp.take(labels_all, rows, axis=0)
    features = frontend(audio)

    def loss_fn(p):
      variables = {"params": p}
      if batch_stats:
        variables["batch_stats"] = batch_stats
        (logits, _), new_state = model.apply(
            variables, features, train=True, rngs={"dropout": rng},
            mutable=["batch_stats"])
        new_stats = new_state["batch_stats"]
      else:
        logits, _ = model.apply(variables, features, train=True,
                                rngs={"dropout": rng})
        new_stats = batch_stats
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits, labels).mean()
      return loss, new_stats

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params)
    updates, opt_state = tx.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: -learning_rate * u, updates)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss

  return jax.jit(step)


def train_on_memory(step_fn, tx, variables: dict[str, Any],
                    buffer: ReplayBuffer, rng: jax.Array, *, epochs: int,
                    batch_size: int, learning_rates: np.ndarray
                    ) -> tuple[dict[str, Any], list[float]]:
  """Trains ``variables`` on the filled rows of ``buffer``; returns the
  trained variables and the per-step losses."""
  params = variables["params"]
  batch_stats = variables.get("batch_stats", {})
  opt_state = tx.init(params)
  size = int(buffer.size)
  losses = []
  if size == 0:  # Nothing to learn from: the fresh model.
    return variables, losses
  batch = min(batch_size, size)
  audio, labels = buffer.data["audio"], buffer.data["label"]
  for epoch in range(epochs):
    epoch_rng = jax.random.fold_in(rng, epoch)
    order = np.asarray(jax.random.permutation(epoch_rng, size))
    lr = jnp.asarray(learning_rates[epoch], jnp.float32)
    for j in range(size // batch):
      rows = jnp.asarray(order[j * batch:(j + 1) * batch], jnp.int32)
      params, batch_stats, opt_state, loss = step_fn(
          params, batch_stats, opt_state, audio, labels, rows, lr,
          jax.random.fold_in(epoch_rng, j + 1))
      losses.append(loss)
  trained = {"params": params}
  if batch_stats:
    trained["batch_stats"] = batch_stats
  return trained, [float(x) for x in jax.device_get(losses)]


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
  if isinstance(value, bool) or not ok:
    raise registry.ConfigError(
        f"config.strategy.{name}={value!r}: expected {expected}.")


def make(context: StrategyContext, memory_size: int = 3000, epochs: int = 10,
         batch_size: int = 16, learning_rate: float = 0.05,
         min_lr: float = 0.0005, momentum: float = 0.9,
         weight_decay: float = 1e-6, clip: float = 10.0,
         warm_start: bool = True, balance_by: str = "class") -> Strategy:
  """GDumb for the cljax loop (fields from ``config.strategy``).

  Args:
    context: the experiment (model, front end, number of classes).
    memory_size: examples kept (seed 001: 3000).
    epochs: passes over the memory at each task end (seed 001: 10).
    batch_size: batch of the memory training (official default 16; the
      cljax configs use ``config.data.batch_size``).
    learning_rate, min_lr: :math:`\\eta_{max}`, :math:`\\eta_{min}` of the
      schedule (official 0.05; seed 001 ``--minlr 0.0005``).
    momentum, weight_decay: of SGD (official 0.9, 1e-6).
    clip: gradient global-norm clip (seed 001 ``--clip 10``).
    warm_start: the official first epoch at ``0.1 * learning_rate``.
    balance_by: ``"class"`` — GDumb's rule over the classes (genuine, fake).
      In a domain-incremental stream the classes recur in every task, so the
      first task fills every class's quota and later tasks are never let in
      (measured: the memory holds task 0 alone). ``"task_class"`` applies
      the same greedy rule to (task, class) groups instead, so each task
      gets its share — not the paper's GDumb, named as such in the results.

  Returns:
    A ``Strategy`` with a zeroing ``tx``, ``init_buffer``, ``replay`` and
    ``end_task``.
  """
  memory_size = replay_lib.check_capacity(memory_size, "strategy.memory_size")
  _check("epochs", epochs, isinstance(epochs, int) and epochs >= 0,
         "an integer >= 0 (passes over the memory at each task end)")
  _check("batch_size", batch_size,
         isinstance(batch_size, int) and batch_size > 0, "a positive integer")
  for name, value in (("learning_rate", learning_rate), ("min_lr", min_lr),
                      ("clip", clip)):
    _check(name, value, isinstance(value, (int, float)) and value > 0,
           "a number > 0")
  for name, value in (("momentum", momentum),
                      ("weight_decay", weight_decay)):
    _check(name, value, isinstance(value, (int, float)) and value >= 0,
           "a number >= 0")
  if min_lr > learning_rate:
    raise registry.ConfigError(
        f"config.strategy.min_lr={min_lr} exceeds config.strategy."
        f"learning_rate={learning_rate}: the schedule anneals from "
        "learning_rate down to min_lr.")
  if balance_by not in ("class", "task_class"):
    raise registry.ConfigError(
        f"config.strategy.balance_by={balance_by!r}: expected 'class' "
        "(GDumb) or 'task_class' (balance (task, class) groups).")
  model, frontend = context.model, context.frontend
  num_classes = context.num_classes
  by_group = balance_by == "task_class"
  num_groups = num_classes * context.num_tasks if by_group else num_classes
  tx = memory_optimizer(float(clip), float(weight_decay), float(momentum))
  step_fn = _memory_step_fn(model, frontend, tx)
  rates = gdumb_learning_rates(epochs, float(learning_rate), float(min_lr),
                               warm_start=bool(warm_start))

  def init_buffer(example_spec):
    if by_group:  # The (task, class) group of each row, for the rule.
      example_spec = {**example_spec,
                      "group": jax.ShapeDtypeStruct((), jnp.int32)}
    return replay_lib.empty(example_spec, memory_size)

  def replay(buffer: ReplayBuffer, batch, rng, replay_context: ReplayContext):
    del replay_context
    if by_group:
      batch = {**batch, "group": batch["task"] * num_classes + batch["label"]}
    rows = {name: batch[name] for name in buffer.data}
    # The batch trains nothing (tx zeroes it); only the memory changes.
    return batch, class_balanced.insert(
        buffer, rows, rng, num_groups,
        label_key="group" if by_group else "label")

  def fresh_variables(key, crop_length):
    init_key, dropout_key = jax.random.split(key)
    dummy = jnp.zeros((1, crop_length), jnp.float32)
    return model.init({"params": init_key, "dropout": dropout_key},
                      frontend(dummy), train=False)

  def end_task(state, task):
    buffer: ReplayBuffer = state.buffer
    chex.assert_rank(buffer.size, 0)
    key = jax.random.fold_in(state.rng, task.task_id)
    init_key, train_key = jax.random.split(key)
    variables = fresh_variables(init_key, buffer.data["audio"].shape[1])
    variables = {"params": variables["params"],
                 **({"batch_stats": variables["batch_stats"]}
                    if "batch_stats" in variables else {})}
    trained, _ = train_on_memory(step_fn, tx, variables, buffer, train_key,
                                 epochs=epochs, batch_size=batch_size,
                                 learning_rates=rates)
    sharding = jax.tree.leaves(state.params)[0].sharding
    return state.replace(
        params=jax.device_put(trained["params"], sharding),
        batch_stats=jax.device_put(trained.get("batch_stats", {}), sharding))

  return Strategy(name="gdumb",
                  tx=optax.with_extra_args_support(optax.set_to_zero()),
                  init_buffer=init_buffer, replay=replay, end_task=end_task)
