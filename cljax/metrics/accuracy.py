"""Accuracy and balanced accuracy of predicted class ids against labels."""

from __future__ import annotations

import numpy as np

from cljax.metrics.eer import as_label_vector


def _predictions_and_labels(predictions, labels
                            ) -> tuple[np.ndarray, np.ndarray]:
  """Validates both as equal-length, non-empty 1-D integer arrays."""
  predictions = np.asarray(predictions)
  if predictions.ndim != 1:
    raise ValueError(
        f"predictions must be a 1-D array of class ids, got shape "
        f"{predictions.shape}. Take argmax over the class axis first.")
  if predictions.size == 0:
    raise ValueError("predictions and labels are empty: accuracy needs at "
                     "least one trial. Check that the evaluation split is "
                     "not empty.")
  predictions = as_label_vector(predictions, predictions.size, "predictions")
  labels = as_label_vector(labels, predictions.size)
  return predictions, labels


def accuracy(predictions, labels) -> float:
  """Fraction of trials whose predicted class equals the label.

    acc = (1 / n) * sum_i [predictions_i == labels_i]

  In [0, 1]; higher is better. With imbalanced splits (ASVspoof has ~9x
  more spoof than bona fide) prefer ``balanced_accuracy`` or EER.

  Args:
    predictions: 1-D predicted class ids (argmax of the logits).
    labels: 1-D true class ids, same length.
  """
  predictions, labels = _predictions_and_labels(predictions, labels)
  return float(np.mean(predictions == labels))


def balanced_accuracy(predictions, labels) -> float:
  """Mean per-class recall over the classes present in ``labels``.

    bacc = (1 / |C|) * sum_{c in C} #{i: labels_i = c, predictions_i = c}
                                    / #{i: labels_i = c}

  C = the distinct values of ``labels``; a class that is only predicted but
  never true has no recall and is left out (as in scikit-learn's
  ``balanced_accuracy_score``). In [0, 1]; higher is better; chance level is
  1 / |C| whatever the class balance.

  Args:
    predictions: 1-D predicted class ids (argmax of the logits).
    labels: 1-D true class ids, same length.
  """
  predictions, labels = _predictions_and_labels(predictions, labels)
  classes = np.unique(labels)
  recalls = [np.mean(predictions[labels == c] == c) for c in classes]
  return float(np.mean(recalls))
