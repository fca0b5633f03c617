"""Small-molecule force-field parameters: one record type, several sources, one cache.

- :mod:`.record`: :class:`LigandParameters` and its OpenMM ForceField XML;
- :mod:`.extraction`: parameters read back from an OpenMM System of the molecule;
- :mod:`.ambertools`: the AmberTools program runner;
- :mod:`.gaff2`: GAFF2 + AM1-BCC (default), :mod:`.openff`: OpenFF (optional);
- :mod:`.cache`: the disk cache, keyed by molecule, force field and charge method.
"""
from ...errors import ParameterizationError
from ..ligand import Ligand
from .ambertools import ambertools_available, find_ambertools_program
from .cache import CACHE_FORMAT_VERSION
from .gaff2 import CHARGE_METHOD_COSTS, GAFF2_CHARGE_METHODS, parametrize_gaff2
from .openff import parametrize_openff
from .record import COULOMB14SCALE, LJ14SCALE, LigandParameters

__all__ = ["LigandParameters", "parametrize", "parametrize_gaff2", "parametrize_openff", "ambertools_available",
           "find_ambertools_program", "COULOMB14SCALE", "LJ14SCALE", "CACHE_FORMAT_VERSION", "GAFF2_CHARGE_METHODS",
           "CHARGE_METHOD_COSTS"]


def parametrize(ligand: Ligand, forcefield: str = "gaff2", cache: bool = True,
                charge_method: str = "bcc") -> LigandParameters:
    """Dispatch to :func:`parametrize_gaff2` (``"gaff2"``, with ``charge_method``) or
    :func:`parametrize_openff` (``"openff-*"``, which assigns its own AM1-BCC charges)."""
    ff = forcefield.lower()
    if ff == "gaff2":
        return parametrize_gaff2(ligand, charge_method=charge_method, cache=cache)
    if ff.startswith("openff"):
        if charge_method != "bcc":
            raise ParameterizationError(f"charge method {charge_method!r} applies to GAFF2 ligands; {forcefield} "
                                        "assigns its own AM1-BCC charges (use --ligand-ff gaff2 for other methods)")
        return parametrize_openff(ligand, forcefield=forcefield, cache=cache)
    raise ParameterizationError(f"unknown ligand force field {forcefield!r}: use gaff2 or openff-2.2.0")

