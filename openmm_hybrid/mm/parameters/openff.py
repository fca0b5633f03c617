"""Parameters from an Open Force Field (SMIRNOFF) force field, when openff-toolkit is installed.

openff-toolkit is conda-only, so it is an optional dependency: it is imported when this route is
used, and its absence is reported with what to install.
"""
from __future__ import annotations

from ..._util import progress
from ...errors import ParameterizationError
from ..ligand import Ligand
from .cache import load_cached, store_cache
from .extraction import parameters_from_system
from .record import LigandParameters


def parametrize_openff(ligand: Ligand, forcefield: str = "openff-2.2.0", cache: bool = True) -> LigandParameters:
    """Parameters from an Open Force Field (SMIRNOFF) force field, if openff-toolkit is installed.

    The OpenFF toolkit builds an OpenMM System for the ligand alone (AM1-BCC
    charges through its default toolkit wrappers); its terms are converted as
    for GAFF2 (impropers keep the SMIRNOFF trefoil convention).  This path is
    not exercised by the package's tests, which run without openff-toolkit.

    Parameters
    ----------
    ligand : Ligand
    forcefield : str, optional
        OpenFF force-field name, with or without ``.offxml`` (default "openff-2.2.0").
    cache : bool, optional
        Use the disk cache (default True).

    Raises
    ------
    ParameterizationError
        openff-toolkit is not installed, or parametrisation failed.
    """
    name = forcefield[:-7] if forcefield.endswith(".offxml") else forcefield
    try:
        from openff.toolkit import ForceField as OFFForceField, Molecule as OFFMolecule
    except ImportError as exc:
        raise ParameterizationError(
            f"--ligand-ff {name} needs openff-toolkit, which is not installed (it is conda-only: "
            "conda install -c conda-forge openff-toolkit); use --ligand-ff gaff2 (AmberTools) instead") from exc
    if cache:
        hit = load_cached(ligand, name, "am1bcc")
        if hit is not None:
            progress(f"using cached parameters for ligand {ligand.name!r} ({name})")
            return hit
    label = f"'{ligand.name}'"
    progress(f"parametrising ligand {label} with {name} (AM1-BCC charges via openff-toolkit); "
             "this can take a while")
    try:
        off_mol = OFFMolecule.from_rdkit(ligand.mol, allow_undefined_stereo=True, hydrogens_are_explicit=True)
        # The "unconstrained" variant keeps X-H bonds flexible (constraints are
        # chosen later, when the full system is built).
        off_file = (name.replace("openff-", "openff_unconstrained-", 1) if name.startswith("openff-") else name)
        system = OFFForceField(f"{off_file}.offxml").create_openmm_system(off_mol.to_topology())
    except Exception as exc:
        raise ParameterizationError(f"openff-toolkit could not parametrise ligand {label} with {name}: {exc}") from exc
    for i in reversed(range(system.getNumForces())):
        if type(system.getForce(i)).__name__ == "CMMotionRemover":
            system.removeForce(i)
    params = parameters_from_system(system, ligand.mol, ligand.net_charge, label,
                                     [f"{name}-{i}" for i in range(ligand.n_atoms)],
                                     name, "am1bcc", ligand.identity_key)
    if cache:
        store_cache(ligand, params)
    return params


