r"""MIR: replay the memories a virtual update would hurt most.

Reference: R. Aljundi, L. Caccia, E. Belilovsky, M. Caccia, M. Lin,
L. Charlin, T. Tuytelaars, "Online Continual Learning with Maximally
Interfered Retrieval", NeurIPS 2019. Seed 001 runs it as
``--agent ER --retrieve MIR --update random --mem_size 5000`` of
RaptorMai/online-continual-learning; ``utils/buffer/mir_retrieve.py`` and
``agents/exp_replay.py`` were read for this file.

Math. With parameters :math:`\theta`, incoming batch :math:`B_t` and
learning rate :math:`\eta` (``virtual_lr``), the virtual step is

.. math::
   \theta^v = \theta - \eta \nabla_\theta \tfrac{1}{b}
              \textstyle\sum_{(x, y) \in B_t} \ell(x, y; \theta).

From the memory :math:`C` candidates are drawn uniformly (``candidates``,
the seed's ``subsample`` = 50), each scored by the interference

.. math::
   s(x, y) = \ell(x, y; \theta^v) - \ell(x, y; \theta),

and the ``replay_batch_size`` highest-scoring ones are replayed exactly as
in ER (``cljax.strategies.er``: loss = mean CE of the incoming batch + mean
CE of the replayed rows, then reservoir insertion of the incoming batch).
Candidates that are placeholders (a memory holding fewer than ``C``) score
:math:`-\infty` and keep weight 0, so a valid candidate is always picked
before an invalid one.

Verified against the seed: ``subsample`` 50; the virtual step uses the
gradient left by ``loss.backward()`` on the incoming batch (the memory loss
is added afterwards) and ``params.learning_rate`` — the optimizer's own rate,
whose default there is 0.1 with SGD. cljax's optimizer is Adam, so the
virtual step is a separate plain SGD step with ``virtual_lr`` (default 0.1,
the seed's value). Losses are computed by ``ReplayContext.per_example_loss``
in evaluation mode (no dropout, running batch statistics); the seed scores
with the model in training mode. The scores use the current parameters
*before* this step's real update, as in the seed.

Example::

  strategy = make(context, memory_size=5000, candidates=50, virtual_lr=0.1)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from cljax import registry
from cljax import replay as replay_lib
from cljax.replay.buffer import ReplayBuffer
from cljax.strategies import er
from cljax.strategies.base import ReplayContext, Strategy, StrategyContext

__all__ = ["interference", "select", "make"]


def interference(per_example_loss, params: Any, incoming, candidates,
                 virtual_lr: float) -> jax.Array:
  """``loss(theta_v) - loss(theta)`` of each candidate row (float32[C])."""
  grads = jax.grad(lambda p: per_example_loss(p, incoming).mean())(params)
  virtual = jax.tree.map(lambda p, g: p - virtual_lr * g, params, grads)
  before = per_example_loss(params, candidates)
  after = per_example_loss(virtual, candidates)
  return jax.lax.stop_gradient(after - before)


def select(scores: jax.Array, valid: jax.Array, num: int
           ) -> tuple[jax.Array, jax.Array]:
  """Indices of the ``num`` highest valid scores, and their validity."""
  ranked = jnp.where(valid, scores, -jnp.inf)
  # NaN scores (a diverged virtual step) rank last among the valid ones.
  ranked = jnp.where(valid & jnp.isnan(scores), jnp.finfo(scores.dtype).min,
                     ranked)
  _, indices = jax.lax.top_k(ranked, num)
  return indices, valid[indices]


def make(context: StrategyContext, memory_size: int = 5000,
         replay_batch_size: int | None = None, candidates: int = 50,
         virtual_lr: float = 0.1) -> Strategy:
  """MIR for the cljax loop (fields from ``config.strategy``).

  Args:
    context: the experiment (unused: the losses come from ``ReplayContext``).
    memory_size: examples the reservoir keeps (seed 001: 5000).
    replay_batch_size: rows replayed per step; ``None``: the incoming batch
      size. At most ``candidates``.
    candidates: rows drawn from the memory and scored (seed: ``subsample``
      50); capped by the memory's capacity.
    virtual_lr: learning rate of the virtual SGD step (seed: its optimizer's
      learning rate, default 0.1).

  Returns:
    A ``Strategy`` with ``init_buffer`` and ``replay``.
  """
  del context
  memory_size = replay_lib.check_capacity(memory_size, "strategy.memory_size")
  if (isinstance(candidates, bool) or not isinstance(candidates, int)
      or candidates <= 0):
    raise registry.ConfigError(
        f"config.strategy.candidates={candidates!r}: expected a positive "
        "integer (rows drawn from the memory and scored; the seed uses 50).")
  replay_batch_size = replay_lib.check_replay_batch_size(replay_batch_size,
                                                         memory_size)
  if replay_batch_size is not None and replay_batch_size > candidates:
    raise registry.ConfigError(
        f"config.strategy.replay_batch_size={replay_batch_size} exceeds "
        f"config.strategy.candidates={candidates}: MIR replays a subset of "
        "its candidates. Raise candidates or lower replay_batch_size.")
  if (isinstance(virtual_lr, bool) or not isinstance(virtual_lr, (int, float))
      or not virtual_lr > 0):
    raise registry.ConfigError(
        f"config.strategy.virtual_lr={virtual_lr!r}: expected a number > 0 "
        "(the seed's virtual step uses 0.1).")
  base = er.make(None, memory_size=memory_size,
                 replay_batch_size=replay_batch_size)

  def replay(buffer: ReplayBuffer, batch, rng, context: ReplayContext):
    sample_rng, insert_rng = jax.random.split(rng)
    num_candidates = min(candidates, buffer.capacity)
    num_replayed = er.replay_rows(replay_batch_size, batch, num_candidates)
    if replay_batch_size is None and batch["label"].shape[0] > candidates:
      raise registry.ConfigError(
          f"The incoming batch of {batch['label'].shape[0]} rows exceeds "
          f"config.strategy.candidates={candidates}: MIR replays a subset of "
          "its candidates. Set config.strategy.replay_batch_size <= "
          f"{candidates} or raise candidates.")
    rows, valid = replay_lib.sample(buffer, sample_rng, num_candidates)
    scores = interference(context.per_example_loss, context.params,
                          {"audio": batch["audio"], "label": batch["label"]},
                          {"audio": rows["audio"], "label": rows["label"]},
                          virtual_lr)
    chosen, chosen_valid = select(scores, valid, num_replayed)
    replayed = jax.tree.map(lambda x: jnp.take(x, chosen, axis=0), rows)
    return (er.mix(batch, replayed, chosen_valid),
            er.store(buffer, batch, insert_rng, rows))

  return Strategy(name="mir", init_buffer=base.init_buffer, replay=replay)
