r"""CoReD: continual representation using distillation (seed 002).

Kim, Tariq & Woo, "CoReD: Generalizing Fake Media Detection with Continual
Representation using Distillation", ACM MM 2021 (official code:
alsgkals2/CoReD, ``CoReD.py``, ``Function_CoReD.py``,
``Function_common.py``). The teacher is the model after the previous task;
the student starts from it (``load_models`` loads both from the same
weights; in the cljax loop the model entering task :math:`t` already is the
teacher). On task :math:`t > 0`:

.. math::
   L = \mathrm{CE}(z_s, y)
     + \underbrace{\alpha T^2\, \mathrm{mean}_b \mathrm{KL}(p_t \| p_s)
       + (1 - \alpha)\, \mathrm{CE}(z_s, y)}_{\texttt{loss\_fn\_kd}}
     + \lambda \sum_{c \in \{\text{real}, \text{fake}\}} \sum_{k=1}^{5}
       \big\lVert \bar f^{s}_{c,k} - \bar f^{t}_{c,k} \big\rVert^2 ,

:math:`T = 20`, :math:`\alpha = 0.5`, :math:`\lambda = 1`; task 0 is plain
cross-entropy. What the official code does, term by term:

* **KD** (``Function_common.loss_fn_kd(outputs, targets, teacher_outputs)``,
  called with its defaults ``KD_T=20, KD_alpha=0.5``; the ``-a`` flag is
  printed but never passed): ``KLDivLoss(batchmean)(log_softmax(s/T),
  softmax(t/T) * alpha*T*T) + CE * (1 - alpha)``. Scaling the *target* by
  :math:`c = \alpha T^2` gives :math:`c\,\mathrm{KL} + c \log c`; cljax drops
  the constant :math:`c \log c` (same gradient). Its ``(1 - alpha) CE`` comes
  on top of the main CE, so the cross-entropy weight is :math:`2 - \alpha`.
* **Bins** (``_GetIndex``): the softmax probability of the *true* class,
  :math:`p_y`, in ``(0.5, 0.6], (0.6, 0.7], (0.7, 0.8], (0.8, 0.9],
  (0.9, 1.0]``; a sample with :math:`p_y \le 0.5` (misclassified) is in no
  bin. Per class (label 0 real, 1 fake) and bin.
* **Teacher means** (``func_correct`` + ``GetListTeacherFeatureFakeReal``):
  computed *once per task, before training*, over the task's whole training
  split, binned by the *teacher's* :math:`p_y`; fixed during the task.
* **Student means** (``correct_binary`` + ``GetFeatureMaxpool`` in the
  batch loop): over the current *batch*, binned by the *student's own*
  :math:`p_y` (no gradient through the binning), with gradient through the
  features. A term counts only if both the teacher's and the batch's bin
  are non-empty (the code skips ``list_features[i][j] == 0`` and student
  bins that return the constant 0).
* **Feature of a sample**: ``MaxPool2d(4)`` of Xception's last feature map
  (4x4 at 128 px, so a global max), then ``mean`` over channels -- one
  number per sample (``feature="channel_mean"``, the default). cljax's
  pooled features are the model's embedding (``apply -> (logits,
  embedding)``), so the sample's number is the mean of its embedding;
  ``feature="vector"`` keeps the whole embedding (squared distance summed
  over its dimensions), the reading of the paper's text.

Fixed shapes, jittable: a batch's bins are a one-hot ``[B, C, 5]`` mask,
means are masked sums over masked counts, and an empty bin contributes 0.

Deviations (documented, for speed and determinism): the student's bins and
features come from the training forward pass (the official code runs the
student in eval mode for them -- and, as ``correct_binary`` leaves it in
eval mode, trains with frozen BatchNorm after the first batch, a quirk not
copied); the teacher means use the evaluation crops of the training split
(the official loader applies the training augmentation); CutMix (p = 0.2 in
``CoReD.py``) is a data augmentation outside the method and is not applied.

Example::

  strategy = make(context)   # alpha 0.5, T 20, 5 bins, channel-mean feature
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies import _teacher
from cljax.strategies.base import Strategy, StrategyContext, TaskContext

FEATURES = ("channel_mean", "vector")
# The official bin edges (``_GetIndex``): (0.5, 0.6], ..., (0.9, 1.0].
BIN_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
NUM_BINS = len(BIN_EDGES) - 1


def confidence_bins(logits: jax.Array, labels: jax.Array,
                    num_classes: int) -> jax.Array:
  """One-hot ``float32[B, C, 5]``: sample ``b`` in (its class, its bin).

  The bin is that of the softmax probability of the true class; rows with
  ``p_y <= 0.5`` are all zero.
  """
  chex.assert_rank(logits, 2)
  p_true = jnp.take_along_axis(jax.nn.softmax(logits, -1),
                               labels[:, None], axis=-1)[:, 0]
  edges = jnp.asarray(BIN_EDGES, jnp.float32)
  in_bin = (p_true[:, None] > edges[None, :-1]) & (
      p_true[:, None] <= edges[None, 1:])                       # [B, K]
  in_class = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)  # [B, C]
  return in_class[:, :, None] * in_bin[:, None, :].astype(jnp.float32)


def sample_features(embedding: jax.Array, feature: str) -> jax.Array:
  """``[B, D']``: the per-sample representation the bins average."""
  if feature == "channel_mean":
    return jnp.mean(embedding, axis=-1, keepdims=True)
  return embedding


def binned_sums(bins: jax.Array, features: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """``(sum of features [C, K, D'], count [C, K])`` over the rows of a batch."""
  return (jnp.einsum("bck,bd->ckd", bins, features), jnp.sum(bins, axis=0))


def masked_means(sums: jax.Array, counts: jax.Array) -> jax.Array:
  """``sums / counts`` per bin; 0 for an empty bin (no NaN)."""
  return sums / jnp.maximum(counts, 1.0)[..., None]


def representation_loss(student_embedding: jax.Array, student_logits: jax.Array,
                        labels: jax.Array, teacher_means: jax.Array,
                        teacher_counts: jax.Array, feature: str = "channel_mean"
                        ) -> jax.Array:
  """``sum_{c,k} ||mean_s[c,k] - mean_t[c,k]||^2`` over bins both fill.

  Args:
    student_embedding: ``[B, D]``, differentiable.
    student_logits: ``[B, C]``; only used to bin (no gradient).
    labels: ``int[B]``.
    teacher_means: ``[C, K, D']`` precomputed per task.
    teacher_counts: ``[C, K]``, how many training samples each mean has.
    feature: ``"channel_mean"`` or ``"vector"`` (module docstring).
  """
  num_classes = teacher_counts.shape[0]
  bins = confidence_bins(jax.lax.stop_gradient(student_logits), labels,
                         num_classes)
  sums, counts = binned_sums(bins, sample_features(student_embedding, feature))
  chex.assert_equal_shape([sums, teacher_means])
  both = (counts > 0) & (teacher_counts > 0)
  distance = jnp.sum((masked_means(sums, counts) - teacher_means) ** 2, -1)
  return jnp.sum(jnp.where(both, distance, 0.0))


def make(context: StrategyContext, alpha: float = 0.5,
         temperature: float = 20.0, representation_weight: float = 1.0,
         feature: str = "channel_mean", teacher_split: str = "train"
         ) -> Strategy:
  r"""CoReD for the continual loop (fields from ``config.strategy``).

  Args:
    context: supplies the model, number of classes and front end.
    alpha: the KD weight inside ``loss_fn_kd`` (0.5); the extra
      cross-entropy is ``1 - alpha``.
    temperature: KD temperature (20).
    representation_weight: :math:`\lambda` (official: 1).
    feature: ``"channel_mean"`` (official) or ``"vector"``.
    teacher_split: the split the teacher's means are measured on at the
      start of each task (official: the task's training data).

  Returns:
    A ``Strategy``; its state is the teacher's dict plus ``teacher_means``
    ``[C, 5, D']`` and ``teacher_counts`` ``[C, 5]``.
  """
  _teacher.check_non_negative("alpha", alpha)
  if alpha > 1:
    raise registry.ConfigError(
        f"config.strategy.alpha={alpha}: expected 0 <= alpha <= 1 (the "
        "cross-entropy inside the KD term is weighted by 1 - alpha).")
  _teacher.check_positive("temperature", temperature)
  _teacher.check_non_negative("representation_weight", representation_weight)
  _teacher.check_choice("feature", feature, FEATURES)
  _teacher.check_choice("teacher_split", teacher_split, ("train", "val"))
  num_classes = context.num_classes

  def init_state(variables):
    # The model's classifier reads exactly the embedding (models/), so its
    # kernel's input width is the embedding's.
    width = (1 if feature == "channel_mean" else
             variables["params"]["classifier"]["kernel"].shape[0])
    return {**_teacher.init_state(variables),
            "teacher_means": jnp.zeros((num_classes, NUM_BINS, width),
                                       jnp.float32),
            "teacher_counts": jnp.zeros((num_classes, NUM_BINS), jnp.float32)}

  @jax.jit
  def teacher_batch_sums(strategy_state, audio, labels, mask):
    logits, embedding = _teacher.teacher_outputs(
        context.model, strategy_state, context.frontend(audio))
    bins = confidence_bins(logits, labels, num_classes) * mask[:, None, None]
    return binned_sums(bins, sample_features(embedding, feature))

  def teacher_means(strategy_state: Mapping[str, Any], batches
                    ) -> tuple[jax.Array, jax.Array]:
    """Per-bin means of the teacher's features over ``batches``."""
    sums = jnp.zeros_like(strategy_state["teacher_means"])
    counts = jnp.zeros_like(strategy_state["teacher_counts"])
    for batch in batches:
      mask = batch.get("mask", jnp.ones(batch["label"].shape, jnp.float32))
      batch_sums, batch_counts = teacher_batch_sums(
          strategy_state, batch["audio"], batch["label"],
          mask.astype(jnp.float32))
      sums, counts = sums + batch_sums, counts + batch_counts
    return masked_means(sums, counts), counts

  def start_task(state, task: TaskContext):
    if float(state.strategy_state["active"]) == 0:
      return state  # First task: no teacher, nothing to measure.
    means, counts = teacher_means(
        state.strategy_state, task.batches(teacher_split, [task.task_id]))
    return state.replace(strategy_state={
        **state.strategy_state, "teacher_means": means,
        "teacher_counts": counts})

  def loss(params, strategy_state, batch, outputs):
    del params
    logits, embedding = outputs
    teacher_logits, _ = _teacher.teacher_outputs(
        context.model, strategy_state, batch["features"])
    kd = _teacher.distillation_loss(logits, teacher_logits, temperature)
    extra_ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"]))
    representation = representation_loss(
        embedding, logits, batch["label"], strategy_state["teacher_means"],
        strategy_state["teacher_counts"], feature)
    total = (alpha * kd + (1.0 - alpha) * extra_ce
             + representation_weight * representation)
    return strategy_state["active"] * total, {
        "kd": kd, "representation": representation}

  return Strategy(name="cored", init_state=init_state, start_task=start_task,
                  loss=loss, end_task=_teacher.end_task)
