"""Deployment: a model registry on disk and an HTTP scoring service.

* ``cljax.deploy.registry``: versions of trained runs (checkpoint, config,
  result matrix, lineage) and an atomically switched ``production`` pointer;
  ``python -m cljax.deploy.registry --registry=DIR list|show|register|
  promote|rollback``.
* ``cljax.deploy.serve``: scores uploaded audio or images (a registry holds
  one modality) with the production model and hot-reloads on promotion;
  ``python -m cljax.serve --registry=DIR``.
* ``cljax.deploy.pipeline``: the continuous-deployment loop (intake of a
  new audio or image dataset, a continual step from production, gate,
  promote or reject);
  ``python -m cljax.pipeline init|intake|run|watch|status``.
"""
