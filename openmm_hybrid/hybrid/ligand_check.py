"""Refuse a ligand the chosen ML model or embedding cannot take, before it is parametrised.

``openmm-hybrid build --model NAME [--embedding ...]`` (and :func:`build_system`'s
``check_ligand``) run :func:`ligand_checker`'s check right after reading the ligand, so an
element or a charge the model does not support is named before minutes of AM1-BCC.  The model's
capabilities come from the model registry (:func:`openmm_hybrid.models.describe_model`, which for
ANI-2x reads no weights), the embedding's from its :meth:`~openmm_hybrid.embeddings.base.Embedding.check_molecule`
(EMLE: the elements of its parameter file).
"""
from typing import Callable, Optional

from ..embeddings.base import get_embedding
from ..models import describe_model

__all__ = ["ligand_checker"]


def ligand_checker(model, embedding: str = "mechanical", model_options: Optional[dict] = None,
                   **embedding_options) -> Callable:
    """A check ``check(ligand)`` that raises when ``model`` with ``embedding`` cannot take the ligand.

    Parameters
    ----------
    model : str, path or MLModel
        As for :func:`openmm_hybrid.create_hybrid_system`.
    embedding : str
        A registered embedding (``"mechanical"``, ``"electrostatic"``).
    model_options : dict, optional
        Options of the model (``model_index``).
    embedding_options :
        The embedding's options (``emle_model=PATH`` for electrostatic embedding); checked here.

    Returns
    -------
    callable
        ``check(ligand)`` raising :class:`~openmm_hybrid.errors.ModelError` (element, charge) or
        :class:`~openmm_hybrid.errors.HybridError` (embedding settings) with a message naming
        the ligand, the model and what it cannot take.

    Raises
    ------
    ModelError, HybridError
        At once, for an unknown model or embedding, or invalid embedding options.
    """
    capabilities = describe_model(model, **(model_options or {}))
    method = get_embedding(embedding)
    method.settings(**embedding_options)
    label = getattr(model, "name", None) or str(model)

    def check(ligand) -> None:
        numbers = [atom.GetAtomicNum() for atom in ligand.mol.GetAtoms()]
        what = f"ligand {ligand.name!r}"
        capabilities.check(label, numbers, ligand.net_charge, what=what)
        method.check_molecule(numbers, ligand.net_charge, what=what, **embedding_options)

    return check
