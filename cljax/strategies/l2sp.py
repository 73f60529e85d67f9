r"""L2-SP: pull the backbone towards its starting point, decay the head.

Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", ICML 2018. In continual learning the starting point
:math:`w^0` is the model at the start of each task (what the previous tasks
taught it), so the backbone is kept near it while the head adapts:

.. math::
   \Omega(w) = \frac{\alpha}{2} \lVert w_{S} - w^0_{S} \rVert^2
             + \frac{\beta}{2} \lVert w_{\bar S} \rVert^2,

:math:`S` the shared backbone, :math:`\bar S` the head (by default every
parameter whose path contains ``classifier``). The transform adds the
gradient, :math:`\alpha (w_S - w^0_S)` and :math:`\beta w_{\bar S}`, to the
incoming update. Parameters outside both sets (``param_filter``) pass
through untouched.

State: ``L2SPState(anchor)``, the backbone's :math:`w^0` (the head slots
hold ``optax.MaskedNode()``: no copy is kept of what is only decayed).

Example::

  tx = optax.chain(l2sp(alpha=0.01, beta=0.01), optax.adam(1e-3))
  opt_state = tx.init(params)
  ...  # at the start of each new task:
  opt_state = replace_l2sp_state(opt_state, reset_anchor(
      find_l2sp_state(opt_state), params))
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies import _penalty
from cljax.strategies._penalty import ParamFilter
from cljax.strategies.base import Strategy, StrategyContext, TaskContext


class L2SPState(NamedTuple):
  """Attributes: anchor: :math:`w^0` of the backbone (head: MaskedNode)."""

  anchor: Any


def classifier_head(path: tuple[str, ...], leaf: Any) -> bool:
  """The default head: every parameter under a module named ``classifier``."""
  del leaf
  return "classifier" in path


def l2sp(alpha: float = 0.01, beta: float = 0.01, *,
         is_head: Callable[[tuple[str, ...], Any], bool] = classifier_head,
         param_filter: ParamFilter | None = None
         ) -> optax.GradientTransformationExtraArgs:
  """Adds ``alpha (w - w0)`` on the backbone and ``beta w`` on the head.

  Args:
    alpha: backbone strength :math:`\\alpha` (number or jax scalar).
    beta: head weight decay :math:`\\beta`.
    is_head: ``is_head(path, leaf) -> bool``; path: tuple of key names.
    param_filter: optional ``(path, leaf) -> bool`` restricting both terms
      to some parameters (others pass through); ``optax.masked`` also works.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs
    ``params``.
  """

  def head_mask(tree):
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: bool(is_head(_penalty.path_names(path), leaf)),
        tree, is_leaf=_penalty.is_absent)

  def init_fn(params):
    heads = head_mask(params)
    anchor = jax.tree.map(
        lambda h, p: p if _penalty.is_absent(p) else (
            optax.MaskedNode() if h else jnp.array(p, copy=True)),
        heads, params, is_leaf=_penalty.is_absent)
    return L2SPState(anchor=anchor)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _penalty.require_params(params, "l2sp")
    chex.assert_trees_all_equal_shapes(updates, params)
    heads = head_mask(params)

    def add_penalty(head, u, p, a):
      if _penalty.is_absent(u):
        return u
      if head:
        return (u + beta * p).astype(u.dtype)
      return (u + alpha * (p - a)).astype(u.dtype)

    updates = jax.tree.map(add_penalty, heads, updates, params, state.anchor,
                           is_leaf=_penalty.is_absent)
    return updates, state

  return _penalty.maybe_masked(
      optax.GradientTransformationExtraArgs(init_fn, update_fn), param_filter)


def reset_anchor(state: L2SPState, params: Any) -> L2SPState:
  """The state with :math:`w^0` = ``params`` (the start of a task)."""
  return L2SPState(anchor=_penalty.tree_copy(
      _penalty.like_state(state.anchor, params)))


def penalty(params: Any, anchor_params: Any, alpha: float = 0.01,
            beta: float = 0.01, *,
            is_head: Callable[[tuple[str, ...], Any], bool] = classifier_head
            ) -> jax.Array:
  """:math:`\\Omega(w)` for full params trees (for logging and tests)."""

  def term(path, p, a):
    if is_head(_penalty.path_names(path), p):
      return 0.5 * beta * jnp.sum(p ** 2)
    return 0.5 * alpha * jnp.sum((p - a) ** 2)

  terms = jax.tree_util.tree_map_with_path(term, params, anchor_params)
  return sum(jax.tree.leaves(terms), jnp.zeros((), jnp.float32))


def find_l2sp_state(opt_state: Any) -> L2SPState:
  """The ``L2SPState`` inside any optax state."""
  return _penalty.find_state(opt_state, L2SPState)


def replace_l2sp_state(opt_state: Any, new: L2SPState) -> Any:
  """``opt_state`` with its ``L2SPState`` replaced (``optax.tree.set``)."""
  return _penalty.replace_state(opt_state, new)


def make(context: StrategyContext, alpha: float = 0.01,
         beta: float = 0.01) -> Strategy:
  """The L2-SP strategy for the cljax loop.

  Args:
    context: unused.
    alpha: backbone pull towards the start-of-task weights.
    beta: weight decay of the classifier (the head).

  Returns:
    A ``Strategy`` with ``tx`` and ``start_task`` (which sets :math:`w^0`).
  """
  del context
  for field, value in (("alpha", alpha), ("beta", beta)):
    if not (isinstance(value, (int, float)) and value >= 0):
      raise registry.ConfigError(
          f"config.strategy.{field}={value!r}: expected a number >= 0.")

  def start_task(state, task: TaskContext):
    del task
    new = reset_anchor(find_l2sp_state(state.opt_state), state.params)
    return state.replace(opt_state=replace_l2sp_state(state.opt_state, new))

  return Strategy(name="l2sp", tx=l2sp(alpha, beta), start_task=start_task)
