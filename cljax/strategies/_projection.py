r"""Shared math of the orthogonal-projection family (OWM, RAWM, RWM).

All three methods modify the weight gradient of one linear layer (the
classifier over the embedding) with a projector ``P`` learned from the
layer's inputs. This module holds what they share:

* the projector recursions, ``faithful`` (the official code's) and
  ``well_posed`` (textbook OWM);
* the "old-input" direction ``Q``;
* applying ``(P + beta Q)`` to the kernel gradient, with one ``beta`` or one
  per class group;
* finding the layer's kernel in a parameter tree by a path predicate;
* committing the projector at a task boundary inside any optax state.

Layout. A PyTorch ``nn.Linear`` weight gradient is ``G_pt`` of shape
``(C, d)``; a Flax ``nn.Dense`` kernel gradient is its transpose ``G`` of
shape ``(d, C)``. The official ``G_pt <- G_pt M^T`` is therefore
``G <- M G`` here (``M`` is ``d x d``).

Faithful recursion (Cecile-hi/Radian-Weight-Modification,
``avalanche/training/plugins/{owm,rawm,rwm}.py``, ``before_update``), with
``r`` the batch mean of the layer input (a row ``1 x d``) and ``alpha = 1``::

  k = P r^T                                  # d x 1
  P <- P - (k k^T) / (alpha + k r)           # k r is d x d: element-wise /
  P <- P / ||P||_F
  Q  = (I - P (P^T P)^{-1} P^T) / ||.||_F    # zero in exact arithmetic

Well-posed recursion (Zeng et al., "Continual learning of context-dependent
processing in neural networks", Nature MI 2019; recursive least squares)::

  k = P r
  P <- P - k k^T / (alpha + r^T k)           # scalar denominator
  P <- (P + P^T) / 2                         # keep it symmetric in float32
  Q  = I - P

so that ``P + Q = I``: ``beta = 1`` is the plain gradient, ``beta = 0`` pure
OWM, and ``(P + beta Q) G = beta G + (1 - beta) P G`` costs one ``d x d`` by
``d x C`` product per step (no ``O(d^3)`` work). ``P`` is an
``alpha``-regularised projector onto the orthogonal complement of the inputs
it has seen: ``P -> I - X^T (X X^T + alpha I)^{-1} X`` for inputs ``X``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import chex
import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies.base import Strategy

# predicate(path, leaf) -> bool, ``path`` a tuple of str keys.
Predicate = Callable[[tuple[str, ...], Any], bool]
LayerSpec = str | Sequence[str] | Predicate

MODES = ("well_posed", "faithful")
SCHEDULES = ("online", "past")
# The well-posed default, chosen by measurement (see the report in
# configs/rwm_audio.py): P learns a task's inputs at its end only.
DEFAULT_SCHEDULE = "past"
# The official code's regulariser of the recursion (``1.0 * 1 ** lamda``).
DEFAULT_ALPHA = 1.0


class ProjectorFields(NamedTuple):
  """The fields every projection state has (documentation only)."""

  projector: jax.Array          # P used to modify the gradient, [d, d]
  pending_projector: jax.Array  # P learning the current task, [d, d]
  task_count: jax.Array         # tasks committed so far, int32 scalar


# --------------------------------------------------------------------------
# Finding the layer.


def _key_name(key: Any) -> str:
  for attribute in ("key", "name", "idx"):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
  """A ``jax.tree_util`` key path as a tuple of strings."""
  return tuple(_key_name(k) for k in path)


def make_predicate(layer: LayerSpec) -> tuple[Predicate, str]:
  """A predicate and its description from a path or a callable.

  Args:
    layer: ``"classifier/kernel"`` (a ``/``-separated suffix of the
      parameter path), a sequence of keys (``("classifier", "kernel")``), or
      a callable ``predicate(path: tuple[str, ...], leaf) -> bool``.

  Returns:
    ``(predicate, description)``; the description names it in errors.
  """
  if callable(layer):
    return layer, getattr(layer, "__name__", repr(layer))
  if isinstance(layer, str):
    suffix = tuple(part for part in layer.split("/") if part)
  else:
    suffix = tuple(str(part) for part in layer)
  if not suffix:
    raise ValueError(f"layer={layer!r} names no parameter path.")

  def predicate(path: tuple[str, ...], leaf: Any) -> bool:
    del leaf
    return tuple(path[-len(suffix):]) == suffix

  return predicate, f"path ending in {'/'.join(suffix)!r}"


def find_kernel_path(tree: Any, predicate: Predicate, description: str
                     ) -> tuple[str, ...]:
  """The path of the one 2-D leaf of ``tree`` the predicate selects.

  Raises:
    ValueError: no leaf or several leaves match, or the match is not 2-D;
      the message names the predicate and lists the paths that exist.
  """
  leaves = jax.tree_util.tree_leaves_with_path(tree)
  names = [path_names(path) for path, _ in leaves]
  matches = [(name, leaf) for name, (_, leaf) in zip(names, leaves)
             if predicate(name, leaf)]
  existing = ", ".join("/".join(n) for n in names) or "(none)"
  if len(matches) != 1:
    what = "no parameter" if not matches else f"{len(matches)} parameters"
    raise ValueError(
        f"The layer selector ({description}) matches {what}; it must select "
        "exactly one 2-D kernel (the classifier's, [d, C]). Parameter paths "
        f"that exist: {existing}. Pass layer= the path of the classifier "
        "kernel (config.strategy.layer, e.g. 'classifier/kernel').")
  name, leaf = matches[0]
  if getattr(leaf, "ndim", None) != 2:
    raise ValueError(
        f"The layer selector ({description}) matches {'/'.join(name)} of "
        f"shape {getattr(leaf, 'shape', None)}, not a 2-D Dense kernel "
        f"[d, C]. Parameter paths that exist: {existing}.")
  return name


def get_at(tree: Any, path: tuple[str, ...]) -> Any:
  for name, leaf in ((path_names(p), leaf) for p, leaf in
                     jax.tree_util.tree_leaves_with_path(tree)):
    if name == path:
      return leaf
  raise KeyError(path)


def replace_at(tree: Any, path: tuple[str, ...], value: Any) -> Any:
  """``tree`` with the leaf at ``path`` replaced (a new tree)."""
  return jax.tree_util.tree_map_with_path(
      lambda p, leaf: value if path_names(p) == path else leaf, tree)


# --------------------------------------------------------------------------
# Projector recursions.


def faithful_projector_update(projector: jax.Array, r: jax.Array,
                              alpha: float = DEFAULT_ALPHA) -> jax.Array:
  """The official update: element-wise division, then Frobenius norm.

  ``k = P r``; ``P <- P - (k k^T) / (alpha + k r^T)`` where ``k r^T`` is the
  ``d x d`` outer product, so the division is element by element;
  ``P <- P / ||P||_F``.
  """
  k = projector @ r
  updated = projector - jnp.outer(k, k) / (alpha + jnp.outer(k, r))
  return updated / jnp.linalg.norm(updated)


def faithful_q(projector: jax.Array) -> jax.Array:
  """Official ``Q = (I - P (P^T P)^{-1} P^T) / ||.||_F`` (O(d^3)).

  Analytically zero for an invertible ``P``; in float32 a unit-norm matrix of
  round-off, as the official code computes it. Where it is exactly zero the
  official code divides 0 by 0 (NaN); here it stays zero.
  """
  d = projector.shape[0]
  mq = projector @ jnp.linalg.solve(projector.T @ projector, projector.T)
  q = jnp.eye(d, dtype=projector.dtype) - mq
  norm = jnp.linalg.norm(q)
  return jnp.where(norm > 0, q / jnp.where(norm > 0, norm, 1.0), q)


def well_posed_projector_update(projector: jax.Array, r: jax.Array,
                                alpha: float = DEFAULT_ALPHA) -> jax.Array:
  """Textbook OWM/RLS: ``P <- P - k k^T / (alpha + r^T k)``, symmetrised."""
  k = projector @ r
  updated = projector - jnp.outer(k, k) / (alpha + r @ k)
  return 0.5 * (updated + updated.T)


# --------------------------------------------------------------------------
# Class-group split of the kernel gradient.


def cross_entropy_kernel_grad_parts(features: jax.Array, logits: jax.Array,
                                    labels: jax.Array, num_groups: int,
                                    group_of_class: jax.Array | None = None
                                    ) -> jax.Array:
  r"""The mean-CE kernel gradient split by the class group of each sample.

  For ``logits = features @ W + b`` and the mean softmax cross-entropy over a
  batch of ``B``, ``dL/dW = features^T (softmax(logits) - onehot(labels)) /
  B``: a sum over samples. Part ``g`` keeps the samples whose label's group
  is ``g``, so the parts sum to the whole gradient.

  Args:
    features: the layer input ``[B, d]``.
    logits: the layer output ``[B, C]``.
    labels: ``[B]`` ints in ``[0, C)``.
    num_groups: ``K``.
    group_of_class: ``[C]`` ints, the group of each class (default: each
      class its own group, ``K = C``).

  Returns:
    ``[K, d, C]``, float32.
  """
  num_classes = logits.shape[-1]
  if group_of_class is None:
    group_of_class = jnp.arange(num_classes)
  error = (jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
           - jax.nn.one_hot(labels, num_classes, dtype=jnp.float32))
  membership = jax.nn.one_hot(group_of_class[labels], num_groups,
                              dtype=jnp.float32)                  # [B, K]
  return jnp.einsum("bd,bk,bc->kdc", features.astype(jnp.float32),
                    membership, error) / features.shape[0]


# --------------------------------------------------------------------------
# Applying (P + beta Q).


def rotate_well_posed(grad: jax.Array, projector: jax.Array,
                      beta: jax.Array) -> jax.Array:
  """``(P + beta (I - P)) G = beta G + (1 - beta) P G``."""
  return beta * grad + (1.0 - beta) * (projector @ grad)


def rotate_faithful(grad: jax.Array, projector: jax.Array, q: jax.Array,
                    beta: jax.Array) -> jax.Array:
  """``(P + beta Q) G`` with the official (degenerate) ``Q``."""
  return projector @ grad + beta * (q @ grad)


def rotate_groups(grad: jax.Array, parts: jax.Array, betas: jax.Array,
                  residual_beta: jax.Array, projector: jax.Array,
                  q: jax.Array | None) -> jax.Array:
  """``sum_g M(beta_g) G_g + M(beta_res) (G - sum_g G_g)``, ``M`` linear.

  ``parts`` ``[K, d, C]`` are the class-group parts of the gradient,
  ``betas`` ``[K]``; the residual (terms that are not the mean CE, e.g. an
  extra loss or a clipping factor) is rotated by ``residual_beta``. Still one
  ``d x d`` product (well-posed) or two (faithful).
  """
  residual = grad - parts.sum(0)
  if q is None:
    mixed = jnp.einsum("k,kdc->dc", betas, parts) + residual_beta * residual
    return mixed + projector @ (grad - mixed)
  mixed = jnp.einsum("k,kdc->dc", betas, parts) + residual_beta * residual
  return projector @ grad + q @ mixed


# --------------------------------------------------------------------------
# Angles.


def true_class_angles(logits: jax.Array, labels: jax.Array) -> jax.Array:
  r"""RWM's per-sample angles ``theta_i = arcsin(softmax_batch(z)_i)``.

  ``z_i`` is the (detached) logit of sample ``i``'s true class and the
  softmax runs over the batch. The official code exponentiates without a
  max shift; the shifted softmax used here has the same value wherever the
  official one is finite and never overflows.
  """
  z = jnp.take_along_axis(jax.lax.stop_gradient(logits).astype(jnp.float32),
                          labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
  sines = jax.nn.softmax(z)
  return jnp.arcsin(jnp.clip(sines, 0.0, 1.0))


def angle_to_beta(theta: jax.Array, clip_eps: float | None) -> jax.Array:
  """``tan(theta)``, theta clipped into ``[eps, pi/2 - eps]`` unless None."""
  if clip_eps is not None:
    theta = jnp.clip(theta, clip_eps, math.pi / 2 - clip_eps)
  return jnp.tan(theta)


# --------------------------------------------------------------------------
# The transform skeleton shared by the three methods.


def check_inputs(features: jax.Array, labels: jax.Array, dim: int,
                 logits: jax.Array | None = None) -> None:
  chex.assert_rank(features, 2)
  chex.assert_rank(labels, 1)
  chex.assert_equal_shape_prefix((features, labels), 1)
  if features.shape[-1] != dim:
    raise ValueError(
        f"features has width {features.shape[-1]} but the selected kernel "
        f"has {dim} rows: pass the classifier's input (the embedding) as "
        "features=.")
  if logits is not None:
    chex.assert_rank(logits, 2)
    chex.assert_equal_shape_prefix((features, logits), 1)


def init_projector_fields(params: Any, predicate: Predicate,
                          description: str) -> dict[str, jax.Array]:
  kernel = get_at(params, find_kernel_path(params, predicate, description))
  # Two buffers, not one array twice: the train step donates its state.
  return {"projector": jnp.eye(kernel.shape[0], dtype=jnp.float32),
          "pending_projector": jnp.eye(kernel.shape[0], dtype=jnp.float32),
          "task_count": jnp.zeros((), jnp.int32)}


def step_projectors(state: Any, r: jax.Array, mode: str, schedule: str,
                    alpha: float) -> tuple[jax.Array, jax.Array, jax.Array,
                                           jax.Array | None]:
  """This step's ``(P to apply, new projector, new pending, active)``.

  * faithful: from the second task on, P learns every batch (then is used);
    on the first task nothing happens (``active`` False), as officially.
  * well_posed/online: P learns every batch, then is used (OWM's order).
  * well_posed/past: the frozen ``projector`` is used; ``pending`` learns
    the batch and becomes the projector at ``commit`` (the task's end).
  """
  r = r.astype(jnp.float32)
  if mode == "faithful":
    active = state.task_count > 0
    learned = faithful_projector_update(state.projector, r, alpha)
    projector = jnp.where(active, learned, state.projector)
    return projector, projector, projector, active
  if schedule == "online":
    projector = well_posed_projector_update(state.projector, r, alpha)
    return projector, projector, projector, None
  pending = well_posed_projector_update(state.pending_projector, r, alpha)
  return state.projector, state.projector, pending, None


def validate(mode: str, schedule: str | None, alpha: float,
             field: str = "config.strategy") -> str:
  """Checks mode/schedule/alpha; returns the schedule to use."""
  if mode not in MODES:
    raise registry.ConfigError(
        f"{field}.mode={mode!r} is unknown; choose one of {', '.join(MODES)}.")
  if mode == "faithful":
    if schedule not in (None, "online"):
      raise registry.ConfigError(
          f"{field}.projector_schedule={schedule!r} does not apply to "
          "mode='faithful', which has the official code's own schedule (P "
          "learns every batch from the second task on). Set it to 'online' "
          "(or None) with mode='faithful'.")
    return "online"
  schedule = DEFAULT_SCHEDULE if schedule is None else schedule
  if schedule not in SCHEDULES:
    raise registry.ConfigError(
        f"{field}.projector_schedule={schedule!r} is unknown; choose one of "
        f"{', '.join(SCHEDULES)}.")
  # A traced alpha (optax.inject_hyperparams) cannot be checked here.
  if isinstance(alpha, (int, float)) and not alpha > 0:
    raise registry.ConfigError(f"{field}.alpha={alpha!r} must be > 0.")
  return schedule


def is_projection_state(node: Any) -> bool:
  fields = getattr(node, "_fields", ())
  return all(f in fields for f in ProjectorFields._fields)


def commit(opt_state: Any, state_type: type | None = None) -> Any:
  """Ends a task inside any optax state: ``P <- pending``, task count + 1.

  Works wherever the projection state sits (``optax.chain``,
  ``optax.MultiSteps``, ``optax.inject_hyperparams``, ``optax.masked``):
  it rebuilds ``opt_state`` with each projection state (of ``state_type``,
  or of any of OWM/RAWM/RWM) replaced, and changes nothing else.

  Example::

    opt_state = rwm_lib.commit(opt_state)   # after the last step of a task
  """

  def selected(node):
    if state_type is not None:
      return isinstance(node, state_type)
    return is_projection_state(node)

  def replace(node):
    if not selected(node):
      return node
    # A copy: two leaves sharing one buffer cannot both be donated.
    return node._replace(projector=jnp.copy(node.pending_projector),
                         task_count=node.task_count + 1)

  return jax.tree.map(replace, opt_state, is_leaf=selected)


def committing_strategy(name: str, tx: optax.GradientTransformationExtraArgs,
                        state_type: type) -> Strategy:
  """A ``Strategy`` whose only boundary work is ``commit`` at a task's end."""
  def end_task(state, task):
    del task
    return state.replace(opt_state=commit(state.opt_state, state_type))

  return Strategy(name=name, tx=tx, end_task=end_task)


def map_states(opt_state: Any, state_type: type,
               fn: Callable[[Any], Any]) -> Any:
  """``opt_state`` with every ``state_type`` node replaced by ``fn(node)``."""
  return jax.tree.map(lambda n: fn(n) if isinstance(n, state_type) else n,
                      opt_state, is_leaf=lambda n: isinstance(n, state_type))


# --------------------------------------------------------------------------
# The transform skeleton.

# rotation(grad [d, C] f32, projector, q or None, state, features, labels,
#          logits) -> modified grad.
Rotation = Callable[..., jax.Array]


def surgery_transform(state_type: type, rotation: Rotation, *, mode: str,
                      schedule: str, alpha: float, layer: LayerSpec,
                      needs_q: bool,
                      extra_init: Callable[[Any], dict[str, Any]] | None = None,
                      needs_logits: bool = False):
  """Builds the ``GradientTransformationExtraArgs`` of one method.

  ``update_fn(updates, state, params=None, *, features, labels, logits=None,
  **extra)`` changes only the selected kernel's gradient; every other leaf
  (the bias included) passes through unchanged.
  """
  predicate, description = make_predicate(layer)

  def init_fn(params):
    fields = init_projector_fields(params, predicate, description)
    if extra_init is not None:
      fields.update(extra_init(params))
    return state_type(**fields)

  def update_fn(updates, state, params=None, *, features=None, labels=None,
                logits=None, **extra):
    del params, extra  # Other transforms' extra arguments.
    if features is None or labels is None or (needs_logits and logits is None):
      needed = "features=, labels=" + (", logits=" if needs_logits else "")
      raise ValueError(
          f"{state_type.__name__[:-5].lower()}: update() needs {needed} (the "
          "classifier's input [B, d], the integer labels [B]"
          + (" and the logits [B, C]" if needs_logits else "") +
          ") as keyword arguments: tx.update(grads, state, params, "
          "features=embedding, labels=labels, logits=logits).")
    path = find_kernel_path(updates, predicate, description)
    grad = get_at(updates, path)
    check_inputs(features, labels, grad.shape[0], logits)
    features = jax.lax.stop_gradient(features).astype(jnp.float32)
    projector, new_projector, pending, active = step_projectors(
        state, features.mean(0), mode, schedule, alpha)
    q = faithful_q(projector) if (mode == "faithful" and needs_q) else None
    modified = rotation(grad.astype(jnp.float32), projector, q, state,
                        features, labels, logits)
    if active is not None:
      modified = jnp.where(active, modified, grad.astype(jnp.float32))
    updates = replace_at(updates, path, modified.astype(grad.dtype))
    return updates, state._replace(projector=new_projector,
                                   pending_projector=pending)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
