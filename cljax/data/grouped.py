"""Grouped streams: tasks of a stream merged into groups, in stream order.

Seed 003 (continuous fake-media detection) finds that grouping similar
tasks makes long sequences work: a group is learnt as one task. ``python -m
cljax.group`` measures task similarity and writes the stream block to use;
any config then trains on it with ``--config.data.groups=<groups.json>``,
or a config file names the groups itself::

  config.data.stream = {"name": "grouped", "base": <the original block>,
                        "groups": (("world", "lpc"), ("codec2_700c",), ...)}

Each group becomes one task named ``"a+b"``: its splits are the members'
splits concatenated (:class:`ConcatSource`), its metadata the members'.
Groups are given by task names or indices; every task of the base stream
must appear in exactly one group. Groups are trained in the order given.
"""

from __future__ import annotations

import bisect
from typing import Any, Mapping, Sequence

from cljax.data.stream import RandomAccessSource, Stream, Task
from cljax.registry import ConfigError


class ConcatSource:
  """Random access over several sources, one after another."""

  def __init__(self, sources: Sequence[RandomAccessSource]):
    self.sources = list(sources)
    self._ends = []
    total = 0
    for source in self.sources:
      total += len(source)
      self._ends.append(total)

  def __len__(self) -> int:
    return self._ends[-1] if self._ends else 0

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    if not 0 <= index < len(self):
      raise IndexError(f"ConcatSource index {index} out of range "
                       f"[0, {len(self)}).")
    which = bisect.bisect_right(self._ends, index)
    start = self._ends[which - 1] if which else 0
    return self.sources[which][index - start]


def _resolve(stream: Stream, groups: Sequence[Sequence[Any]]
             ) -> list[list[int]]:
  names = stream.task_names
  resolved, seen = [], {}
  for g, group in enumerate(groups):
    if isinstance(group, (str, int)):
      group = (group,)
    if not group:
      raise ValueError(f"config.data.stream.groups[{g}] is empty; every "
                       "group needs at least one task.")
    members = []
    for item in group:
      if isinstance(item, int) and not isinstance(item, bool):
        if not 0 <= item < len(names):
          raise ValueError(
              f"config.data.stream.groups[{g}] names task index {item}; the "
              f"base stream has tasks 0..{len(names) - 1}: {names}.")
        index = item
      elif item in names:
        index = names.index(item)
      else:
        raise ValueError(
            f"config.data.stream.groups[{g}] names task {item!r}, which the "
            f"base stream {stream.name!r} does not have; its tasks: {names}.")
      if index in seen:
        raise ValueError(
            f"Task {names[index]!r} is in config.data.stream.groups[{seen[index]}]"
            f" and groups[{g}]; put each task in exactly one group.")
      seen[index] = g
      members.append(index)
    resolved.append(members)
  missing = [names[i] for i in range(len(names)) if i not in seen]
  if missing:
    raise ValueError(f"config.data.stream.groups leaves out tasks {missing}; "
                     "put every task of the base stream in a group.")
  return resolved


def group_tasks(stream: Stream, groups: Sequence[Sequence[Any]]) -> Stream:
  """``stream`` with the tasks of each group merged into one task."""
  tasks = []
  for members in _resolve(stream, groups):
    parts = [stream.tasks[i] for i in members]
    if len(parts) == 1:
      tasks.append(parts[0])
      continue
    split_names = set(parts[0].splits)
    for part in parts[1:]:
      split_names &= set(part.splits)
    splits = {name: ConcatSource([p.splits[name] for p in parts])
              for name in sorted(split_names)}
    tasks.append(Task(
        name="+".join(p.name for p in parts), splits=splits,
        metadata={"members": [p.name for p in parts],
                  "member_metadata": [dict(p.metadata) for p in parts]}))
  return Stream(name=f"grouped({stream.name})", tasks=tuple(tasks),
                class_names=stream.class_names,
                sample_rate=stream.sample_rate, synthetic=stream.synthetic)


def load_groups(path: str, stream: Stream) -> list[list[str]]:
  """The groups of a ``groups.json`` (``cljax.group``) for ``stream``.

  Raises ConfigError naming the file when it does not fit the stream.
  """
  import json  # pylint: disable=g-import-not-at-top
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as error:
    raise ConfigError(f"config.data.groups={path!r}: cannot read it as the "
                     f"groups.json cljax.group writes ({error}).") from None
  if not isinstance(saved, dict) or "groups" not in saved:
    raise ConfigError(f"config.data.groups={path!r} has no 'groups' list; "
                     "give the groups.json that cljax.group wrote.")
  if saved.get("tasks") and list(saved["tasks"]) != stream.task_names:
    raise ConfigError(
        f"config.data.groups={path!r} was measured on tasks "
        f"{saved['tasks']}, but this config's stream has "
        f"{stream.task_names}; run cljax.group on this config's stream.")
  return saved["groups"]


def grouped_stream(base: Mapping[str, Any] | None = None,
                   groups: Sequence[Sequence[Any]] = ()) -> Stream:
  """The ``grouped`` stream: ``base`` (a stream block) with ``groups``."""
  from cljax.data.streams import make_stream  # pylint: disable=g-import-not-at-top
  if not base:
    raise ValueError("config.data.stream.base is missing: give the block of "
                     "the stream to group, e.g. {'name': 'speech_benchmark'}.")
  if not groups:
    raise ValueError("config.data.stream.groups is empty: give the groups "
                     "(task names), e.g. as python -m cljax.group writes "
                     "them.")
  return group_tasks(make_stream(dict(base)), groups)
