"""The ML region: the checks that keep it physically meaningful (selection: :mod:`openmm_hybrid.mm.selection`)."""
from typing import Iterable, Sequence

import numpy as np
import openmm
from openmm import unit

from ..errors import RegionError


def _atom_label(atom) -> str:
    return f"{atom.residue.name}{atom.residue.id}:{atom.name}"


def region_net_charge(system: openmm.System, atoms: Iterable[int]) -> float:
    """Sum of the MM (NonbondedForce) partial charges of ``atoms``, in e."""
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            return float(sum(force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                             for i in atoms))
    return 0.0


def check_region(topology, system, atoms: Sequence[int], model=None, positions=None) -> dict:
    """Refuse an ML region that cannot be embedded; return a summary of it.

    Checks, each with a message that names the problem: covalent bonds that cross
    the region boundary (openmm-hybrid does not place link atoms), particles without
    an element, a non-integral net MM charge, elements or a net charge the model cannot
    represent, and (periodic systems) a region wider than half the box.

    Returns
    -------
    dict
        ``n_atoms``, ``net_charge`` (integer, e), ``elements`` (symbol counts).
    """
    atom_set = set(atoms)
    all_atoms = list(topology.atoms())
    crossing = [(a1, a2) for a1, a2 in topology.bonds() if (a1.index in atom_set) != (a2.index in atom_set)]
    if crossing:
        shown = ", ".join(f"{_atom_label(a)}-{_atom_label(b)}" for a, b in crossing[:5])
        more = f" and {len(crossing) - 5} more" if len(crossing) > 5 else ""
        raise RegionError(f"the ML region cuts {len(crossing)} covalent bond(s): {shown}{more}. "
                          f"Include whole molecules in the region (link atoms are not supported)")
    no_element = [all_atoms[i] for i in atoms if all_atoms[i].element is None]
    if no_element:
        raise RegionError(f"the ML region contains particles without an element (virtual sites?): "
                          f"{', '.join(_atom_label(a) for a in no_element[:5])}")
    charge = region_net_charge(system, atoms)
    if abs(charge - round(charge)) > 0.01:
        raise RegionError(f"charge mismatch: the MM charges of the ML region sum to {charge:.4f} e, which is "
                          f"not an integer; the region must hold whole molecules with integral charge")
    net_charge = int(round(charge))
    atomic_numbers = [all_atoms[i].element.atomic_number for i in atoms]
    if model is not None:
        model.check_region(atomic_numbers, net_charge)
    if positions is not None and system.usesPeriodicBoundaryConditions():
        xyz = np.asarray(positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions) else positions)[list(atoms)]
        box = system.getDefaultPeriodicBoxVectors()
        half = 0.5 * min(box[0][0], box[1][1], box[2][2]).value_in_unit(unit.nanometer)
        extent = float(np.max(np.linalg.norm(xyz - xyz[0], axis=1)))
        if extent >= half:
            raise RegionError(f"the ML region extends {extent:.2f} nm from its first atom, more than half the "
                              f"periodic box ({half:.2f} nm); enlarge the box")
    elements = {}
    for atom_index in atoms:
        symbol = all_atoms[atom_index].element.symbol
        elements[symbol] = elements.get(symbol, 0) + 1
    return {"n_atoms": len(atoms), "net_charge": net_charge, "elements": elements}
