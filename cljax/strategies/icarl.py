r"""iCaRL: herding exemplars, sigmoid-BCE distillation, nearest-mean classifier.

Reference: Rebuffi, Kolesnikov, Sperl, Lampert, "iCaRL: Incremental
Classifier and Representation Learning", CVPR 2017 (Algorithms 1-5).
Adapted to cljax's domain-incremental detection: the two classes (genuine,
fake) recur in every task, so the exemplar memory is organised by *groups*
:math:`g = (\text{task}, \text{class})`.

Memory (Algorithms 4, 5). A fixed budget of :math:`K` exemplars
(``memory_size``; seed 001: 5000), split evenly over the groups seen so far,
:math:`m = \lfloor K / |G| \rfloor`. At the end of task :math:`t`
(``end_task``): embed the task's training data with the current model
(``TaskContext.batches("train", [t])``: eval windows, cut or zero-padded to
the buffer's crop length), select each new group's exemplars by herding
(``cljax.replay.herding``; :math:`\min(m, n_g)` of them, so a memory larger
than the data keeps all of it), and shrink every older group to its first
:math:`m` exemplars (ReduceExemplarSet: herding order is kept, groups are
stored contiguously in that order).

Classifier (Algorithm 1, nearest mean of exemplars). After each task end,
with :math:`\varphi` the L2-normalised embedding of the model,

.. math::
   \mu_c = \frac{\bar\varphi_c}{\|\bar\varphi_c\|}, \quad
   \bar\varphi_c = \frac{1}{|P_c|} \sum_{p \in P_c} \varphi(p),
   \qquad \text{logit}_c(x) = -\|\varphi(x) - \mu_c\|^2,

over every exemplar :math:`P_c` of class :math:`c` (all tasks), stored in
the strategy state; ``eval_logits`` returns these logits, so the genuine
log-odds scores of ``cljax.step`` rank by distance. A class with no exemplar
gets logit :math:`-4` (the largest squared distance between unit vectors:
never nearer than a present class). Before the first task end the model's
own logits are used.

Training (Algorithm 3, UpdateRepresentation). Each step trains on the
incoming batch together with as many exemplars drawn from the memory
(``replay_batch_size``; the union :math:`D_{new} \cup P` of the paper,
one mean over the valid rows). Per row, with logits :math:`z`, one-hot label
:math:`y` and the previous model's sigmoid outputs :math:`q` (teacher:
variables snapshot at ``end_task``, forward pass in the same step, inactive
on task 0):

.. math::
   \ell = \sum_c \mathrm{BCE}\big(z_c,\ (1 - \lambda)\, y_c
          + \lambda\, q_c\big)
        = (1-\lambda) \sum_c \mathrm{BCE}(z_c, y_c)
          + \lambda \sum_c \mathrm{BCE}(z_c, q_c),

(BCE is linear in its target), split into ``classification_loss`` (first
term) and ``loss`` (second). Pure iCaRL sets the target of *old* classes to
:math:`q` (:math:`\lambda = 1` there) and of new classes to :math:`y`. Here
every class is old after task 0, so :math:`\lambda = 1` would train the
model to copy its teacher and never learn the new task's attacks; hence
``distillation_weight`` :math:`\lambda` (default 0.5: the label and the
teacher count equally) applies to every class on tasks > 0; on task 0 the
target is :math:`y`.

What seed 001's "ICARL" does is not this; see ``cljax.strategies.er_bce``.

Example::

  strategy = make(context, memory_size=5000)
  # in the cljax loop: config.strategy.name = "icarl"
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import distributed
from cljax import registry
from cljax import replay as replay_lib
from cljax.replay.buffer import ReplayBuffer
from cljax.replay.herding import herding, l2_normalize
from cljax.strategies.base import ReplayContext, Strategy, StrategyContext

__all__ = ["class_means", "embed_filled_rows", "fit_length", "make",
           "nme_logits", "plan_memory", "sigmoid_bce"]

# Squared distance between opposite unit vectors: a missing class's logit.
MISSING_CLASS_DISTANCE = 4.0
# Rows per embedding pass at task ends (one compilation).
EMBED_CHUNK = 256


def sigmoid_bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """float[B]: ``sum_c BCE(sigmoid(z_c), t_c)`` per row (numerically safe)."""
  chex.assert_equal_shape([logits, targets])
  return jnp.sum(optax.sigmoid_binary_cross_entropy(
      logits.astype(jnp.float32), targets.astype(jnp.float32)), axis=-1)


def embed_filled_rows(embed_rows, variables, audio: jax.Array, count: int
                      ) -> jax.Array | None:
  """Embeddings of a memory's first ``count`` rows, or None if it is empty.

  ``embed_rows(variables, audio, rows)`` embeds the rows ``rows`` of
  ``audio``; it is called on chunks of ``EMBED_CHUNK`` indices (the last
  one clamped to the memory), so it compiles once whatever ``count`` is.
  """
  chunks = []
  for start in range(0, count, EMBED_CHUNK):
    rows = np.minimum(np.arange(start, start + EMBED_CHUNK),
                      audio.shape[0] - 1)
    chunks.append(embed_rows(variables, audio, jnp.asarray(rows)))
  return jnp.concatenate(chunks)[:count] if chunks else None


def class_means(embeddings: jax.Array, labels: jax.Array, num_classes: int,
                mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """iCaRL's class means and which classes have exemplars.

  Returns ``(means float[C, D], present bool[C])``: the renormalised mean of
  the L2-normalised embeddings of each class (zeros where absent).
  """
  chex.assert_rank(embeddings, 2)
  if mask is None:
    mask = jnp.ones(labels.shape, bool)
  phi = l2_normalize(embeddings.astype(jnp.float32))
  onehot = jax.nn.one_hot(labels, num_classes) * mask[:, None]
  sums = onehot.T @ phi
  counts = onehot.sum(0)
  present = counts > 0
  means = l2_normalize(sums / jnp.maximum(counts, 1.0)[:, None])
  return jnp.where(present[:, None], means, 0.0), present


def nme_logits(embedding: jax.Array, means: jax.Array, present: jax.Array
               ) -> jax.Array:
  """``-||phi(x) - mu_c||^2`` per class; ``-4`` for a class without mean."""
  phi = l2_normalize(embedding.astype(jnp.float32))
  distance = jnp.sum(jnp.square(phi[:, None, :] - means[None]), axis=-1)
  return -jnp.where(present[None, :], distance, MISSING_CLASS_DISTANCE)


def fit_length(audio: Any, length: int) -> Any:
  """Cuts or zero-pads ``audio`` [B, T] to ``[B, length]``."""
  audio = jnp.asarray(audio)
  if audio.shape[1] >= length:
    return audio[:, :length]
  return jnp.pad(audio, ((0, 0), (0, length - audio.shape[1])))


def _cast_audio(audio: jax.Array, dtype) -> jax.Array:
  """To the buffer's dtype, with the front end's int16 scale 1/32768."""
  if audio.dtype == dtype:
    return audio
  if dtype == jnp.int16:
    return jnp.clip(jnp.round(audio * 32768.0), -32768, 32767).astype(dtype)
  if audio.dtype == jnp.int16:
    return (audio.astype(jnp.float32) / 32768.0).astype(dtype)
  return audio.astype(dtype)


def plan_memory(old_tasks: np.ndarray, old_labels: np.ndarray,
                new_labels: np.ndarray, task_id: int, capacity: int
                ) -> tuple[np.ndarray, dict[int, int]]:
  """Which stored rows to keep and how many exemplars each new class gets.

  Args:
    old_tasks, old_labels: the filled rows' ``task`` and ``label`` (groups
      stored contiguously, each in herding order).
    new_labels: labels of the finished task's training examples.
    task_id: the finished task.
    capacity: :math:`K`.

  Returns:
    ``(keep, quota)``: the row indices kept, in order (each old group's
    first :math:`m` rows), and ``{class: number of exemplars}`` for the new
    groups (:math:`\\min(m, n_g)`).
  """
  old_groups = list(dict.fromkeys(zip(old_tasks.tolist(),
                                      old_labels.tolist())))
  new_classes = sorted(set(new_labels.tolist()))
  num_groups = len(old_groups) + len(new_classes)
  per_group = capacity // max(num_groups, 1)
  keep = []
  for task, label in old_groups:
    rows = np.flatnonzero((old_tasks == task) & (old_labels == label))
    keep.extend(rows[:per_group].tolist())
  quota = {c: int(min(per_group, np.sum(new_labels == c)))
           for c in new_classes}
  del task_id
  return np.asarray(keep, np.int64), quota


def make(context: StrategyContext, memory_size: int = 5000,
         replay_batch_size: int | None = None,
         distillation_weight: float = 0.5) -> Strategy:
  """iCaRL for the cljax loop (fields from ``config.strategy``).

  Args:
    context: the experiment (model and front end for the embeddings and
      the teacher).
    memory_size: :math:`K`, exemplars kept in all (seed 001: 5000).
    replay_batch_size: exemplars mixed into each step; ``None``: as many as
      the incoming batch.
    distillation_weight: :math:`\\lambda` in ``[0, 1]`` (module docstring).

  Returns:
    A ``Strategy`` with ``init_state``, ``init_buffer``, ``replay``,
    ``classification_loss``, ``loss``, ``end_task`` and ``eval_logits``.
  """
  memory_size = replay_lib.check_capacity(memory_size, "strategy.memory_size")
  replay_batch_size = replay_lib.check_replay_batch_size(replay_batch_size,
                                                         memory_size)
  if (isinstance(distillation_weight, bool)
      or not isinstance(distillation_weight, (int, float))
      or not 0.0 <= distillation_weight <= 1.0):
    raise registry.ConfigError(
        f"config.strategy.distillation_weight={distillation_weight!r}: "
        "expected a number in [0, 1] (0: labels only, 1: teacher only).")
  lam = float(distillation_weight)
  model, frontend = context.model, context.frontend
  num_classes = context.num_classes

  @jax.jit
  def embed(variables, audio):
    _, embedding = model.apply(variables, frontend(audio), train=False)
    return embedding

  @jax.jit
  def embed_rows(variables, audio, rows):
    return embed(variables, jnp.take(audio, rows, axis=0))

  def init_state(variables):
    kernel = variables["params"].get("classifier", {}).get("kernel")
    if kernel is None or kernel.ndim != 2:
      raise registry.ConfigError(
          "config.strategy.name='icarl' needs the model's embedding size: "
          "the model must have a Dense named 'classifier' applied to its "
          "embedding (params['classifier']['kernel'] of shape [D, C]), as "
          "cljax's models do.")
    dim = kernel.shape[0]
    return {"teacher": jax.tree.map(jnp.copy, variables),
            "active": jnp.zeros([], jnp.float32),
            "class_means": jnp.zeros((num_classes, dim), jnp.float32),
            "class_present": jnp.zeros((num_classes,), bool),
            "nme_ready": jnp.zeros([], bool)}

  def init_buffer(example_spec):
    return replay_lib.empty(example_spec, memory_size)

  def replay(buffer: ReplayBuffer, batch, rng, replay_context: ReplayContext):
    del replay_context
    batch_size = batch["label"].shape[0]
    rows = min(replay_batch_size or batch_size, buffer.capacity)
    replayed, valid = replay_lib.sample(buffer, rng, rows)
    # One mean over D_new and the valid exemplars: iCaRL trains on the union.
    counted = jnp.concatenate([jnp.ones((batch_size,), jnp.float32),
                               valid.astype(jnp.float32)])
    mixed = {name: jnp.concatenate([batch[name].astype(rows_.dtype), rows_])
             for name, rows_ in replayed.items()}
    mixed["weight"] = counted / counted.sum()
    return mixed, buffer  # Exemplars change only at task ends.

  def classification_loss(logits, labels, strategy_state):
    onehot = jax.nn.one_hot(labels, logits.shape[-1])
    scale = 1.0 - lam * strategy_state["active"]
    return scale * sigmoid_bce(logits, onehot)

  def loss(params, strategy_state, batch, outputs):
    del params
    logits = outputs[0]
    teacher_logits, _ = model.apply(strategy_state["teacher"],
                                    batch["features"], train=False)
    targets = jax.nn.sigmoid(jax.lax.stop_gradient(teacher_logits))
    per_row = sigmoid_bce(logits, targets)
    if "weight" in batch:
      distillation = jnp.sum(batch["weight"] * per_row)
    else:
      distillation = jnp.mean(per_row)
    return lam * strategy_state["active"] * distillation, {
        "distillation": distillation}

  def end_task(state, task):
    buffer: ReplayBuffer = state.buffer
    variables = state.variables
    audio_store = buffer.data["audio"]
    crop, dtype = audio_store.shape[1], audio_store.dtype
    audios, labels, embeddings = [], [], []
    for batch in task.batches("train", [task.task_id]):
      # host_array: with several processes the batch rows live on all hosts.
      mask = distributed.host_array(batch["mask"]).astype(bool)
      audio = _cast_audio(fit_length(batch["audio"], crop), dtype)
      embedding = embed(variables, audio)
      audios.append(distributed.host_array(audio)[mask])
      labels.append(distributed.host_array(batch["label"])[mask])
      embeddings.append(distributed.host_array(embedding)[mask])
    if not labels or not sum(len(x) for x in labels):
      raise ValueError(
          f"iCaRL end of task {task.task_id} ({task.task_name!r}): its "
          "train split is empty; there is nothing to select exemplars from.")
    new_audio = np.concatenate(audios)
    new_labels = np.concatenate(labels).astype(np.int32)
    new_embeddings = np.concatenate(embeddings)

    size = int(buffer.size)
    old_tasks = np.asarray(buffer.data["task"][:size])
    old_labels = np.asarray(buffer.data["label"][:size])
    keep, quota = plan_memory(old_tasks, old_labels, new_labels,
                              task.task_id, buffer.capacity)
    selected = []
    for label, count in quota.items():
      members = np.flatnonzero(new_labels == label)
      # Padded to a multiple of EMBED_CHUNK: few distinct compilations.
      padded = -(-len(members) // EMBED_CHUNK) * EMBED_CHUNK
      group = np.zeros((padded, new_embeddings.shape[1]), np.float32)
      group[:len(members)] = new_embeddings[members]
      order = herding(jnp.asarray(group), count,
                      jnp.arange(padded) < len(members))
      selected.extend(members[np.asarray(order)].tolist())
    selected = np.asarray(selected, np.int64)

    kept = replay_lib.gather(buffer, jnp.asarray(keep, jnp.int32))
    new_rows = {"audio": jnp.asarray(new_audio[selected], dtype),
                "label": jnp.asarray(new_labels[selected], jnp.int32),
                "task": jnp.full((len(selected),), task.task_id, jnp.int32)}
    filled = len(keep) + len(selected)
    data = {}
    for name, array in buffer.data.items():
      rows = jnp.concatenate([kept[name], new_rows[name].astype(array.dtype)])
      pad = jnp.zeros((buffer.capacity - filled, *array.shape[1:]),
                      array.dtype)
      data[name] = jax.device_put(jnp.concatenate([rows, pad]),
                                  array.sharding)
    new_buffer = ReplayBuffer(
        data=data,
        size=jax.device_put(jnp.asarray(filled, buffer.size.dtype),
                            buffer.size.sharding),
        seen=jax.device_put(buffer.seen + len(new_labels),
                            buffer.seen.sharding))

    # Class means over every exemplar, under the current model.
    embeddings = embed_filled_rows(embed_rows, variables, data["audio"],
                                   filled)
    if embeddings is not None:
      means, present = class_means(embeddings, data["label"][:filled],
                                   num_classes)
    else:  # A memory smaller than the number of groups keeps nothing.
      means = jnp.zeros_like(state.strategy_state["class_means"])
      present = jnp.zeros((num_classes,), bool)
    strategy_state = {"teacher": jax.tree.map(jnp.copy, variables),
                      "active": jnp.ones([], jnp.float32),
                      "class_means": means,
                      "class_present": present,
                      # NME needs at least one class mean.
                      "nme_ready": jnp.any(present)}
    strategy_state = jax.device_put(
        strategy_state, jax.tree.leaves(state.strategy_state)[0].sharding)
    return state.replace(buffer=new_buffer, strategy_state=strategy_state)

  def eval_logits(strategy_state, buffer, logits, embedding):
    del buffer
    nme = nme_logits(embedding, strategy_state["class_means"],
                     strategy_state["class_present"])
    return jnp.where(strategy_state["nme_ready"], nme, logits)

  return Strategy(name="icarl", init_state=init_state,
                  init_buffer=init_buffer, replay=replay,
                  classification_loss=classification_loss, loss=loss,
                  end_task=end_task, eval_logits=eval_logits)

