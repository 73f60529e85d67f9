"""cljax: continual learning of deepfake detectors in JAX/Flax.

The pieces another project is most likely to import:

* ``cljax.strategies`` — continual-learning strategies as optax gradient
  transformations plus task-boundary functions (``finetune``, ``joint``, ...).
* ``cljax.metrics`` — EER as the ASVspoof evaluation code computes it, AUC,
  and result-matrix summaries (BWT, FWT, forgetting, CLEAR transfer).
"""

__version__ = "0.1.0"
