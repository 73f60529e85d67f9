r"""Task similarity and grouping (seed 003: group similar tasks, then learn).

Three measures of how alike two tasks are, each as a symmetric *distance*
matrix ``D [T, T]`` (zero diagonal) plus the similarity shown to people:

* **transfer** (:func:`transfer_matrix`): train a model briefly on task
  ``a`` alone (from the same start for every ``a``) and test it on every
  task ``b``: ``S[a, b] = 1 - 2 EER_ab`` (1: perfect, 0: chance), made
  symmetric, ``D = 1 - S`` (clipped at 0).
* **Fréchet** (:func:`frechet_distance`): the distance between Gaussians
  fitted to the two tasks' embeddings under one model, per class, averaged
  over the classes both tasks have:
  :math:`\lVert\mu_a - \mu_b\rVert^2 + \mathrm{Tr}(\Sigma_a + \Sigma_b -
  2(\Sigma_a\Sigma_b)^{1/2})` (the FID formula), divided by the mean
  off-diagonal distance so that thresholds are scale-free.
* **cosine** of the fake-class mean embeddings: ``D = 1 - cos``.

:func:`cluster` groups tasks by average-linkage hierarchical clustering
(``scipy.cluster.hierarchy``) cut at a distance threshold; each group's
tasks are listed in stream order and groups are ordered by their first
task, so a grouped stream keeps the original order as far as it can.

Example::

  distances, similarity = cosine_distances(embeddings, labels)
  groups = cluster(distances, threshold=0.3)       # [[0, 2], [1], [3]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.cluster.hierarchy
import scipy.linalg
import scipy.spatial.distance

GENUINE = 0


def _symmetric_distance(distance: np.ndarray) -> np.ndarray:
  distance = np.asarray(distance, np.float64)
  if distance.ndim != 2 or distance.shape[0] != distance.shape[1]:
    raise ValueError(f"A distance matrix must be square, got shape "
                     f"{distance.shape}.")
  if not np.all(np.isfinite(distance)):
    raise ValueError("The distance matrix holds NaN or Inf.")
  distance = 0.5 * (distance + distance.T)
  np.fill_diagonal(distance, 0.0)
  return np.maximum(distance, 0.0)


def cluster(distance: np.ndarray, threshold: float,
            method: str = "average") -> list[list[int]]:
  """Groups of task indices: hierarchical clustering cut at ``threshold``.

  Args:
    distance: ``[T, T]`` task distances (made symmetric, diagonal 0).
    threshold: tasks join a group while the linkage distance is
      ``<= threshold``.
    method: scipy linkage method (``"average"``, ``"complete"``,
      ``"single"``).

  Returns:
    Groups in stream order: each sorted, ordered by its first task.
  """
  distance = _symmetric_distance(distance)
  num_tasks = distance.shape[0]
  if num_tasks == 1:
    return [[0]]
  links = linkage(distance, method)
  labels = scipy.cluster.hierarchy.fcluster(links, t=threshold,
                                            criterion="distance")
  groups: dict[int, list[int]] = {}
  for task, label in enumerate(labels):
    groups.setdefault(int(label), []).append(task)
  return sorted(groups.values(), key=lambda members: members[0])


def linkage(distance: np.ndarray, method: str = "average") -> np.ndarray:
  """scipy's linkage matrix of a square distance matrix."""
  condensed = scipy.spatial.distance.squareform(
      _symmetric_distance(distance), checks=False)
  return scipy.cluster.hierarchy.linkage(condensed, method=method)


# --------------------------------------------------------------- measures


def transfer_distances(eer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(D, S)`` from a transfer matrix of EERs (fractions, row = trained on).

  ``S = 1 - 2 EER`` averaged with its transpose; ``D = 1 - S`` >= 0.
  """
  eer = np.asarray(eer, np.float64)
  similarity = 1.0 - 2.0 * eer
  similarity = 0.5 * (similarity + similarity.T)
  return _symmetric_distance(1.0 - similarity), similarity


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Fréchet distance between Gaussians fitted to ``a [N, D]``, ``b [M, D]``.

  A small ridge (1e-6 times the mean variance) keeps the covariances
  positive definite when there are fewer samples than dimensions.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"frechet_distance needs [N, D] and [M, D] embeddings, "
                     f"got {a.shape} and {b.shape}.")
  if len(a) < 2 or len(b) < 2:
    raise ValueError("frechet_distance needs at least 2 embeddings per set.")
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a = np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])
  cov_b = np.cov(b, rowvar=False).reshape(b.shape[1], b.shape[1])
  ridge = 1e-6 * max(np.trace(cov_a) + np.trace(cov_b), 1e-12) / a.shape[1]
  cov_a += ridge * np.eye(a.shape[1])
  cov_b += ridge * np.eye(a.shape[1])
  root = scipy.linalg.sqrtm(cov_a @ cov_b)
  root = np.real(root)  # round-off leaves a tiny imaginary part
  value = (np.sum((mu_a - mu_b) ** 2)
           + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
  return float(max(value, 0.0))


def frechet_distances(embeddings: Sequence[np.ndarray],
                      labels: Sequence[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray]:
  """``(D, S)``: per-class Fréchet distances between tasks, normalised.

  ``D[a, b]`` is the mean over the classes both tasks have (at least two
  examples each) of the Fréchet distance, divided by the mean off-diagonal
  value; ``S = exp(-D)``.
  """
  num_tasks = len(embeddings)
  raw = np.zeros((num_tasks, num_tasks))
  for a in range(num_tasks):
    for b in range(a + 1, num_tasks):
      values = []
      for label in np.intersect1d(labels[a], labels[b]):
        x = embeddings[a][labels[a] == label]
        y = embeddings[b][labels[b] == label]
        if len(x) >= 2 and len(y) >= 2:
          values.append(frechet_distance(x, y))
      if not values:
        raise ValueError(f"Tasks {a} and {b} share no class with two or "
                         "more examples: no Fréchet distance.")
      raw[a, b] = raw[b, a] = float(np.mean(values))
  off_diagonal = raw[~np.eye(num_tasks, dtype=bool)]
  scale = off_diagonal.mean() if off_diagonal.size and off_diagonal.mean() > 0 \
      else 1.0
  distance = _symmetric_distance(raw / scale)
  return distance, np.exp(-distance)


def cosine_distances(embeddings: Sequence[np.ndarray],
                     labels: Sequence[np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
  """``(D, S)``: cosine of the tasks' fake-class mean embeddings.

  The genuine class is shared by every task of a deepfake stream, so only
  the fake classes (labels != 0) tell tasks apart.
  """
  means = []
  for task, (x, y) in enumerate(zip(embeddings, labels)):
    fake = np.asarray(x, np.float64)[np.asarray(y) != GENUINE]
    if len(fake) == 0:
      raise ValueError(f"Task {task} has no fake examples: no fake-class "
                       "mean embedding.")
    mean = fake.mean(0)
    means.append(mean / max(np.linalg.norm(mean), 1e-12))
  means = np.stack(means)
  similarity = np.clip(means @ means.T, -1.0, 1.0)
  return _symmetric_distance(1.0 - similarity), similarity


MEASURES = ("transfer", "frechet", "cosine")


def task_embeddings(exp, variables, sources: Sequence, split: str
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Embeddings and labels of each source under a model, for the measures.

  Args:
    exp: a ``cljax.train.Experiment`` (its model, front end, eval sizes).
    variables: the model's variables.
    sources: random-access sources of ``{"audio", "label", ...}`` records,
      one per task; each record's first ``eval_seconds`` is embedded, as
      evaluation reads it.
    split: the sources' split name, for error messages.

  Returns:
    ``(embeddings [N_t, D] per source, labels [N_t] per source)``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from cljax.data import loader  # pylint: disable=g-import-not-at-top
  model, frontend = exp.model, exp.frontend
  embed = jax.jit(lambda v, audio: model.apply(v, frontend(audio),
                                               train=False)[1])
  embeddings, labels = [], []
  for source in sources:
    parts, part_labels = [], []
    for batch in loader.eval_batches(
        source, batch_size=exp.config.data.eval_batch_size,
        window_length=exp.eval_length, pad_mode=exp.config.data.pad_mode,
        split=split):
      mask = batch["mask"]
      parts.append(np.asarray(embed(variables, batch["audio"]))[mask])
      part_labels.append(np.asarray(batch["label"])[mask])
    embeddings.append(np.concatenate(parts))
    labels.append(np.concatenate(part_labels))
  return embeddings, labels
