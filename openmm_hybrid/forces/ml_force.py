"""The ML force: the model evaluated on the ML region, picked out of the System's positions."""
from typing import Optional, Sequence

import torch

from ..models.base import MLModel
from .module_force import ML_FORCE_NAME, create_module_force


class MLRegionEnergy(torch.nn.Module):
    """Picks the ML region out of the System's positions and evaluates the model.

    Input positions are OpenMM's, in nm, for all particles; in periodic systems the
    region is made whole by minimum-image displacements from its first atom (the
    region must be smaller than half the box, which the embedding checks), so the
    energy does not depend on where the region sits relative to the box edges.
    Energy is returned in kJ/mol.  With a scaling global parameter (``lambda_interpolate``)
    OpenMM passes its value as the last argument and the energy is multiplied by it; for a
    non-periodic System it then arrives in the ``boxvectors`` slot, which is why both are
    handled by position.
    """

    periodic: bool
    scaled: bool

    def __init__(self, model: torch.nn.Module, atoms: Sequence[int], atomic_numbers: Sequence[int],
                 total_charge: float, dtype: torch.dtype, periodic: bool, scaled: bool = False):
        super().__init__()
        self.model = model
        self.register_buffer("atoms", torch.tensor(list(atoms), dtype=torch.int64))
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.int64))
        self.register_buffer("total_charge", torch.tensor(float(total_charge), dtype=dtype))
        self.periodic = periodic
        self.scaled = scaled

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.scaled and not self.periodic and scale is None:
            scale = boxvectors  # non-periodic: the parameter is the second argument
            boxvectors = None
        dtype = self.total_charge.dtype
        pos = positions.index_select(0, self.atoms).to(dtype)
        if boxvectors is not None and self.periodic:
            box = boxvectors.to(dtype)
            d = pos - pos[0]
            d = d - torch.outer(torch.round(d[:, 2] / box[2, 2]), box[2])
            d = d - torch.outer(torch.round(d[:, 1] / box[1, 1]), box[1])
            d = d - torch.outer(torch.round(d[:, 0] / box[0, 0]), box[0])
            pos = pos[0] + d
        energy = self.model(self.atomic_numbers, pos, self.total_charge).to(torch.float64).reshape(())
        if scale is not None:
            energy = energy * scale.to(torch.float64).reshape(())
        return energy


def create_region_module(model: MLModel, atoms: Sequence[int], atomic_numbers: Sequence[int],
                         total_charge: float = 0.0, periodic: bool = False,
                         scaled: bool = False) -> torch.jit.ScriptModule:
    """TorchScript module computing the region's ML energy from all System positions.

    A model exposing ``specialize(atomic_numbers)`` (ANI-2x) is first reduced to what the
    region's elements need.
    """
    module = model.module
    if hasattr(module, "specialize") and not isinstance(module, torch.jit.ScriptModule):
        module = module.specialize(atomic_numbers)
    return torch.jit.script(MLRegionEnergy(module, atoms, atomic_numbers, total_charge, model.dtype, periodic,
                                           scaled))


def create_ml_force(model: MLModel, atoms: Sequence[int], atomic_numbers: Sequence[int],
                    total_charge: float = 0.0, periodic: bool = False, force_group: int = 0,
                    scale_parameter: Optional[str] = None):
    """Create the OpenMM Force for the ML energy of ``atoms``.

    Parameters
    ----------
    model : MLModel
        The loaded model.
    atoms : sequence of int
        System indices of the ML region, in the order the model receives them.
    atomic_numbers : sequence of int
        Elements of those atoms.
    total_charge : float
        Net charge of the region, in e.
    periodic : bool
        Whether the System is periodic (the force then receives box vectors).
    force_group : int
        Force group of the new force.
    scale_parameter : str, optional
        Name of a global parameter (default value 1) that multiplies the ML energy, e.g.
        ``"lambda_interpolate"``; its energy derivative is also requested, so
        ``dE/dlambda`` is available from the State.

    Returns
    -------
    openmm.Force
        See :func:`create_module_force`.
    """
    module = create_region_module(model, atoms, atomic_numbers, total_charge, periodic,
                                  scaled=scale_parameter is not None)
    return create_module_force(module, periodic=periodic, force_group=force_group, name=ML_FORCE_NAME,
                               scale_parameter=scale_parameter)


