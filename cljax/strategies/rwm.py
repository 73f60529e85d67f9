r"""RWM: radian weight modification of the classifier gradient, as optax.

Reference: X. Zhang, J. Yi, C. Wang, C. Y. Zhang, S. Zeng, J. Tao, "What to
Remember: Self-Adaptive Continual Learning for Audio Deepfake Detection",
AAAI 2024 (official code: Cecile-hi/Radian-Weight-Modification,
``avalanche/training/plugins/rwm.py``; the same file in the EVDA benchmark,
Cecile-hi/Evolving-FAD-CL-Benchmark).

Math. For the classifier ``logits = x W + b`` (Flax kernel ``W`` is
``[d, C]``) with kernel gradient ``G``, RWM replaces ``G`` by
``(P + beta Q) G`` where ``P`` projects away from the inputs of past tasks
(OWM's recursive-least-squares projector, see ``_projection``) and ``Q`` is
the "old-input" direction. ``P + tan(theta) Q`` is proportional to
``cos(theta) P + sin(theta) Q``: a rotation by the radian ``theta`` between
stability (``theta = 0``: pure OWM) and plasticity. The angle comes from the
batch::

  z_i          = logit of sample i's true class (detached)
  sin(theta_i) = softmax_batch(z)_i
  theta        = pi/4 + 1/2 * sum_i s_{y_i} * theta_i
  beta         = tan(theta)

with a sign per class: ``+1`` for a compact class (genuine speech), ``-1``
for a spread-out one (fakes). Confident genuine samples turn the update
towards plasticity (``beta > 1``), confident fakes towards stability
(``beta < 1``); a balanced batch gives ``beta ~ 1``.

Per-class form (``per_class=True``; an extension the method's description
implies, not the official single angle): the kernel gradient is a sum over
samples, so it splits into the parts ``G_c`` of each class's samples; each
part is rotated by its own angle ``theta_c = pi/4 + 1/2 s_c sum_{i: y_i = c}
theta_i`` (softmax still over the whole batch) and the parts are summed.
On a one-class batch it is the single-angle form. The split assumes the
classifier-kernel gradient is the batch-mean softmax cross-entropy's,
``G_CE = x^T (softmax(logits) - onehot(y)) / B``, computed here from
``features``, ``logits`` and ``labels``; whatever else the incoming gradient
holds (``G - G_CE``: extra loss terms, a clipping factor) is rotated by the
single batch angle.

Modes (see ``_projection`` and REFERENCE.md):

* ``well_posed`` (default): textbook projector, ``Q = I - P`` (``beta = 1``
  is the plain gradient), max-shifted softmax, ``theta`` clipped into
  ``[angle_eps, pi/2 - angle_eps]``; ``projector_schedule`` chooses whether
  P learns the current task as it goes (``"online"``) or only past tasks
  (``"past"``, P frozen in a task and committed at its end).
* ``faithful``: the official formulas exactly (element-wise division in the
  P update, Frobenius normalisation, degenerate ``Q = (I - P (P^T P)^{-1}
  P^T)/||.||_F``, no clipping, nothing on the first task), so results can be
  compared with the papers. The official runners never apply it (their
  ``experience_id`` check is always 0 and the layer is only found under
  DataParallel); cljax does apply it.

What the well-posed rotation does. With ``Q = I - P`` the operator is
``beta G + (1 - beta) P G``: ``theta = pi/4`` (a batch whose signed angles
cancel, e.g. balanced and equally confident) is the plain gradient, and
protection comes only from a batch's excess of confident fakes (towards
``P``). On balanced batches RWM therefore stays close to fine-tuning;
``angle_center`` (a cljax option, default the paper's ``pi/4``) moves the
angle of an even batch, ``0`` making it OWM. The modification acts on the
classifier only: forgetting in the layers below it is untouched (measured
in configs/rwm_audio.py).

The NaN cases are defined away: an empty class contributes ``theta_c =
angle_center`` times a zero part; a one-class batch is well defined; logits too
large for ``exp`` go through the max-shifted softmax.

Args (of ``rwm``):
  signs: per-class signs ``[C]`` (default: class 0 genuine ``+1``, every
    other class ``-1``, for the kernel's ``C``). Kept in the state, so
    ``make``'s ``"measured"`` option can update them at a task's end.
  num_classes: ``C`` (optional; checked against ``signs``).
  per_class: rotate each class's part by its own angle.
  mode, projector_schedule, alpha: as above; ``alpha`` regularises the
    recursion (official value 1).
  angle_eps: the well-posed clip of ``theta``.
  angle_center: ``theta`` of a batch whose signed angles cancel (paper:
    ``pi/4``; in the well-posed mode that is the plain gradient, see below).
  layer: the kernel to modify: a ``/`` path suffix, a key sequence or a
    predicate ``(path, leaf) -> bool``; default ``"classifier/kernel"``.

Returns:
  An ``optax.GradientTransformationExtraArgs`` whose state is ``RWMState``;
  ``update(grads, state, params, *, features, labels, logits)``.

Example (any Flax model whose last Dense is named ``classifier``)::

  tx = optax.chain(rwm(), optax.adam(1e-3))
  opt_state = tx.init(params)
  logits, embedding = model.apply(variables, x)   # in the loss
  updates, opt_state = tx.update(grads, opt_state, params,
                                 features=embedding, labels=y, logits=logits)
  ...
  opt_state = commit(opt_state)   # at the end of each task
"""

from __future__ import annotations

import math
from typing import Any, Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import registry
from cljax.strategies import _projection
from cljax.strategies._projection import commit  # Re-exported.
from cljax.strategies.base import Strategy, StrategyContext, TaskContext

__all__ = ["RWMState", "rwm", "rwm_angles", "commit", "default_signs",
           "measure_signs", "make"]

DEFAULT_ANGLE_EPS = 1e-3
# theta of a batch whose signed angles cancel: P + tan(pi/4) Q = P + Q.
PAPER_ANGLE_CENTER = math.pi / 4


class RWMState(NamedTuple):
  """State of ``rwm``: projectors, tasks committed, per-class signs."""

  projector: jax.Array          # [d, d], P applied to the gradient
  pending_projector: jax.Array  # [d, d], P learning the current task
  task_count: jax.Array         # int32 scalar
  signs: jax.Array              # [C] float32, +1 compact / -1 spread


def default_signs(num_classes: int) -> np.ndarray:
  """Class 0 (genuine) ``+1``, every other class (fakes) ``-1``."""
  signs = -np.ones(num_classes, np.float32)
  signs[0] = 1.0
  return signs


def rwm_angles(logits: jax.Array, labels: jax.Array, signs: jax.Array,
               angle_eps: float | None = DEFAULT_ANGLE_EPS,
               angle_center: float = PAPER_ANGLE_CENTER
               ) -> dict[str, jax.Array]:
  """RWM's angles and betas for one batch.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]`` ints.
    signs: ``[C]`` per-class signs.
    angle_eps: clip ``theta`` into ``[eps, pi/2 - eps]``; None: no clip
      (faithful).
    angle_center: the angle of an even batch (the paper's ``pi/4``).

  Returns:
    ``theta`` (scalar, the batch angle), ``beta = tan(theta)``,
    ``class_theta`` ``[C]`` and ``class_beta`` ``[C]`` (per-class form;
    ``pi/4`` and ``1`` for a class absent from the batch).
  """
  thetas = _projection.true_class_angles(logits, labels)          # [B]
  signs = jnp.asarray(signs, jnp.float32)
  signed = signs[labels] * thetas
  theta = angle_center + 0.5 * signed.sum()
  num_classes = logits.shape[-1]
  per_class = jax.ops.segment_sum(thetas, labels, num_segments=num_classes)
  class_theta = angle_center + 0.5 * signs * per_class
  beta = _projection.angle_to_beta(theta, angle_eps)
  class_beta = _projection.angle_to_beta(class_theta, angle_eps)
  if angle_eps is not None:
    theta = jnp.clip(theta, angle_eps, math.pi / 2 - angle_eps)
    class_theta = jnp.clip(class_theta, angle_eps, math.pi / 2 - angle_eps)
  return {"theta": theta, "beta": beta, "class_theta": class_theta,
          "class_beta": class_beta}


def rwm(signs: Sequence[float] | None = None, *, num_classes: int | None = None,
        per_class: bool = False, mode: str = "well_posed",
        projector_schedule: str | None = None,
        alpha: float = _projection.DEFAULT_ALPHA,
        angle_eps: float = DEFAULT_ANGLE_EPS,
        angle_center: float = PAPER_ANGLE_CENTER,
        layer: _projection.LayerSpec = "classifier/kernel"
        ) -> optax.GradientTransformationExtraArgs:
  """Radian weight modification; see the module docstring."""
  schedule = _projection.validate(mode, projector_schedule, alpha, "rwm()")
  if signs is None and num_classes is not None:
    signs = default_signs(num_classes)
  if signs is None:
    pass  # Defaults for the kernel's number of classes, at init.
  elif isinstance(signs, jax.Array):
    # Possibly traced (optax.inject_hyperparams rebuilds the transform in
    # the jitted update): nothing to check on the host.
    signs = signs.astype(jnp.float32)
  else:
    signs = np.asarray(signs, np.float32)
    if signs.ndim != 1 or not np.all(np.isin(signs, (-1.0, 1.0))):
      raise ValueError(f"rwm(signs={signs.tolist()}): give one +1 or -1 per "
                       "class.")
  if (signs is not None and num_classes is not None
      and len(signs) != num_classes):
    raise ValueError(f"rwm: {len(signs)} signs for num_classes={num_classes}.")
  clip = None if mode == "faithful" else angle_eps

  def rotation(grad, projector, q, state, features, labels, logits):
    if logits.shape[-1] != state.signs.shape[0]:
      raise ValueError(
          f"rwm: logits have {logits.shape[-1]} classes but the state holds "
          f"{state.signs.shape[0]} signs; pass signs= (or num_classes=).")
    angles = rwm_angles(logits, labels, state.signs, clip, angle_center)
    if not per_class:
      if q is None:
        return _projection.rotate_well_posed(grad, projector, angles["beta"])
      return _projection.rotate_faithful(grad, projector, q, angles["beta"])
    if grad.shape[-1] != logits.shape[-1]:
      raise ValueError(
          f"rwm(per_class=True) splits a softmax classifier's kernel gradient "
          f"by class, but this kernel has {grad.shape[-1]} column(s) for "
          f"{logits.shape[-1]} classes (an OC-softmax head?): set "
          "config.strategy.per_class=False.")
    parts = _projection.cross_entropy_kernel_grad_parts(
        features, logits, labels, logits.shape[-1])
    return _projection.rotate_groups(grad, parts, angles["class_beta"],
                                     angles["beta"], projector, q)

  return _projection.surgery_transform(
      RWMState, rotation, mode=mode, schedule=schedule, alpha=alpha,
      layer=layer, needs_q=True, needs_logits=True,
      extra_init=lambda params: {"signs": jnp.asarray(
          default_signs(_num_outputs(params, layer)) if signs is None
          else signs, jnp.float32)})


def _num_outputs(params: Any, layer: _projection.LayerSpec) -> int:
  predicate, description = _projection.make_predicate(layer)
  path = _projection.find_kernel_path(params, predicate, description)
  return int(_projection.get_at(params, path).shape[1])


# --------------------------------------------------------------------------
# Measured signs (the paper's criterion).


def signs_from_spread(sums: np.ndarray, counts: np.ndarray,
                      previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Signs from per-class sums of unit embeddings; returns (signs, spread).

  The in-class cosine distance of class ``c`` to its mean direction is
  ``mean_i (1 - cos(e_i, mu_c)) = 1 - ||sum_i u_i|| / n_c`` for unit
  embeddings ``u_i``: 0 when every embedding points the same way. Classes
  more compact than the average of the classes present get ``+1``, the
  others ``-1``; a class with no samples (or all classes equally spread)
  keeps its previous sign.
  """
  present = counts > 0
  spread = np.full(len(counts), np.nan)
  spread[present] = 1.0 - (np.linalg.norm(sums[present], axis=-1)
                           / counts[present])
  signs = previous.astype(np.float32).copy()
  if present.sum() >= 2:
    mean = spread[present].mean()
    if not np.allclose(spread[present], mean):
      signs[present] = np.where(spread[present] <= mean, 1.0, -1.0)
  return signs, spread


def measure_signs(embed_fn, variables: Any, batches: Iterable[Any],
                  num_classes: int, previous: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Signs from the embeddings of ``batches`` (audio, label, mask)."""
  sums, counts = None, np.zeros(num_classes)
  for batch in batches:
    embedding = np.asarray(jax.device_get(embed_fn(variables,
                                                   batch["audio"])),
                           np.float64)
    labels = np.asarray(jax.device_get(batch["label"]))
    mask = (np.asarray(jax.device_get(batch["mask"])).astype(bool)
            if "mask" in batch else np.ones(len(labels), bool))
    if sums is None:
      sums = np.zeros((num_classes, embedding.shape[-1]))
    unit = embedding / np.maximum(
        np.linalg.norm(embedding, axis=-1, keepdims=True), 1e-12)
    np.add.at(sums, labels[mask], unit[mask])
    np.add.at(counts, labels[mask], 1)
  if sums is None:
    return previous, np.full(num_classes, np.nan)
  return signs_from_spread(sums, counts, previous)


def make(context: StrategyContext, mode: str = "well_posed",
         projector_schedule: str | None = None,
         alpha: float = _projection.DEFAULT_ALPHA,
         signs: Any = "paper", signs_split: str = "val",
         per_class: bool = False, angle_eps: float = DEFAULT_ANGLE_EPS,
         angle_center: float = PAPER_ANGLE_CENTER,
         layer: str = "classifier/kernel") -> Strategy:
  """RWM for the continual loop (fields from ``config.strategy``).

  Args:
    context: the experiment (model, number of classes).
    mode: ``"well_posed"`` or ``"faithful"``.
    projector_schedule: ``"past"`` or ``"online"`` (well-posed only; None:
      the default, ``"past"``).
    alpha: the recursion's regulariser.
    signs: ``"paper"`` (genuine +1, fakes -1), ``"measured"`` (re-measured at
      each task's end from the in-class cosine distance of the embeddings of
      every task so far, split ``signs_split``), or one +1/-1 per class.
    signs_split: the split ``"measured"`` reads.
    per_class: one angle per class (see the module docstring).
    angle_eps: the well-posed clip of the angle.
    angle_center: the angle of an even batch; the paper's ``pi/4`` makes it
      the plain gradient in the well-posed mode (``P + Q = I``), ``0``
      makes it OWM (a cljax option, not the paper's).
    layer: the classifier kernel's path suffix.
  """
  num_classes = context.num_classes
  measured = isinstance(signs, str) and signs == "measured"
  if isinstance(signs, str):
    if signs not in ("paper", "measured"):
      raise registry.ConfigError(
          f"config.strategy.signs={signs!r}: use 'paper', 'measured' or one "
          "+1/-1 per class.")
    initial = default_signs(num_classes)
  else:
    initial = np.asarray(list(signs), np.float32)
    if initial.shape != (num_classes,) or not np.all(
        np.isin(initial, (-1.0, 1.0))):
      raise registry.ConfigError(
          f"config.strategy.signs={list(signs)!r}: give one +1 or -1 for "
          f"each of the stream's {num_classes} classes.")
  _projection.validate(mode, projector_schedule, alpha)
  if not 0 < angle_eps < math.pi / 4:
    raise registry.ConfigError(
        f"config.strategy.angle_eps={angle_eps!r} must lie in (0, pi/4).")
  tx = rwm(initial, per_class=per_class, mode=mode,
           projector_schedule=projector_schedule, alpha=alpha,
           angle_eps=angle_eps, angle_center=angle_center, layer=layer)

  embed_fn = None
  if measured:
    model, frontend = context.model, context.frontend
    embed_fn = jax.jit(lambda variables, audio: model.apply(
        variables, frontend(audio), train=False)[1])

  def end_task(state, task: TaskContext):
    opt_state = commit(state.opt_state, RWMState)
    if measured:
      previous = np.asarray(jax.device_get(
          optax.tree.get(opt_state, "RWMState").signs))
      new_signs, _ = measure_signs(
          embed_fn, state.variables,
          task.batches(signs_split, tuple(range(task.task_id + 1))),
          num_classes, previous)
      opt_state = _projection.map_states(
          opt_state, RWMState,
          lambda s: s._replace(signs=jnp.asarray(new_signs, jnp.float32)))
    return state.replace(opt_state=opt_state)

  return Strategy(name="rwm", tx=tx, end_task=end_task)
