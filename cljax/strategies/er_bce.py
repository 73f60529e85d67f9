r"""ER-BCE: what seed 001 runs as "ICARL" — reservoir replay, sigmoid BCE, NCM.

Seed 001 trains ``--agent ICARL --retrieve random --update random
--mem_size 5000`` of RaptorMai/online-continual-learning. Read for this file:
``agents/icarl.py`` (``Icarl.update_representation``), ``agents/base.py``
(``ContinualLearner.evaluate``) and ``cljax.replay.reservoir``'s notes on
``utils/buffer/reservoir_update.py``. What that agent does, per step:

1. the incoming batch, targets one-hot over the label columns;
2. from the second task on (``prev_model is not None``), ``random_retrieve``
   draws ``batch`` rows of the memory uniformly without replacement,
   *excluding the rows written during the current task*
   (``excl_indices=updated_idx``), appended to the batch;
3. loss ``binary_cross_entropy_with_logits(..., reduction='none')
   .sum(dim=1).mean()``: sigmoid BCE summed over the classes, one mean over
   all rows (incoming and replayed);
4. after the step, the incoming batch is offered to the memory by reservoir
   sampling (``--update random``);
5. at evaluation (``agent in ['ICARL', ...]``), a nearest-class-mean
   classifier over the *whole reservoir memory*: class means of the
   L2-normalised features of the stored examples under the current model,
   renormalised (a class absent from the memory gets a random mean there;
   ``-4`` here, as ``cljax.strategies.icarl``).

So none of iCaRL's defining parts is there: no herding (the memory is a
reservoir, not per-class exemplar sets), no ReduceExemplarSet, and the
exemplars are drawn per step like ER. That is why this is not
``cljax.strategies.icarl``.

What cljax does, and where it departs. The official agent remaps the
labels of each task to fresh output columns (``len(old_labels) +
new_labels.index(y)``) and sets the replayed rows' targets to zeros on the
new columns and the previous model's sigmoid outputs on the old ones. With
a two-output detector and classes that recur in every task (seed 001's
``--cl_type ni``) that remapping indexes columns the head does not have;
seed 001's own copy is not public in a form we could read, and the
description cljax was given ("effectively ER with BCE") is the reading
under which the code runs: labels stay ``{genuine, fake}``, every row — new
and replayed — is trained towards its one-hot label with the summed sigmoid
BCE, no distillation. Per step, with incoming batch :math:`B` and replayed
rows :math:`R` (rows of earlier tasks only),

.. math::
   L = \frac{1}{|B| + |R|} \sum_{(x, y) \in B \cup R}
       \sum_c \mathrm{BCE}\big(\sigma(z_c(x)), [y = c]\big).

``classifier="nme"`` (default, as the agent evaluates) or ``"logits"``.
The exclusion of rows written in the current task is exact here: they are
the rows whose ``task`` field is the current task.

Example::

  strategy = make(context, memory_size=5000)   # config.strategy.name="er_bce"
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from cljax import registry
from cljax import replay as replay_lib
from cljax.replay import reservoir
from cljax.replay.buffer import ReplayBuffer
from cljax.strategies.base import ReplayContext, Strategy, StrategyContext
from cljax.strategies.icarl import (class_means, embed_filled_rows,
                                    nme_logits, sigmoid_bce)

__all__ = ["make", "sample_past"]

CLASSIFIERS = ("nme", "logits")


def sample_past(buffer: ReplayBuffer, rng: jax.Array, num: int,
                current_task: jax.Array) -> tuple[dict[str, jax.Array],
                                                   jax.Array]:
  """``num`` distinct filled rows of tasks other than ``current_task``.

  Uniform without replacement among the eligible rows (the seed's
  ``random_retrieve(..., excl_indices=updated_idx)``); rows past the number
  eligible repeat row 0 and are ``valid=False``.
  """
  chex.assert_rank(current_task, 0)
  capacity = buffer.capacity
  eligible = ((jnp.arange(capacity) < buffer.size)
              & (buffer.data["task"] != current_task))
  keys = jnp.where(eligible, jax.random.uniform(rng, (capacity,)), -1.0)
  _, indices = jax.lax.top_k(keys, num)
  valid = jnp.arange(num) < jnp.sum(eligible)
  indices = jnp.where(valid, indices, 0)
  return replay_lib.gather(buffer, indices), valid


def make(context: StrategyContext, memory_size: int = 5000,
         replay_batch_size: int | None = None,
         classifier: str = "nme") -> Strategy:
  """Seed 001's "ICARL" for the cljax loop (fields from ``config.strategy``).

  Args:
    context: the experiment (model and front end for the NCM means).
    memory_size: reservoir capacity (seed 001: 5000).
    replay_batch_size: rows retrieved per step; ``None``: the incoming
      batch size (the agent retrieves ``self.batch``).
    classifier: ``"nme"`` (the agent's evaluation) or ``"logits"``.
  """
  memory_size = replay_lib.check_capacity(memory_size, "strategy.memory_size")
  replay_batch_size = replay_lib.check_replay_batch_size(replay_batch_size,
                                                         memory_size)
  if classifier not in CLASSIFIERS:
    raise registry.ConfigError(
        f"config.strategy.classifier={classifier!r}: choose one of "
        f"{list(CLASSIFIERS)}.")
  model, frontend = context.model, context.frontend
  num_classes = context.num_classes

  @jax.jit
  def embed_rows(variables, audio, rows):
    _, embedding = model.apply(variables,
                               frontend(jnp.take(audio, rows, axis=0)),
                               train=False)
    return embedding

  def init_state(variables):
    kernel = variables["params"].get("classifier", {}).get("kernel")
    if kernel is None:
      raise registry.ConfigError(
          "config.strategy.name='er_bce' needs params['classifier']"
          "['kernel'] (a Dense named 'classifier' on the embedding) for its "
          "nearest-mean classifier.")
    return {"class_means": jnp.zeros((num_classes, kernel.shape[0]),
                                     jnp.float32),
            "class_present": jnp.zeros((num_classes,), bool),
            "nme_ready": jnp.zeros([], bool)}

  def init_buffer(example_spec):
    if "task" not in example_spec:
      raise ValueError("er_bce needs the train batches' 'task' field.")
    return replay_lib.empty(example_spec, memory_size)

  def replay(buffer: ReplayBuffer, batch, rng, replay_context: ReplayContext):
    del replay_context
    sample_rng, insert_rng = jax.random.split(rng)
    batch_size = batch["label"].shape[0]
    num = min(replay_batch_size or batch_size, buffer.capacity)
    replayed, valid = sample_past(buffer, sample_rng, num, batch["task"][0])
    counted = jnp.concatenate([jnp.ones((batch_size,), jnp.float32),
                               valid.astype(jnp.float32)])
    mixed = {name: jnp.concatenate([batch[name].astype(rows.dtype), rows])
             for name, rows in replayed.items()}
    mixed["weight"] = counted / counted.sum()
    # after=: the write waits for the read, so XLA updates in place.
    stored = reservoir.insert(buffer, {n: batch[n] for n in buffer.data},
                              insert_rng, after=replayed)
    return mixed, stored

  def classification_loss(logits, labels, strategy_state):
    del strategy_state
    return sigmoid_bce(logits, jax.nn.one_hot(labels, logits.shape[-1]))

  def end_task(state, task):
    del task
    buffer: ReplayBuffer = state.buffer
    size = int(buffer.size)
    if size == 0:
      return state
    embeddings = embed_filled_rows(embed_rows, state.variables,
                                   buffer.data["audio"], size)
    means, present = class_means(embeddings, buffer.data["label"][:size],
                                 num_classes)
    new = {"class_means": means, "class_present": present,
           "nme_ready": jnp.any(present)}
    new = jax.device_put(
        new, jax.tree.leaves(state.strategy_state)[0].sharding)
    return state.replace(strategy_state=new)

  def eval_logits(strategy_state, buffer, logits, embedding):
    del buffer
    nme = nme_logits(embedding, strategy_state["class_means"],
                     strategy_state["class_present"])
    return jnp.where(strategy_state["nme_ready"], nme, logits)

  strategy = Strategy(name="er_bce", init_state=init_state,
                      init_buffer=init_buffer, replay=replay,
                      classification_loss=classification_loss)
  if classifier == "nme":
    strategy = strategy._replace(end_task=end_task, eval_logits=eval_logits)
  return strategy
