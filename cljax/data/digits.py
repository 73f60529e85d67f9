"""A 10-class domain-incremental stream from scikit-learn's bundled digits.

``digits_stream`` shows that nothing in cljax is tied to audio or to two
classes: RWM and the other strategies run unchanged on a stream of 8x8
handwritten-digit images (``sklearn.datasets.load_digits``: 1797 images,
pixel values 0-16, shipped inside scikit-learn, so nothing is downloaded).

Every task holds the *same* digits seen through a different fixed transform
(a domain-incremental stream: the label space 0-9 never changes, the input
distribution does):

* ``transform="permute"`` (default): task 0 is the original image; task k > 0
  a fixed random permutation of the 64 pixels (seeded by ``seed`` and k), as
  in permuted MNIST;
* ``transform="rotate"``: task k rotates the images by ``k * 360 / num_tasks``
  degrees (bilinear, ``scipy.ndimage.rotate``).

The images are split once (stratified by digit, fixed by ``seed``) into
train / val / test; every task uses that split, so a test image of task 0 is
never trained on in any task.

Records follow the stream format, with the image in place of the waveform::

  {"audio": float32 (64,) pixels / 16 in [0, 1], "label": digit 0-9,
   "utt_id": "<task>-<split>-<index>"}

Why ``sample_rate=64``: the loader crops ``crop_seconds * sample_rate``
samples from each record. With 64 "samples per second" a config with
``crop_seconds = eval_seconds = 1.0`` takes exactly the whole 64-d vector
(offset 0, no padding), and the ``identity`` front end hands it to the model
as ``[B, 64]``. Class 0 is the digit zero, not "bona fide": use accuracy
(``config.eval.metrics = ("accuracy",)``), not EER.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cljax.data.stream import Stream, Task

TRANSFORMS = ("permute", "rotate")
SPLITS = ("train", "val", "test")
SAMPLE_RATE = 64  # One 8x8 image = 64 "samples"; see the module docstring.


class ArraySource:
  """An in-memory random-access source of ``(features, labels)`` rows."""

  def __init__(self, features: np.ndarray, labels: np.ndarray, prefix: str):
    self.features = features
    self.labels = labels
    self.prefix = prefix

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    return {"audio": self.features[index], "label": int(self.labels[index]),
            "utt_id": f"{self.prefix}-{index:04d}"}

  def __repr__(self) -> str:
    return f"ArraySource({self.prefix}, len={len(self)})"


def _split_indices(labels: np.ndarray, fractions: tuple[float, float, float],
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A stratified split: each digit divided in the same proportions."""
  parts = {name: [] for name in SPLITS}
  for digit in range(10):
    members = rng.permutation(np.flatnonzero(labels == digit))
    n_train = int(round(fractions[0] * len(members)))
    n_val = int(round(fractions[1] * len(members)))
    parts["train"].append(members[:n_train])
    parts["val"].append(members[n_train:n_train + n_val])
    parts["test"].append(members[n_train + n_val:])
  # Sorted, so record order does not depend on the digit loop.
  return {name: np.sort(np.concatenate(idx)) for name, idx in parts.items()}


def _transform(images: np.ndarray, task: int, num_tasks: int, transform: str,
               seed: int) -> np.ndarray:
  """Task ``task``'s fixed view of ``images`` [N, 8, 8] -> [N, 64]."""
  flat = images.reshape(len(images), 64)
  if task == 0:
    return flat
  if transform == "permute":
    permutation = np.random.default_rng((seed, task)).permutation(64)
    return flat[:, permutation]
  import scipy.ndimage  # Only the rotate transform needs it.
  angle = task * 360.0 / num_tasks
  rotated = scipy.ndimage.rotate(images, angle, axes=(1, 2), reshape=False,
                                 order=1, mode="constant", cval=0.0)
  return np.clip(rotated, 0.0, 1.0).reshape(len(images), 64)


def digits_stream(num_tasks: int = 5, transform: str = "permute",
                  train_fraction: float = 0.6, val_fraction: float = 0.1,
                  seed: int = 0) -> Stream:
  """The digits stream (see the module docstring).

  Args:
    num_tasks: number of tasks (views of the digits), >= 1.
    transform: ``"permute"`` (pixel permutations) or ``"rotate"``.
    train_fraction, val_fraction: of each digit's images; the rest is test
      (defaults: about 1078 / 180 / 539 images).
    seed: fixes the split and the permutations.

  Returns:
    A ``Stream`` named ``digits_<transform>`` with classes ``"0"``..``"9"``.
  """
  if transform not in TRANSFORMS:
    raise ValueError(f"config.data.stream.transform={transform!r}: choose "
                     f"one of {list(TRANSFORMS)}.")
  if not (isinstance(num_tasks, int) and num_tasks >= 1):
    raise ValueError(f"config.data.stream.num_tasks={num_tasks!r}: expected "
                     "an integer >= 1.")
  if not (0 < train_fraction and 0 <= val_fraction
          and train_fraction + val_fraction < 1):
    raise ValueError(
        f"config.data.stream.train_fraction={train_fraction}, val_fraction="
        f"{val_fraction}: need train > 0, val >= 0 and train + val < 1 (the "
        "rest is the test split).")
  from sklearn.datasets import load_digits  # Bundled data: no download.
  digits = load_digits()
  images = (digits.images / 16.0).astype(np.float32)
  labels = digits.target.astype(np.int64)
  splits = _split_indices(labels, (train_fraction, val_fraction,
                                   1 - train_fraction - val_fraction),
                          np.random.default_rng(seed))
  tasks = []
  for task in range(num_tasks):
    view = _transform(images, task, num_tasks, transform, seed)
    view = np.ascontiguousarray(view, dtype=np.float32)
    view.setflags(write=False)
    sources = {name: ArraySource(view[idx], labels[idx], f"{task}-{name}")
               for name, idx in splits.items()}
    name = ("original" if task == 0 else
            f"{transform}{task}" if transform == "permute" else
            f"rotate{int(round(task * 360 / num_tasks))}")
    tasks.append(Task(name=name, splits=sources,
                      metadata={"transform": transform if task else "none",
                                "index": task}))
  return Stream(name=f"digits_{transform}", tasks=tuple(tasks),
                class_names=tuple(str(d) for d in range(10)),
                sample_rate=SAMPLE_RATE)
