"""The input/output contract every ML model in openmm-hybrid follows.

An ML model is a TorchScript-compatible ``torch.nn.Module`` whose ``forward`` is::

    forward(atomic_numbers: Tensor, positions: Tensor, total_charge: Tensor) -> Tensor

``atomic_numbers``
    int64 tensor of shape ``(n,)``: the elements of the ML region, in region order.
``positions``
    float tensor of shape ``(n, 3)``, **in nanometres**, already made whole (no
    periodic images are applied inside the model: the region is treated in vacuo).
    Its dtype is the model's precision (float32 or float64).
``total_charge``
    0-d float tensor, the net charge of the region in elementary charges.
return
    0-d tensor: the potential energy **in kJ/mol**.

Forces are obtained by autograd, so ``forward`` must be differentiable with respect
to ``positions``.  A model may declare two optional attributes, which openmm-hybrid
uses to refuse unusable regions before any simulation starts:

``supported_elements: List[int]``
    atomic numbers the model was trained on (absent: any element is accepted).
``supports_charge: bool``
    whether a non-zero ``total_charge`` is meaningful (absent: ``False``).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from ..errors import ModelError

ELEMENT_SYMBOLS = {
    1: "H", 3: "Li", 5: "B", 6: "C", 7: "N", 8: "O", 9: "F", 11: "Na", 12: "Mg", 14: "Si", 15: "P",
    16: "S", 17: "Cl", 19: "K", 20: "Ca", 33: "As", 34: "Se", 35: "Br", 53: "I",
}


@dataclass
class MLModel:
    """A loaded ML model ready to be attached to a System.

    Attributes
    ----------
    name : str
        Registry name (``"ani2x"``) or file path of the model.
    module : torch.nn.Module
        Module following the contract above (eager or TorchScript).
    precision : str
        ``"single"`` (float32) or ``"double"`` (float64).
    supported_elements : list of int or None
        Atomic numbers the model supports; ``None`` means unrestricted.
    supports_charge : bool
        Whether the model can represent a region with a non-zero net charge.
    description : str
        Human-readable description recorded in ``embed.json``.
    """

    name: str
    module: torch.nn.Module
    precision: str = "single"
    supported_elements: Optional[List[int]] = None
    supports_charge: bool = False
    description: str = ""
    options: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == "double" else torch.float32

    def check_region(self, atomic_numbers, net_charge: float) -> None:
        """Refuse a region this model cannot represent (elements, net charge)."""
        ModelCapabilities(self.supported_elements, self.supports_charge).check(self.name, atomic_numbers, net_charge)


@dataclass
class ModelCapabilities:
    """What regions a model can take, known without loading its weights (:meth:`ModelFamily.describe`).

    Attributes
    ----------
    supported_elements : list of int or None
        Atomic numbers the model supports; None: any, or not known before the model is loaded.
    supports_charge : bool or None
        Whether a region with a non-zero net charge is meaningful for it; None: not known before
        the model is loaded (nothing is refused then: loading the model checks again).
    """

    supported_elements: Optional[List[int]]
    supports_charge: Optional[bool]

    def check(self, name: str, atomic_numbers, net_charge: float, what: str = "the ML region") -> None:
        """Raise :class:`ModelError` naming the elements or the charge model ``name`` cannot take.

        ``what`` names the atoms in the message (``"the ML region"``, ``"ligand 'x'"``).
        """
        if self.supported_elements is not None:
            bad = sorted({int(z) for z in atomic_numbers} - set(self.supported_elements))
            if bad:
                names = ", ".join(ELEMENT_SYMBOLS.get(z, f"Z={z}") for z in bad)
                ok = " ".join(ELEMENT_SYMBOLS.get(z, str(z)) for z in self.supported_elements)
                raise ModelError(f"{what} contains element(s) {names} that model '{name}' does not support "
                                 f"(supported: {ok})")
        if abs(net_charge) > 1e-3 and self.supports_charge is False:
            raise ModelError(f"{what} has net charge {net_charge:+.3g} e, but model '{name}' is for neutral "
                             f"molecules only; choose a neutral region or a model that supports charge")


class SpecializingModel(torch.nn.Module):
    """A model whose TorchScript module is built for one ML region (its atomic numbers).

    :func:`openmm_hybrid.forces.create_ml_force` calls :meth:`specialize` with the region's
    atomic numbers and runs the module it returns (TorchScript-able, the contract's
    ``forward``).  Calling this module directly (eager Python) specializes on the fly and
    keeps the latest region's module.
    """

    def __init__(self):
        super().__init__()
        self._specialized: Dict[Tuple[int, ...], torch.nn.Module] = {}

    def specialize(self, atomic_numbers) -> torch.nn.Module:
        raise NotImplementedError

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        key = tuple(int(z) for z in atomic_numbers)
        if key not in self._specialized:
            self._specialized = {key: self.specialize(key)}
        return self._specialized[key](atomic_numbers, positions, total_charge)


def check_precision(precision: str) -> str:
    if precision not in ("single", "double"):
        raise ModelError(f"precision must be 'single' or 'double', not {precision!r}")
    return precision


class ModelFamily:
    """A family of ML models: the names and files it answers to, and how it loads them.

    One subclass per family (ANI-2x, TorchScript files, ...), registered once with
    :func:`openmm_hybrid.models.register_model_family` (or the ``openmm_hybrid.models`` entry
    point group, whose value is the subclass).  :func:`openmm_hybrid.models.load_model` gives a
    name to the family listing it in :attr:`names`, and an existing file (or a path ending in
    one of :attr:`file_suffixes`) to the family claiming that suffix.

    A family implements :meth:`load`; :meth:`describe` (elements and charge support, for early
    checks) has a default that loads the model.

    Attributes
    ----------
    names : tuple of str
        Registry names (``"ani2x"``); matched exactly.
    file_suffixes : tuple of str
        File name endings this family loads (``".pt"``), lower case.
    """

    names: Tuple[str, ...] = ()
    file_suffixes: Tuple[str, ...] = ()

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        """Load model ``spec`` (one of :attr:`names`, or a file path); required of every family.

        Parameters
        ----------
        spec : str
            A registry name or the path of a model file.
        precision : {"single", "double"}
            float32 or float64 evaluation.
        options :
            Family-specific options (e.g. ``model_index`` for ANI-2x); an unknown option is
            refused with :class:`~openmm_hybrid.errors.ModelError`.

        Returns
        -------
        MLModel
        """
        raise NotImplementedError

    def describe(self, spec: str, **options) -> ModelCapabilities:
        """Which elements model ``spec`` supports and whether it takes charged regions.

        Used to refuse a ligand before it is parametrised (``build --model``).  The default loads
        the model (``load(spec, **options)``) and reads :class:`MLModel`'s attributes; a family
        whose answer is known without its weights or its package (ANI-2x, the published AIMNet2,
        MACE-OFF and AceFF models) overrides this to stay cheap.  :meth:`load` remains the
        authority: the loaded model's own element list and charge support are what the region is
        checked against when it is embedded.

        Parameters
        ----------
        spec : str
            A registry name or the path of a model file.
        options :
            As for :meth:`load`.
        """
        model = self.load(spec, **options)
        return ModelCapabilities(model.supported_elements, model.supports_charge)

    def claims_file(self, path: str) -> bool:
        """Whether ``path`` is a file of this family (by its suffix)."""
        return any(str(path).lower().endswith(suffix) for suffix in self.file_suffixes)


def refuse_options(family: str, options: dict, accepted=()) -> None:
    """Refuse options a family does not use, naming them and the accepted ones."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        known = ", ".join(accepted) if accepted else "none"
        raise ModelError(f"option(s) {', '.join(unknown)} are not used by {family} models (accepted: {known})")
