"""Builds components named in a config, with errors that name the field.

Every pluggable component (stream, front end, model, strategy, optimizer) is
a config block ``{name: ..., <kwargs>}``. ``build`` looks ``name`` up in a
registry and calls the factory with the remaining fields, after checking each
field against the factory's signature, so a typo fails before anything
compiles and the message lists what is valid.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping


class ConfigError(ValueError):
  """A config field is unknown or has a bad value; the message names it."""


def accepted_fields(factory: Callable[..., Any]) -> list[str] | None:
  """Keyword names ``factory`` accepts, or None when it takes ``**kwargs``."""
  if dataclasses.is_dataclass(factory):
    # Flax modules are dataclasses; parent/name are Flax's own plumbing.
    return [f.name for f in dataclasses.fields(factory)
            if f.init and f.name not in ("parent", "name")]
  parameters = inspect.signature(factory).parameters.values()
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
    return None
  return [p.name for p in parameters
          if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                        inspect.Parameter.KEYWORD_ONLY)]


def check_fields(factory: Callable[..., Any], fields: Mapping[str, Any],
                 field_path: str, fixed: Mapping[str, Any] = ()) -> None:
  """Raises ConfigError if ``fields`` holds a key ``factory`` does not take."""
  valid = accepted_fields(factory)
  if valid is None:
    return
  settable = sorted(set(valid) - set(dict(fixed)))
  for key in fields:
    if key not in settable:
      raise ConfigError(
          f"config.{field_path}.{key}: unknown field for "
          f"{getattr(factory, '__name__', factory)!s}. Valid fields: "
          f"{', '.join(settable) or '(none)'}.")


def build(registry: Mapping[str, Callable[..., Any]], block: Mapping[str, Any],
          field_path: str, **fixed: Any) -> Any:
  """Builds ``registry[block['name']](**rest_of_block, **fixed)``.

  Args:
    registry: name -> factory (a function or a dataclass such as a Flax
      module).
    block: the config block, e.g. ``config.model``; ``name`` selects the
      factory and every other key is passed to it.
    field_path: the block's dotted path in the config, for error messages.
    **fixed: arguments the caller supplies (e.g. ``num_classes`` from the
      stream); the config may not set them.

  Returns:
    Whatever the factory returns.
  """
  fields = dict(block)
  if "name" not in fields:
    raise ConfigError(f"config.{field_path}.name is missing. Choose one of: "
                      f"{', '.join(sorted(registry))}.")
  name = fields.pop("name")
  if name not in registry:
    raise ConfigError(f"config.{field_path}.name={name!r} is unknown. Choose "
                      f"one of: {', '.join(sorted(registry))}.")
  factory = registry[name]
  check_fields(factory, fields, f"{field_path}", fixed)
  try:
    return factory(**fields, **fixed)
  except (TypeError, ValueError) as error:
    if isinstance(error, ConfigError):
      raise
    raise ConfigError(f"config.{field_path} ({name}): {error}") from error
