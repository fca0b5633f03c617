"""openmm-ml integration: openmm-hybrid's models and embeddings through openmm-ml's extension points.

Installed packages register them through entry points (setup.py):

- ``openmmml.potentials``: ``hybrid-ani2x``, ``hybrid-torchscript`` -> :class:`HybridPotentialImplFactory`
  (:mod:`.potentials`);
- ``openmmml.embeddings``: ``electrostatic`` -> :class:`HybridEmbeddingFactory` (:mod:`.embeddings`),
  for openmm-ml's own potentials too.

:func:`register_with_openmmml` makes the same registrations (and ``hybrid-<name>`` for every
model registered with openmm-hybrid) where entry points are not installed.
"""
from openmmml.mlpotential import MLPotential

from ...embeddings import available_embeddings
from ...models import available_models
from .embeddings import EmbeddingAdapter, HybridEmbeddingFactory
from .potentials import PREFIX, TORCHSCRIPT_POTENTIAL, HybridPotentialImplFactory

__all__ = ["register_with_openmmml", "HybridPotentialImplFactory", "HybridEmbeddingFactory", "EmbeddingAdapter"]

# openmm-ml has its own mechanical embedding; openmm-hybrid adds the others.
_OPENMMML_OWN_EMBEDDINGS = ("mechanical",)


def register_with_openmmml() -> None:
    """Register openmm-hybrid's potentials and embeddings with openmm-ml (idempotent)."""
    potentials = HybridPotentialImplFactory()
    for name in available_models():
        MLPotential.registerImplFactory(PREFIX + name, potentials)
    MLPotential.registerImplFactory(TORCHSCRIPT_POTENTIAL, potentials)
    embeddings = HybridEmbeddingFactory()
    for name in available_embeddings():
        if name not in _OPENMMML_OWN_EMBEDDINGS:
            MLPotential.registerEmbeddingFactory(name, embeddings)
