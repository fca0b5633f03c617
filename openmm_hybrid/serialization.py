"""Reading and writing Systems that contain ML forces.

Why this exists: with the pinned PyPI stack (openmm 8.6.1, openmmtorch 1.5) the C++
deserialiser of ``TorchForce`` crashes the process (a segmentation fault inside
``TorchForceProxy::deserialize``), and so does everything built on it:
``XmlSerializer.deserialize`` of a system.xml holding a TorchForce, ``copy.deepcopy``
of such a System or Force.  Serialising works.  ``load_system`` therefore parses the
XML itself and rebuilds each ``TorchForce`` (top-level, or as a collective variable of
a ``CustomCVForce``) in Python from its stored TorchScript bytes, and hands every
other force to ``XmlSerializer`` unchanged.  Files stay standard OpenMM XML.
"""
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import openmm


def save_system(system: openmm.System, path) -> None:
    """Write ``system`` as OpenMM XML (``XmlSerializer.serialize``)."""
    Path(path).write_text(openmm.XmlSerializer.serialize(system))


def load_system(path_or_xml) -> openmm.System:
    """Read an OpenMM System XML file (or string) that may contain TorchForces.

    Parameters
    ----------
    path_or_xml : str or Path
        A file path, or the XML text itself.

    Returns
    -------
    openmm.System
        Forces holding a TorchForce are appended after the other forces, in file order.
    """
    text = str(path_or_xml)
    if not text.lstrip().startswith("<"):
        text = Path(path_or_xml).read_text()
    if 'type="TorchForce"' not in text:
        return openmm.XmlSerializer.deserialize(text)
    root = ET.fromstring(text)
    forces_node = root.find("Forces")
    torch_nodes = [node for node in list(forces_node) if _contains_torch_force(node)]
    for node in torch_nodes:
        forces_node.remove(node)
    system = openmm.XmlSerializer.deserialize(ET.tostring(root, encoding="unicode"))
    for node in torch_nodes:
        system.addForce(_force_from_node(node))
    return system


def _contains_torch_force(node) -> bool:
    return node.get("type") == "TorchForce" or any(
        child.get("type") == "TorchForce" for child in node.iter("Force"))


def _force_from_node(node):
    kind = node.get("type")
    if kind == "TorchForce":
        return _torch_force_from_node(node)
    if kind == "CustomCVForce":
        return _cv_force_from_node(node)
    if _contains_torch_force(node):
        raise ValueError(f"cannot rebuild a {kind} that contains a TorchForce")
    return openmm.XmlSerializer.deserialize(ET.tostring(node, encoding="unicode"))


def _torch_force_from_node(node):
    import torch
    import openmmtorch

    contents = node.get("encodedFileContents")
    if not contents:
        raise ValueError("TorchForce without encodedFileContents (a file-based TorchForce) cannot be rebuilt")
    module = torch.jit.load(io.BytesIO(bytes.fromhex(contents)), map_location="cpu")
    properties = {p.get("name"): p.get("value") for p in node.iterfind("Properties/Property")}
    force = openmmtorch.TorchForce(module, properties)
    force.setForceGroup(int(node.get("forceGroup", 0)))
    force.setUsesPeriodicBoundaryConditions(node.get("usesPeriodic", "0") == "1")
    force.setOutputsForces(node.get("outputsForces", "0") == "1")
    for parameter in node.iterfind("GlobalParameters/Parameter"):
        force.addGlobalParameter(parameter.get("name"), float(parameter.get("default")))
    for derivative in node.iterfind("ParameterDerivatives/Parameter"):
        force.addEnergyParameterDerivative(derivative.get("name"))
    from .ml_force import ML_FORCE_NAME
    # TorchForce's XML does not store the force name; modules that are not the ML force say theirs
    force.setName(str(getattr(module, "force_name", ML_FORCE_NAME)))
    return force


def _cv_force_from_node(node):
    force = openmm.CustomCVForce(node.get("energy"))
    force.setForceGroup(int(node.get("forceGroup", 0)))
    if node.get("name"):
        force.setName(node.get("name"))
    for parameter in node.iterfind("GlobalParameters/Parameter"):
        force.addGlobalParameter(parameter.get("name"), float(parameter.get("default")))
    for derivative in node.iterfind("EnergyParameterDerivatives/Parameter"):
        force.addEnergyParameterDerivative(derivative.get("name"))
    if len(node.findall("Functions/*")):
        raise ValueError("rebuilding a CustomCVForce with tabulated functions around a TorchForce is not supported")
    for variable in node.iterfind("CollectiveVariables/CollectiveVariable"):
        (cv_node,) = list(variable)
        force.addCollectiveVariable(variable.get("name"), _force_from_node(cv_node))
    return force
