"""Where openmm-hybrid's force-field files are, for OpenMM's ``openmm.forcefielddir`` entry point.

OpenMM calls every such entry point the first time any script looks up a force-field file by
name, so this lives outside the ``openmm_hybrid`` package: loading it must not import that
package (which imports torch) in pure-MM scripts.  ``find_spec`` locates the package without
executing it.
"""
import importlib.util
import os


def data_directory() -> str:
    """Directory holding openmm-hybrid's force-field files (``openmm-hybrid/ani2x.xml``, ...)."""
    spec = importlib.util.find_spec("openmm_hybrid")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")
