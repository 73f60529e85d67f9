"""Shared pieces of the quadratic-penalty transforms (EWC, SI, L2-SP).

Not a strategy (the leading underscore keeps it out of
``cljax.strategies.available()``). Everything here is pure and works on any
parameter pytree, so the transforms stay usable outside cljax.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

# ``param_filter(path, leaf) -> bool``: ``path`` is the tuple of key names
# from the root of the params tree, e.g. ``("classifier", "kernel")``.
ParamFilter = Callable[[tuple[str, ...], Any], bool]


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
  """A jax key path as plain strings: ``(DictKey('a'), ...) -> ('a', ...)``."""
  names = []
  for entry in path:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        names.append(str(getattr(entry, attr)))
        break
    else:
      names.append(str(entry))
  return tuple(names)


def filter_mask(param_filter: ParamFilter) -> Callable[[Any], Any]:
  """Turns a path predicate into an ``optax.masked`` mask function."""

  def mask_fn(tree: Any) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: bool(param_filter(path_names(path), leaf)), tree)

  return mask_fn


def maybe_masked(inner: optax.GradientTransformationExtraArgs,
                 param_filter: ParamFilter | None
                 ) -> optax.GradientTransformationExtraArgs:
  """``inner`` on every parameter, or ``optax.masked`` by ``param_filter``.

  Under ``optax.masked`` the state holds ``optax.MaskedNode()`` where a
  parameter is not selected, so unselected parameters cost no memory.
  """
  if param_filter is None:
    return inner
  return optax.masked(inner, filter_mask(param_filter))


def is_absent(x: Any) -> bool:
  """A state slot of a parameter the transform does not act on."""
  return x is None or isinstance(x, optax.MaskedNode)


def like_state(template: Any, full: Any) -> Any:
  """``full`` (a params-shaped tree) restricted to ``template``'s slots.

  ``template`` is a state tree that may hold ``MaskedNode`` (``optax.masked``)
  where a parameter is not selected; those slots stay ``MaskedNode``.
  """
  return jax.tree.map(lambda t, f: t if is_absent(t) else f, template, full,
                      is_leaf=is_absent)


def require_params(params: Any, name: str) -> None:
  if params is None:
    raise ValueError(
        f"{name}: update() needs the current parameters, e.g. "
        f"tx.update(grads, opt_state, params); params=None was given. The "
        "penalty gradient depends on them.")


def find_state(opt_state: Any, state_type: type) -> Any:
  """The single ``state_type`` node inside an optimizer state (any nesting).

  Works through ``optax.chain``, ``optax.masked``, ``optax.MultiSteps`` and
  ``optax.inject_hyperparams`` wrappers.
  """
  found = optax.tree.get_all_with_path(opt_state, state_type.__name__)
  if len(found) != 1:
    raise ValueError(
        f"Expected exactly one {state_type.__name__} in the optimizer state, "
        f"found {len(found)}. Chain the transform once, e.g. "
        "optax.chain(ewc(...), optax.adam(1e-3)).")
  return found[0][1]


def replace_state(opt_state: Any, new: Any) -> Any:
  """``opt_state`` with its ``type(new)`` node replaced by ``new``.

  Each new leaf is a fresh buffer (the train step donates its state, and a
  buffer shared with the params or another slot would be donated twice),
  placed like the leaf it replaces (same sharding, dtype), so a jitted step
  with fixed ``in_shardings`` accepts the result.
  """
  old = find_state(opt_state, type(new))

  def place(o, n):
    if is_absent(o):
      return o
    n = jnp.array(n, dtype=o.dtype, copy=True)
    sharding = getattr(o, "sharding", None)
    return jax.device_put(n, sharding) if sharding is not None else n

  new = jax.tree.map(place, old, new, is_leaf=is_absent)
  return optax.tree.set(opt_state, **{type(new).__name__: new})


def tree_copy(tree: Any) -> Any:
  """A fresh copy of every array (a state must not alias donated params)."""
  return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)
