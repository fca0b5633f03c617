"""Seeds of a campaign: from the campaign seed and the names of the ligand, the calculation and
the unit, never from where or when a unit runs.

    ligand seed       derived_seed(campaign seed, "ligand:" + ligand name)
    calculation seed  derived_seed(ligand seed, calculation name)      e.g. "complex", "mm-solvent"
    unit seed         segment_seed(calculation seed, stage, segment)    e.g. ("forward", 3)

The last two are the derivations ``run_binding_correction`` and ``run_hydration`` use for their
phases and legs, and the protocols for their segments, so a campaign ligand reproduces
``fe binding-correction`` / ``fe hydration`` run with its ligand seed.  Adding a ligand to a
series changes no other ligand's seeds.
"""
from ..checkpoint import derived_seed, segment_seed


def ligand_seed(campaign_seed: int, ligand: str) -> int:
    """Master seed of one ligand's calculations."""
    return derived_seed(campaign_seed, f"ligand:{ligand}")


def calculation_seed(ligand_seed_value: int, calculation: str) -> int:
    """Master seed of one calculation (a phase's correction, an MM leg) of a ligand."""
    return derived_seed(ligand_seed_value, calculation)


def unit_seed(calculation_seed_value: int, stage: str, segment: int) -> int:
    """Integrator seed of one segment of a calculation (an equilibrium block, a switch batch, ...)."""
    return segment_seed(calculation_seed_value, stage, segment)
