"""openmm-hybrid's compiled OpenMM plugin (``plugin/`` in the source tree): loading and access.

The plugin provides ``TorchModuleForce``, an OpenMM Force that evaluates a TorchScript
energy module inside OpenMM with libtorch (Reference and CPU platforms), with its own XML
serialization proxy, so Systems holding it can be read back with plain
``openmm.XmlSerializer.deserialize``, deep-copied, and used inside a ``CustomCVForce``.

``import openmm_hybrid`` loads it (:func:`load`), in this order:

1. ``torch``: libtorch and the CUDA runtime libraries that torch's wheel links against;
2. ``openmm``: libOpenMM, and every library in OpenMM's plugin directory, which holds
   ``libOpenMMHybrid.so`` too (a symbolic link to ``_lib/libOpenMMHybrid.so`` after an
   editable install, a copy of it after a wheel install): so a process that imports only
   openmm reads and writes TorchModuleForce in XML, and refuses to create a Context with one
   with a message saying to ``import openmm_hybrid``;
3. ``_lib/libOpenMMHybrid.so``: the force, its kernel interface and its XML proxy (the
   proxy registers itself when the library loads).  If OpenMM has loaded it already, that
   very file is used (one copy of the class per process); if OpenMM loaded a different build
   of it, loading stops with :class:`PluginError` saying which files differ;
4. ``_lib/libOpenMMHybridReference.so`` through ``openmm.Platform.loadPluginLibrary``: the
   libtorch kernel for the Reference and CPU platforms (other platforms get a kernel
   factory that refuses the force with a message naming
   :func:`openmm_hybrid.forces.platforms.for_platform`);
5. ``_lib/libOpenMMHybridCUDA.so``, where it was built (a CUDA torch and OpenMM's CUDA
   platform at build time): the libtorch kernel for the CUDA platform, which then runs
   ``TorchModuleForce`` itself.  If it is absent or cannot load (e.g. no GPU driver), the
   CUDA platform falls back to the refusing factory of step 4 and :func:`cuda_load_error`
   says why;
6. the SWIG bindings ``_lib/openmmhybrid.py``.

The libraries are built by ``pip install -e .`` (setup.py's ``build_ext``, which runs CMake
through ``plugin/build_plugin.py``) or by ``python plugin/build_plugin.py``.  If they are
missing or fail to load, importing openmm_hybrid still works (building MM systems needs no
plugin) and :func:`require` raises :class:`PluginError` with the reason when a force is created.
"""
import ctypes
import filecmp
import os
from pathlib import Path

import torch  # noqa: F401  (step 1 above)
import openmm

from ..errors import PluginError

LIBRARY_DIR = Path(__file__).resolve().parent / "_lib"
API_LIBRARY = LIBRARY_DIR / "libOpenMMHybrid.so"
REFERENCE_LIBRARY = LIBRARY_DIR / "libOpenMMHybridReference.so"
CUDA_LIBRARY = LIBRARY_DIR / "libOpenMMHybridCUDA.so"
KERNEL_NAME = "CalcTorchModuleForce"
FORCE_TYPE = "TorchModuleForce"  # the class name, and the type attribute in system.xml

_BUILD_HINT = ("build it with `python -m pip install --no-build-isolation -e .` (see README) or "
               "`python plugin/build_plugin.py` in the source tree")

_state = {"bindings": None, "error": None, "cuda_error": None}


def load():
    """Load the plugin (idempotent); returns the SWIG module, or None if it cannot be loaded.

    The reason for a failure is kept for :func:`require` and :func:`load_error`.
    """
    if _state["bindings"] is not None or _state["error"] is not None:
        return _state["bindings"]
    try:
        for library in (API_LIBRARY, REFERENCE_LIBRARY):
            if not library.is_file():
                raise PluginError(f"openmm-hybrid's compiled plugin is not built ({library} is missing): "
                                  f"{_BUILD_HINT}")
        _load_api_library()
        try:
            openmm.Platform.loadPluginLibrary(str(REFERENCE_LIBRARY))
        except Exception as exc:
            raise PluginError(f"OpenMM could not load {REFERENCE_LIBRARY.name}: {exc}") from exc
        if CUDA_LIBRARY.is_file():
            try:
                openmm.Platform.loadPluginLibrary(str(CUDA_LIBRARY))
            except Exception as exc:  # the CPU kernels still work
                _state["cuda_error"] = PluginError(f"OpenMM could not load {CUDA_LIBRARY.name}: {exc}")
        else:
            _state["cuda_error"] = PluginError(f"{CUDA_LIBRARY.name} was not built (it needs a CUDA build of torch and "
                                               f"OpenMM's CUDA platform, e.g. pip install openmm-cuda-12, at build time)")
        from ._lib import openmmhybrid
    except (OSError, ImportError, PluginError) as exc:
        error = exc if isinstance(exc, PluginError) else PluginError(
            f"openmm-hybrid's compiled plugin failed to load ({exc}); it must be built against the installed "
            f"openmm and torch: {_BUILD_HINT}")
        _state["error"] = error
        return None
    _state["bindings"] = openmmhybrid
    return openmmhybrid


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def loaded_api_library():
    """The path of the libOpenMMHybrid.so loaded in this process (by OpenMM from its plugin
    directory, or by :func:`load`), or None if none is loaded."""
    try:
        library = ctypes.CDLL(API_LIBRARY.name, mode=os.RTLD_NOLOAD)  # by soname: only if loaded
    except OSError:
        return None
    info = _DlInfo()
    address = ctypes.cast(library.registerOpenMMHybridSerializationProxies, ctypes.c_void_p)
    for libdl in (None, "libdl.so.2"):  # dladdr is in libc from glibc 2.34 on
        try:
            dladdr = ctypes.CDLL(libdl).dladdr
        except (OSError, AttributeError):
            continue
        if dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return Path(os.fsdecode(info.dli_fname))
    raise PluginError("cannot tell which libOpenMMHybrid.so is loaded (dladdr is not available)")


def _load_api_library():
    """Load _lib/libOpenMMHybrid.so, or use the one OpenMM loaded from its plugin directory if
    it is the same file or an identical copy; a different build is refused (two copies of the
    class and its XML proxy in one process would not work together)."""
    loaded = loaded_api_library()
    if loaded is None:
        library = ctypes.CDLL(str(API_LIBRARY), mode=ctypes.RTLD_GLOBAL)
    else:
        if not (loaded.exists() and (os.path.samefile(loaded, API_LIBRARY) or
                                     filecmp.cmp(loaded, API_LIBRARY, shallow=False))):
            resolved = f" (a link to {os.path.realpath(loaded)})" if loaded.is_symlink() else ""
            raise PluginError(
                f"OpenMM loaded {loaded}{resolved} from its plugin directory, a different build of openmm-hybrid's "
                f"plugin than this openmm_hybrid's {API_LIBRARY}: reinstall this openmm_hybrid (pip install links or "
                f"copies its library there) or remove {loaded}")
        library = ctypes.CDLL(str(loaded), mode=ctypes.RTLD_GLOBAL)
    try:
        built_for = library.openmmHybridBuiltForOpenMM
    except AttributeError:
        raise PluginError(f"openmm-hybrid's compiled plugin ({API_LIBRARY}) is from an older version of openmm-hybrid: "
                          f"{_BUILD_HINT}") from None
    built_for.restype = ctypes.c_char_p
    built_for = built_for().decode()
    if built_for != openmm.Platform.getOpenMMVersion():
        raise PluginError(f"openmm-hybrid's compiled plugin ({API_LIBRARY}) was built for OpenMM {built_for}, but "
                          f"OpenMM {openmm.Platform.getOpenMMVersion()} is installed: {_BUILD_HINT}")


def cuda_load_error():
    """Why the CUDA kernel is not loaded (a :class:`PluginError`), or None when it is."""
    load()
    return _state["cuda_error"]


def is_available() -> bool:
    """Whether the compiled plugin is loaded."""
    return load() is not None


def load_error():
    """The :class:`PluginError` that stopped the plugin from loading, or None."""
    load()
    return _state["error"]


def require():
    """The SWIG module of the plugin; raises :class:`PluginError` (saying why) if it is not loaded."""
    bindings = load()
    if bindings is None:
        raise _state["error"]
    return bindings


def __getattr__(name):
    """``openmm_hybrid.plugin.TorchModuleForce``: the plugin's Force class (SWIG), loaded on
    first use; raises :class:`PluginError` if the plugin is not available.

    ``TorchModuleForce(module)`` takes a ``torch.jit.ScriptModule``, its ``torch.jit.save``
    bytes or the path of a saved module, called as ``forward(positions[, boxvectors][,
    parameters...])`` (positions in nm, float64, all particles; energy in kJ/mol) like
    openmm-torch's ``TorchForce``.  See ``plugin/README.md``.
    """
    if name == "TorchModuleForce":
        return require().TorchModuleForce
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_torch_module_force(force) -> bool:
    """True for a ``TorchModuleForce``, also one read back from a System as ``openmm.Force``."""
    bindings = load()
    return bindings is not None and bindings.TorchModuleForce.isinstance(force)


def as_torch_module_force(force):
    """``force`` as the plugin's ``TorchModuleForce`` Python class (e.g. after ``System.getForce``)."""
    bindings = require()
    if isinstance(force, bindings.TorchModuleForce):
        return force
    return bindings.TorchModuleForce.cast(force)


def has_native_kernel(platform) -> bool:
    """Whether ``platform`` (an ``openmm.Platform`` or its name) runs ``TorchModuleForce`` itself
    (Reference, CPU, and CUDA where that kernel is built); the others need
    :func:`openmm_hybrid.forces.platforms.for_platform`."""
    name = platform if isinstance(platform, str) else platform.getName()
    return require().platformHasTorchModuleKernel(name)
