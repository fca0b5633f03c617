"""Fingerprints of Systems: what a resumed run compares so that it never continues another run.

:func:`system_fingerprint` digests everything that determines a System's energies: the
particles, constraints, virtual sites and default box, and each force's full parameters
(OpenMM's XML of the force).  A ``TorchModuleForce`` is digested by the content of its
TorchScript module (code, constants, tensors), so a model with other weights, another network
of an ensemble or another precision gives another fingerprint; the module's debug tables
(source file names and line numbers) and serialisation id are left out, so the same model
built again (in another process, from another install location) gives the same one.

:func:`fingerprint_differences` names the entries in which two fingerprints differ, for
refusal messages.
"""
import hashlib
import io
import zipfile
from typing import List

import openmm

from . import plugin

# archive members that describe how the module was made, not what it computes
_IGNORED_MODULE_MEMBERS = (".debug_pkl", "serialization_id")


def module_digest(module_bytes: bytes) -> str:
    """SHA-256 over the members of a ``torch.jit.save`` archive (names and contents, sorted),
    without debug tables and the serialisation id; of the raw bytes if they are no archive."""
    digest = hashlib.sha256()
    try:
        archive = zipfile.ZipFile(io.BytesIO(module_bytes))
        names = sorted(n for n in archive.namelist() if not n.endswith(_IGNORED_MODULE_MEMBERS))
    except zipfile.BadZipFile:
        digest.update(module_bytes)
        return digest.hexdigest()
    for name in names:
        # the archive's top folder is named after the saved file: keep only the path inside it
        digest.update(name.split("/", 1)[-1].encode())
        digest.update(archive.read(name))
    return digest.hexdigest()


def force_digest(force) -> str:
    """SHA-256 of one force's parameters (its XML), a ``TorchModuleForce`` by its module's content."""
    if plugin.is_torch_module_force(force):
        torch_force = plugin.as_torch_module_force(force)
        parts = [plugin.FORCE_TYPE, module_digest(bytes(torch_force.getModuleBytes())),
                 str(torch_force.getForceGroup()), torch_force.getName(),
                 str(torch_force.usesPeriodicBoundaryConditions())]
        parts += [f"{torch_force.getGlobalParameterName(i)}={torch_force.getGlobalParameterDefaultValue(i)!r}"
                  for i in range(torch_force.getNumGlobalParameters())]
        parts += [f"d/d{torch_force.getEnergyParameterDerivativeName(i)}"
                  for i in range(torch_force.getNumEnergyParameterDerivatives())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return hashlib.sha256(openmm.XmlSerializer.serialize(force).encode()).hexdigest()


def force_label(index: int, force) -> str:
    """``"3 NonbondedForce 'name'"``: how fingerprints and messages name a force."""
    kind = plugin.FORCE_TYPE if plugin.is_torch_module_force(force) else type(force).__name__
    return f"{index} {kind} '{force.getName()}'"


def system_fingerprint(system: openmm.System) -> dict:
    """``{"particles": n, "masses_constraints_box": sha256, "forces": {label: sha256}}`` of a System."""
    xml = openmm.XmlSerializer.serialize(system)
    start, end = xml.find("<Forces>"), xml.rfind("</Forces>")
    if start >= 0 and end > start:
        xml = xml[:start] + xml[end:]  # the forces are digested one by one below
    body = hashlib.sha256(xml.encode()).hexdigest()
    forces = {force_label(index, force): force_digest(force) for index, force in enumerate(system.getForces())}
    return {"particles": system.getNumParticles(), "masses_constraints_box": body, "forces": forces}


def fingerprint_differences(old, new, prefix: str = "") -> List[str]:
    """Dotted names of the entries in which two (nested) fingerprints differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{name} (new)")
            elif key not in new:
                out.append(f"{name} (missing)")
            else:
                out.extend(fingerprint_differences(old[key], new[key], name))
        return out
    return [] if old == new else [prefix or "value"]
