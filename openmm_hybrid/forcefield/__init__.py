"""The drop-in OpenMM ForceField route to ML/MM (see :mod:`.embedding_generator` for how it hooks in).

- :class:`HybridForceField`: ``ForceField`` whose ``createSystem`` returns the ML/MM System;
- ``<MLMMEmbedding>``: the force-field XML tag for a plain ``ForceField`` (its parser is registered
  with OpenMM when this package is imported), and :func:`forcefield_path` for the shipped files.
"""
from .embedding_generator import (FORCEFIELD_FILES, TAG, MLMMEmbeddingGenerator, data_directory,
                                  embed_at_end_of_create_system, forcefield_path, register_missed_elements)
from .hybrid_forcefield import HybridForceField

__all__ = ["HybridForceField", "MLMMEmbeddingGenerator", "forcefield_path", "data_directory",
           "register_missed_elements", "embed_at_end_of_create_system", "FORCEFIELD_FILES", "TAG"]
