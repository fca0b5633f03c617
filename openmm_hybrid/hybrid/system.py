"""Turn an MM System into an ML/MM System: the package's central step."""
from dataclasses import dataclass, field
from typing import List, Optional

import openmm

from ..embeddings import get_embedding
from ..embeddings.region import check_region
from ..errors import HybridError
from ..forces import EMLE_FORCE_NAME, is_ml_force
from ..mm.selection import RegionSpec, select_region
from ..models import MLModel, load_model
from .mts import SCHEME as MTS_SCHEME, make_mts_ready


@dataclass
class HybridSystem:
    """An ML/MM System and what it was made from.

    Attributes
    ----------
    system : openmm.System
        The ML/MM System.
    topology : openmm.app.Topology
    ml_atoms : list of int
        System indices of the ML region, in the order the model receives them.
    model : MLModel
    embedding : str
    interpolate : bool
        Whether the global parameter ``lambda_interpolate`` exists (0 = MM, 1 = ML/MM).
    force_groups : dict
        ``{"ml": int, "mm": [int, ...]}``, plus ``"emle"`` (the EMLEEmbedding force's group) with
        electrostatic embedding; with ``mts_ready`` also ``"fast": [int, ...]`` (the full MM
        Hamiltonian, inner time step) and ``"slow": int`` (ML and embedding forces minus the region's
        internal MM energy, outer time step), see :mod:`openmm_hybrid.hybrid.mts`.
    region_info : dict
        Net charge and element counts of the region.
    """

    system: openmm.System
    topology: "openmm.app.Topology"
    ml_atoms: List[int]
    model: MLModel
    embedding: str
    interpolate: bool
    force_groups: dict
    region_info: dict = field(default_factory=dict)
    region_spec: Optional[str] = None
    embedding_settings: dict = field(default_factory=dict)
    mts_ready: bool = False

    def metadata(self) -> dict:
        """JSON-serialisable description (written as ``embed.json``)."""
        return {
            "ml_atoms": list(self.ml_atoms),
            "region": self.region_spec,
            "model": self.model.name,
            "model_description": self.model.description,
            "model_supports_charge": bool(self.model.supports_charge),
            "precision": self.model.precision,
            "embedding": self.embedding,
            "interpolate": self.interpolate,
            "global_parameters": ["lambda_interpolate"] if self.interpolate else [],
            "force_groups": self.force_groups,
            "mts_ready": self.mts_ready,
            **({"mts_scheme": MTS_SCHEME} if self.mts_ready else {}),
            "region_net_charge": self.region_info.get("net_charge"),
            "region_elements": self.region_info.get("elements"),
            "embedding_settings": self.embedding_settings,
        }


def create_hybrid_system(topology, system: openmm.System, region: RegionSpec, model="ani2x",
                         embedding: str = "mechanical", precision: str = "single",
                         ml_force_group: int = 1, interpolate: bool = False, positions=None,
                         model_options: Optional[dict] = None, mts_ready: bool = False,
                         **embedding_options) -> HybridSystem:
    """Create an ML/MM System from an MM System.

    Parameters
    ----------
    topology : openmm.app.Topology
    system : openmm.System
        The all-MM System (it is not modified).
    region : str or sequence of int
        MDTraj selection (``"resname LIG"``) or atom indices of the ML region.
    model : str, path or MLModel
        ``"ani2x"``, a TorchScript file, or a loaded model.
    embedding : str
        ``"mechanical"`` or ``"electrostatic"`` (EMLE), or another name registered with
        :func:`openmm_hybrid.embeddings.register_embedding`.
    precision : {"single", "double"}
        Precision of the ML model (ignored if ``model`` is already loaded).
    ml_force_group : int
        Force group of the ML force (0-31); MM forces must not use it.  With ``mts_ready`` this is
        the slow (outer) group.
    interpolate : bool
        Add ``lambda_interpolate`` (openmm-ml semantics: 0 = MM, 1 = ML/MM).
    positions : Quantity, optional
        Positions (nm); if given, periodic systems are checked for a region wider than half the box
        (and, with electrostatic embedding, for a box too small for the embedding cutoff).
    model_options : dict, optional
        Model options such as ``{"model_index": 0}`` for ANI-2x.
    mts_ready : bool
        Prepare the System for multiple-time-step integration (:mod:`openmm_hybrid.hybrid.mts`): the MM
        force groups ("fast") carry the full MM Hamiltonian, including the region's own MM terms,
        and ``ml_force_group`` becomes the "slow" group, holding every ML/embedding force minus the
        region's internal MM energy.  The total energy is unchanged.  Needs an MM System without
        constraints inside the region.
    embedding_options :
        Options of the embedding.  ``"electrostatic"``: ``emle_model`` (path of an EMLE ``.mat``
        file or an :class:`~openmm_hybrid.models.emle.EMLEModel`), ``emle_alpha_mode``
        (``"species"``/``"reference"``), ``emle_method`` (``"electrostatic"``/``"nonpol"``/``"mm"``),
        ``embedding_cutoff`` (nm, default 1.0), ``embedding_switch_distance`` (nm, default
        cutoff - 0.2), ``emle_force_group`` (default: ``ml_force_group``).
    """
    if not 0 <= int(ml_force_group) <= 31:
        raise HybridError(f"ml_force_group must be between 0 and 31, not {ml_force_group}")
    mm_groups = sorted({f.getForceGroup() for f in system.getForces()})
    if ml_force_group in mm_groups:
        raise HybridError(f"force group {ml_force_group} is already used by MM forces of the System "
                          f"(groups {mm_groups}); choose another ml_force_group")
    method = get_embedding(embedding)
    settings = method.settings(**embedding_options)  # refuses bad options before anything slow
    atoms = select_region(topology, region)
    ml_model = load_model(model, precision=precision, **(model_options or {}))
    info = check_region(topology, system, atoms, ml_model, positions)
    if positions is not None:
        method.check_positions(topology, system, atoms, positions, **embedding_options)
    hybrid = method.create_system(topology, system, atoms, ml_model, int(ml_force_group), bool(interpolate),
                                  total_charge=float(info["net_charge"]), **embedding_options)
    if mts_ready:
        mts_groups = make_mts_ready(hybrid, system, atoms, int(ml_force_group), bool(interpolate))
        groups = {"ml": mts_groups["slow"], "mm": mts_groups["fast"], **mts_groups}
    else:
        ml_groups = sorted({f.getForceGroup() for f in hybrid.getForces() if is_ml_force(f)})
        groups = {"ml": ml_groups[0] if len(ml_groups) == 1 else ml_groups,
                  "mm": sorted({f.getForceGroup() for f in hybrid.getForces() if not is_ml_force(f)})}
    emle_groups = sorted({f.getForceGroup() for f in hybrid.getForces() if f.getName() == EMLE_FORCE_NAME})
    if emle_groups:
        groups["emle"] = emle_groups[0]
    return HybridSystem(system=hybrid, topology=topology, ml_atoms=atoms, model=ml_model,
                        embedding=embedding, interpolate=bool(interpolate), force_groups=groups,
                        region_info=info, region_spec=region if isinstance(region, str) else None,
                        embedding_settings=settings, mts_ready=bool(mts_ready))
