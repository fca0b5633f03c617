"""Reading and writing Systems that contain ML forces.

openmm-hybrid's ML forces are ``TorchModuleForce`` objects from its compiled plugin, whose
XML proxy lives in ``libOpenMMHybrid.so``; the install puts that library into OpenMM's plugin
directory, so ``import openmm`` alone registers the proxy: a system.xml is plain OpenMM XML and
``openmm.XmlSerializer.deserialize`` reads it back in any process (the TorchScript module is
stored base64-encoded in the force's ``module`` attribute); running it needs ``import
openmm_hybrid``, which loads the libtorch kernels.  ``load_system`` is kept as
the package's reader because it also accepts files written before the plugin existed,
which hold openmm-torch ``TorchForce`` nodes: openmm-torch 1.5's XML reader crashes the
process under openmm 8.6.1 (it was compiled against older ``SerializationNode`` headers),
so such nodes are rewritten as ``TorchModuleForce`` nodes first (same module, periodicity,
global parameters, derivatives, group; force name ``MLPotential``).
"""
import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import openmm

from .._files import write_text_atomic
from . import plugin
from .module_force import ML_FORCE_NAME


def save_system(system: openmm.System, path) -> None:
    """Write ``system`` as OpenMM XML (``XmlSerializer.serialize``), atomically (a failed write keeps the old file)."""
    write_text_atomic(path, openmm.XmlSerializer.serialize(system))


def load_system(path_or_xml) -> openmm.System:
    """Read an OpenMM System XML file (or string), ``openmm.XmlSerializer.deserialize``.

    Parameters
    ----------
    path_or_xml : str or Path
        A file path, or the XML text itself.

    Returns
    -------
    openmm.System
        Legacy openmm-torch ``TorchForce`` entries come back as ``TorchModuleForce``.

    Raises
    ------
    PluginError
        If the file holds ML forces and the compiled plugin is not loaded.
    """
    text = str(path_or_xml)
    if not text.lstrip().startswith("<"):
        text = Path(path_or_xml).read_text()
    if f'type="{plugin.FORCE_TYPE}"' in text or 'type="TorchForce"' in text:
        plugin.require()  # without the XML proxy OpenMM cannot read the force
    if 'type="TorchForce"' in text:
        text = _rewrite_torch_forces(text)
    return openmm.XmlSerializer.deserialize(text)


def _rewrite_torch_forces(text: str) -> str:
    """The XML with every openmm-torch TorchForce node (top level, or a collective variable of
    a CustomCVForce) turned into an equivalent TorchModuleForce node."""

    root = ET.fromstring(text)
    for node in root.iter("Force"):
        if node.get("type") != "TorchForce":
            continue
        contents = node.get("encodedFileContents")
        if not contents:
            raise ValueError("a TorchForce that refers to a model file instead of embedding it "
                             "(no encodedFileContents) cannot be read")
        if node.get("outputsForces", "0") == "1":
            raise ValueError("a TorchForce whose module returns forces (outputsForces) has no TorchModuleForce "
                             "equivalent")
        parameters = [(p.get("name"), p.get("default")) for p in node.iterfind("GlobalParameters/Parameter")]
        derivatives = [p.get("name") for p in node.iterfind("ParameterDerivatives/Parameter")]
        group = node.get("forceGroup", "0")
        periodic = node.get("usesPeriodic", "0")
        node.attrib.clear()
        node.attrib.update({"type": plugin.FORCE_TYPE, "version": "1", "forceGroup": group, "name": ML_FORCE_NAME,
                            "usesPeriodic": periodic,
                            "module": base64.b64encode(bytes.fromhex(contents)).decode("ascii")})
        for child in list(node):
            node.remove(child)
        params_node = ET.SubElement(node, "GlobalParameters")
        for name, default in parameters:
            ET.SubElement(params_node, "Parameter", {"name": name, "default": default})
        derivs_node = ET.SubElement(node, "EnergyParameterDerivatives")
        for name in derivatives:
            ET.SubElement(derivs_node, "Parameter", {"name": name})
    return ET.tostring(root, encoding="unicode")
