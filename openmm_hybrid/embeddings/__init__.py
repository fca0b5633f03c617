"""Embedding methods: how the ML region is coupled to its MM environment.

- :mod:`.base`: the :class:`Embedding` contract and the registry (:func:`get_embedding`,
  :func:`register_embedding`, entry point group ``openmm_hybrid.embeddings``);
- :mod:`.mechanical`: mechanical embedding (openmm-ml's, with openmm-hybrid's ML force);
- :mod:`.electrostatic`: EMLE electrostatic embedding, whose coupling force is :mod:`.emle_coupling`;
- :mod:`.region`: checks that keep an ML region meaningful;
- :mod:`.interpolation`: ``lambda_interpolate`` and the region's internal MM terms.
"""
from .base import Embedding, available_embeddings, get_embedding, register_embedding
from .electrostatic import ElectrostaticEmbedding
from .mechanical import MechanicalEmbedding

register_embedding(MechanicalEmbedding)
register_embedding(ElectrostaticEmbedding)

__all__ = ["Embedding", "MechanicalEmbedding", "ElectrostaticEmbedding", "available_embeddings", "get_embedding",
           "register_embedding"]
