"""Models: Flax Linen detectors returning ``(logits, embedding)``.

Every model's ``__call__(x, train=False)`` returns ``logits [B, num_classes]``
and ``embedding [B, D]``, and its last layer is ``nn.Dense`` named
``classifier`` with ``embedding`` as its input, so continual-learning methods
that act on the classifier find its kernel at ``('classifier', 'kernel')``.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn

from cljax import registry
from cljax.models.aasist import AASIST, AASISTL
from cljax.models.cnn1d import CNN1D
from cljax.models.efficientnet import EfficientNet
from cljax.models.hm_conformer import HMConformer
from cljax.models.lcnn import LCNN
from cljax.models.mlp import MLP
from cljax.models.resnet import ResNet, ResNet18, ResNet34, ResNet50
from cljax.models.xception import Xception

__all__ = ["AASIST", "AASISTL", "CNN1D", "HMConformer", "LCNN", "MLP",
           "EfficientNet", "ResNet", "ResNet18", "ResNet34", "ResNet50",
           "Xception",
           "MODELS", "CLASSIFIER_KERNEL", "make_model"]

MODELS: Mapping[str, type[nn.Module]] = {
    "aasist": AASIST,
    "aasist_l": AASISTL,
    "cnn1d": CNN1D,
    "efficientnet_b0": EfficientNet,
    "hm_conformer": HMConformer,
    "lcnn": LCNN,
    "mlp": MLP,
    "resnet": ResNet,
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "xception": Xception,
}

# Path of the classifier kernel inside ``params`` for every model here.
CLASSIFIER_KERNEL = ("classifier", "kernel")


def make_model(block: Mapping[str, Any], num_classes: int) -> nn.Module:
  """Builds the model named by ``block`` (``config.model``).

  Args:
    block: ``{"name": "cnn1d" | "mlp", <that model's fields>}``.
    num_classes: from the stream; the config may not set it.

  Returns:
    An unbound Flax Linen module.
  """
  block = dict(block)
  # Config files hold lists; Flax modules hash their fields, so use tuples.
  block = {key: tuple(value) if isinstance(value, list) else value
           for key, value in block.items()}
  return registry.build(MODELS, block, "model", num_classes=num_classes)
