"""A system.xml holding a TorchModuleForce, read by a fresh Python process that imports only
openmm: OpenMM loads libOpenMMHybrid.so from its plugin directory (the install links or copies it
there), so the force deserializes; a Context refuses it with a message saying to import
openmm_hybrid, and after `import openmm_hybrid` the same process computes the same energies with
one copy of the library loaded.  Also: a dangling link and a different build in the plugin
directory (a stale install) do not break `import openmm`, and openmm_hybrid says what is wrong."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_hybrid import plugin
from openmm_hybrid.ml_force import create_module_force

REPO = Path(__file__).resolve().parent.parent

BOX = [openmm.Vec3(2.0, 0, 0), openmm.Vec3(0.3, 1.9, 0), openmm.Vec3(-0.2, 0.4, 2.1)]


class Springs(torch.nn.Module):
    """E = scale * sum_i |x_i - x_0|^2 (minimum image in z only), scale in the parameter slot."""

    def forward(self, positions: torch.Tensor, boxvectors: torch.Tensor,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        d = positions - positions[0]
        d = d - torch.round(d[:, 2:3] / boxvectors[2, 2]) * boxvectors[2]
        energy = (d ** 2).sum()
        return energy if scale is None else scale * energy


def _energies(system, xyz):
    result = {}
    for name in ("Reference", "CPU"):
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(name))
        context.setPositions(xyz)
        result[name] = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    return result


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(system.xml path, positions .npy path, in-process energies, the XML text)."""
    assert plugin.is_available(), plugin.load_error()
    system = openmm.System()
    for _ in range(5):
        system.addParticle(12.0)
    system.setDefaultPeriodicBoxVectors(*BOX)
    bonds = openmm.HarmonicBondForce()
    bonds.addBond(0, 1, 0.15, 1000.0)
    system.addForce(bonds)
    system.addForce(create_module_force(torch.jit.script(Springs()), periodic=True, force_group=1,
                                        scale_parameter="lambda_interpolate"))
    xyz = np.random.default_rng(7).uniform(0.0, 1.5, size=(5, 3))
    directory = tmp_path_factory.mktemp("plain-openmm")
    xml = openmm.XmlSerializer.serialize(system)
    (directory / "system.xml").write_text(xml)
    np.save(directory / "xyz.npy", xyz)
    return directory / "system.xml", directory / "xyz.npy", _energies(system, xyz), xml


def _python(script, *args, env=None):
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          env=environment, cwd=REPO)


PLAIN = """
import json, sys, openmm
text = open(sys.argv[1]).read()
loaded = [p for p in openmm.pluginLoadedLibNames if p.endswith("/libOpenMMHybrid.so")]
try:
    system = openmm.XmlSerializer.deserialize(text)
except Exception as exc:
    failures = [f for f in openmm.Platform.getPluginLoadFailures() if "Hybrid" in f]
    print(json.dumps({"error": str(exc), "loaded": loaded, "failures": failures}))
    sys.exit(0)
forces = [openmm.XmlSerializer.serialize(f).split('type="')[1].split('"')[0] for f in system.getForces()]
try:
    openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    refusal = None
except Exception as exc:
    refusal = str(exc)
maps = open("/proc/self/maps").read()
print(json.dumps({"loaded": loaded, "forces": forces, "refusal": refusal,
                  "same_xml": openmm.XmlSerializer.serialize(system) == text,
                  "torch": "torch" in sys.modules or "libtorch" in maps}))
"""


def test_plain_openmm_reads_the_file_and_says_to_import_openmm_hybrid(saved):
    path, _, _, _ = saved
    run = _python(PLAIN, path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    plugin_dir = os.environ.get("OPENMM_PLUGIN_DIR") or os.path.join(openmm.version.openmm_library_path, "plugins")
    assert "error" not in out, (
        f"a process importing only openmm cannot read the file ({out.get('error')}): OpenMM's plugin directory "
        f"({plugin_dir}) has no libOpenMMHybrid.so; `python -m pip install --no-build-isolation -e .` links it there "
        f"(loaded: {out.get('loaded')}, load failures: {out.get('failures')})")
    assert len(out["loaded"]) == 1
    loaded = out["loaded"][0]
    assert os.path.samefile(loaded, plugin.API_LIBRARY) or \
        open(loaded, "rb").read() == plugin.API_LIBRARY.read_bytes(), (loaded, plugin.API_LIBRARY)
    assert out["forces"] == ["HarmonicBondForce", "TorchModuleForce"]
    assert out["same_xml"]  # every attribute, the module bytes included, survives the round trip
    assert not out["torch"]  # reading the file needs no libtorch
    assert out["refusal"] and "`import openmm_hybrid`" in out["refusal"] and "Reference" in out["refusal"]


AFTER_IMPORT = """
import copy, json, os, sys, numpy as np, openmm
system = openmm.XmlSerializer.deserialize(open(sys.argv[1]).read())  # before openmm_hybrid, as a user might
import openmm_hybrid
from openmm_hybrid import plugin
assert plugin.is_available(), plugin.load_error()
force = plugin.as_torch_module_force(system.getForce(1))
energies = {}
for name in ("Reference", "CPU"):
    for label, s in (("read", system), ("deepcopy", copy.deepcopy(system))):
        context = openmm.Context(s, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(name))
        context.setPositions(np.load(sys.argv[2]))
        energies[name + " " + label] = context.getState(getEnergy=True).getPotentialEnergy()._value
files = set()
for line in open("/proc/self/maps"):
    fields = line.split()
    if len(fields) >= 6 and os.path.basename(fields[5]) == "libOpenMMHybrid.so":
        files.add((fields[3], fields[4]))  # device, inode
print(json.dumps({"energies": energies, "copies": len(files), "type": type(force).__name__,
                  "group": force.getForceGroup(), "parameter": force.getGlobalParameterName(0),
                  "loaded": str(plugin.loaded_api_library()), "ours": str(plugin.API_LIBRARY)}))
"""


def test_fresh_process_computes_after_import_openmm_hybrid(saved):
    path, xyz, energies, _ = saved
    run = _python(AFTER_IMPORT, path, xyz)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["copies"] == 1  # the library OpenMM loaded and openmm_hybrid's are one
    assert os.path.samefile(out["loaded"], out["ours"]) or \
        open(out["loaded"], "rb").read() == open(out["ours"], "rb").read()
    assert out["type"] == "TorchModuleForce" and out["group"] == 1 and out["parameter"] == "lambda_interpolate"
    assert abs(energies["Reference"]) > 1.0
    for name in ("Reference", "CPU"):
        for label in ("read", "deepcopy"):
            assert out["energies"][f"{name} {label}"] == pytest.approx(energies[name], rel=1e-12)


STALE = """
import json, openmm
failures = [f for f in openmm.Platform.getPluginLoadFailures() if "libOpenMMHybrid" in f]
import openmm_hybrid
from openmm_hybrid import plugin
print(json.dumps({"failures": failures, "available": plugin.is_available(),
                  "error": str(plugin.load_error() or "")}))
"""


def _only_plugin_dir(directory):
    # OpenMM then loads plugins from `directory` alone (no CPU platform, which these checks do not need)
    return {"OPENMM_PLUGIN_DIR": str(directory)}


def test_dangling_link_in_the_plugin_directory_is_harmless(tmp_path):
    """After the tree an editable install linked to is deleted, `import openmm` reports one load
    failure and openmm_hybrid (another install) still loads its own library."""
    (tmp_path / "libOpenMMHybrid.so").symlink_to(tmp_path / "deleted" / "libOpenMMHybrid.so")
    run = _python(STALE, env=_only_plugin_dir(tmp_path))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(out["failures"]) == 1 and "libOpenMMHybrid.so" in out["failures"][0]
    assert out["available"], out["error"]


def test_a_different_build_in_the_plugin_directory_is_refused_by_name(tmp_path):
    """Two different libOpenMMHybrid.so in one process would register two classes and proxies:
    openmm_hybrid refuses and names the file."""
    other = tmp_path / "libOpenMMHybrid.so"
    shutil.copyfile(plugin.API_LIBRARY, other)
    with open(other, "ab") as handle:  # still a loadable library, but not the same build
        handle.write(b"another build")
    run = _python(STALE, env=_only_plugin_dir(tmp_path))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["failures"] == [] and not out["available"]
    assert "a different build" in out["error"] and str(other) in out["error"]
