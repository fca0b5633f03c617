"""Embedding methods: how the ML region is coupled to its MM environment.

Each method lives in its own module and is registered here by name with a function
``create(topology, system, atoms, model, force_group, interpolate, total_charge, **options)
-> openmm.System``; ``create.describe(**options) -> dict``, if present, gives the effective
settings recorded in ``embed.json``; ``create.check_positions(topology, system, atoms, positions,
**options)``, if present, refuses positions the embedding cannot handle (e.g. a box too small).
"""
from typing import Callable, Dict

from ..errors import HybridError
from .mechanical import create_mechanical_system


def _create_electrostatic_system(*args, **kwargs):
    # imported on use: it loads the EMLE TorchScript code
    from .electrostatic import create_electrostatic_system
    return create_electrostatic_system(*args, **kwargs)


def _describe_electrostatic(**options):
    from .electrostatic import describe_settings
    return describe_settings(**options)


def _check_electrostatic_positions(*args, **kwargs):
    from .electrostatic import check_embedding_geometry
    return check_embedding_geometry(*args, **kwargs)


_create_electrostatic_system.describe = _describe_electrostatic
_create_electrostatic_system.check_positions = _check_electrostatic_positions

EMBEDDINGS: Dict[str, Callable] = {"mechanical": create_mechanical_system,
                                   "electrostatic": _create_electrostatic_system}


def register_embedding(name: str, create: Callable) -> None:
    """Register an embedding method under ``name``."""
    EMBEDDINGS[name] = create


def get_embedding(name: str) -> Callable:
    try:
        return EMBEDDINGS[name]
    except KeyError:
        raise HybridError(f"unknown embedding {name!r}; available: {', '.join(sorted(EMBEDDINGS))}") from None
