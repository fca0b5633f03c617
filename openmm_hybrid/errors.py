"""Exceptions raised by openmm-hybrid.

Every refusal in the package raises one of these, with a message that names
the offending input, so that callers (and the CLI) can report it clearly.
All derive from ``ValueError`` so generic ``except ValueError`` still works.
"""


class HybridError(ValueError):
    """Base class of all openmm-hybrid input errors."""


class InputFileError(HybridError):
    """A file is missing, unreadable or of an unsupported format."""


class LigandError(HybridError):
    """A ligand cannot be used as given (missing hydrogens, no 3D coordinates, ...)."""


class ParameterizationError(HybridError):
    """Force-field parameters could not be assigned (antechamber/sqm failed, no template, ...)."""


class RegionError(HybridError):
    """The ML region is unusable (empty, cuts a covalent bond, unsupported element, charge)."""


class StructureError(HybridError):
    """A structure cannot be used as given: a residue without template, a template that does not match
    its residue, a structure PDBFixer cannot repair, or a physically broken structure (a chain break,
    atoms on top of each other)."""


class OutputFolderError(HybridError):
    """An output folder cannot be used as asked (not empty, a file, the input folder, in use)."""


class FolderInUseError(OutputFolderError):
    """Another process holds the advisory lock of a folder (see ``openmm_hybrid._files.FolderLock``)."""


class CheckpointError(HybridError):
    """A checkpoint is missing, corrupt, or belongs to another run."""


class ModelError(HybridError):
    """An ML model cannot be loaded or does not follow the input/output contract."""


class SimulationError(RuntimeError):
    """A simulation produced an invalid state (NaN energy, a stretched bond, a force that raised, ...)."""


class PluginError(RuntimeError):
    """openmm-hybrid's compiled OpenMM plugin is not built or cannot be loaded."""


class FreeEnergyError(HybridError):
    """A free-energy workflow cannot run as asked (no lambda_interpolate, charged ligand, bad settings)."""


class CampaignError(FreeEnergyError):
    """A free-energy campaign cannot run as asked (folder in use, series or value table unreadable,
    Dask cluster unreachable or misconfigured)."""


class InsufficientOverlapError(FreeEnergyError):
    """Neighbouring thermodynamic states (or forward/reverse work distributions) barely overlap."""


class RunInterrupted(RuntimeError):
    """A run stopped on request (a segment budget, SIGINT, SIGTERM) after saving a checkpoint; it can resume."""
