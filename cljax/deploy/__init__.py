"""Deployment: a model registry on disk and an HTTP scoring service.

* ``cljax.deploy.registry``: versions of trained runs (checkpoint, config,
  result matrix, lineage) and an atomically switched ``production`` pointer;
  ``python -m cljax.deploy.registry --registry=DIR list|show|register|
  promote|rollback``.
* ``cljax.deploy.serve``: scores uploaded audio with the production model
  and hot-reloads on promotion; ``python -m cljax.serve --registry=DIR``.
"""
