"""Build openmm-hybrid's compiled OpenMM plugin with CMake (plugin/CMakeLists.txt).

Configures, builds and installs (``cmake --install``) into the package's library directory
(``openmm_hybrid/forces/_lib`` for an in-place or editable build):

``libOpenMMHybrid.so``
    the ``TorchModuleForce`` class, its kernel interface and its XML proxy; links only libOpenMM.
``libOpenMMHybridReference.so``
    the libtorch kernel for the Reference and CPU platforms (an OpenMM plugin library).
``libOpenMMHybridCUDA.so`` (only where it can be built, see ``platforms/cuda/CMakeLists.txt``)
    the libtorch kernel for the CUDA platform.  ``OPENMM_HYBRID_BUILD_CUDA=0`` skips it, ``=1``
    makes a missing piece or a failed compilation an error; otherwise a failure only skips it.
``_openmmhybrid<EXT_SUFFIX>`` and ``openmmhybrid.py``
    the SWIG bindings.

and puts ``libOpenMMHybrid.so`` where ``import openmm`` loads plugins, so that a process that
imports only openmm reads TorchModuleForce from XML: an in-place build makes a symbolic link
there (:func:`openmm_plugin_directory`), a wheel build ships a copy at the same place relative
to site-packages (:func:`wheel_plugin_directory`).

It compiles against the openmm and torch importable by this Python (their wheels' headers and
libraries, torch's C++ ABI flag), so the result is tied to those versions (the project pins
them).  Needs CMake >= 3.18, a C++17 compiler (``$CXX``) and ``swig`` (the PyPI package).
CMake rebuilds only what changed (build tree: ``build/plugin``).

Usage: ``python plugin/build_plugin.py [--out DIR] [--tests] [--verbose]``, ``python
plugin/build_plugin.py --unlink`` (removes the link from OpenMM's plugin directory), or
through ``setup.py``'s ``build_ext`` (``pip install -e .``).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The Python package that holds the compiled plugin: the one place that names it (setup.py,
# the CMake build and the run paths derive from it; openmm_hybrid/forces/plugin.py finds it as "_lib"
# beside itself).
PYTHON_PACKAGE = "openmm_hybrid.forces._lib"

API_LIBRARY = "libOpenMMHybrid.so"
REFERENCE_LIBRARY = "libOpenMMHybridReference.so"
CUDA_LIBRARY = "libOpenMMHybridCUDA.so"
CMAKE_MINIMUM = (3, 18)


class BuildError(RuntimeError):
    pass


def _log(message):
    print(f"[openmm-hybrid plugin] {message}", file=sys.stderr, flush=True)


def package_dir(root) -> Path:
    """The library directory under ``root`` (a source tree or a wheel's build directory)."""
    return Path(root).joinpath(*PYTHON_PACKAGE.split("."))


DEFAULT_OUT = package_dir(REPO)
DEFAULT_BUILD = REPO / "build" / "plugin"


def locate_dependencies() -> dict:
    """Where the importable OpenMM and torch keep their headers and libraries."""
    try:
        import openmm
        import openmm.version
    except ImportError as exc:
        raise BuildError("building the plugin needs openmm importable (pip install openmm==8.6.1 first)") from exc
    try:
        import torch
    except ImportError as exc:
        raise BuildError("building the plugin needs torch importable (pip install torch==2.9.1 first)") from exc
    openmm_lib = Path(openmm.version.openmm_library_path)
    openmm_include = openmm_lib.parent / "include"
    for needed in (openmm_include / "OpenMM.h", openmm_include / "swig" / "OpenMMSwigHeaders.i",
                   openmm_lib / "libOpenMM.so"):
        if not needed.exists():
            raise BuildError(f"OpenMM {openmm.version.full_version} has no {needed}: the plugin needs OpenMM's "
                             f"headers and SWIG files (the PyPI wheel ships them in OpenMM.libs)")
    return {
        "openmm_version": openmm.Platform.getOpenMMVersion(),
        "openmm_include": openmm_include,
        "openmm_lib": openmm_lib,
        "openmm_site": Path(openmm.__file__).resolve().parent.parent,
        "torch_dir": Path(torch.__file__).resolve().parent,
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda or "",
        "cxx11_abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
    }


def openmm_plugin_directory() -> Path:
    """The directory ``import openmm`` loads plugins from (openmm/__init__.py): the first entry
    of ``OPENMM_PLUGIN_DIR`` if set, else ``plugins/`` under the wheel's ``OpenMM.libs/lib``."""
    configured = os.environ.get("OPENMM_PLUGIN_DIR")
    if configured:
        return Path(configured.split(":")[0])
    import openmm.version
    return Path(openmm.version.openmm_library_path) / "plugins"


def wheel_plugin_directory(deps=None):
    """OpenMM's plugin directory relative to the site-packages that holds openmm
    (``OpenMM.libs/lib/plugins``), or None if it is not below it (not a wheel install)."""
    deps = deps or locate_dependencies()
    relative = Path(os.path.relpath(deps["openmm_lib"] / "plugins", deps["openmm_site"]))
    return None if relative.parts[:1] == ("..",) else relative


def find_cmake() -> str:
    """cmake on PATH, else from the PyPI ``cmake`` package; at least CMAKE_MINIMUM."""
    candidates = [shutil.which("cmake")]
    try:
        import cmake
        candidates.append(str(Path(cmake.CMAKE_BIN_DIR) / "cmake"))
    except (ImportError, AttributeError):
        pass
    found = []
    for candidate in filter(None, candidates):
        result = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        match = re.search(r"version (\d+)\.(\d+)", result.stdout)
        if match and tuple(map(int, match.groups())) >= CMAKE_MINIMUM:
            return candidate
        found.append(f"{candidate} ({match.group(0) if match else 'unknown version'})")
    minimum = ".".join(map(str, CMAKE_MINIMUM))
    raise BuildError(f"building the plugin needs CMake >= {minimum}" +
                     (f"; found only {', '.join(found)}" if found else "; none was found") +
                     f": pip install 'cmake>={minimum}' (or install it with your system's package manager)")


def find_ninja():
    """ninja on PATH or from the PyPI ``ninja`` package, or None (CMake then writes Makefiles)."""
    found = shutil.which("ninja")
    if found:
        return found
    try:
        import ninja
        candidate = Path(ninja.BIN_DIR) / "ninja"
        return str(candidate) if candidate.exists() else None
    except (ImportError, AttributeError):
        return None


def find_swig() -> str:
    """The swig executable: next to this Python (the PyPI ``swig`` package) or on PATH."""
    beside = Path(sys.executable).parent / "swig"
    if beside.exists():
        return str(beside)
    found = shutil.which("swig")
    if found:
        return found
    try:  # the PyPI package also exposes its binary directory
        import swig
        candidate = Path(swig.BIN_DIR) / "swig"
        if candidate.exists():
            return str(candidate)
    except (ImportError, AttributeError):
        pass
    raise BuildError("swig was not found: pip install swig (the PyPI package) before building the plugin")


def _run(command, verbose=True, capture=False):
    command = [str(c) for c in command]
    if verbose:
        _log(" ".join(command))
    result = subprocess.run(command, capture_output=capture, text=True)
    if result.returncode != 0:
        detail = f"\n{result.stdout}\n{result.stderr}" if capture else " (see the output above)"
        raise BuildError(f"command failed ({result.returncode}): {' '.join(command)}{detail}")
    return result


def _cache_value(build_dir, name):
    cache = Path(build_dir) / "CMakeCache.txt"
    match = re.search(rf"^{name}:[A-Z]+=(.*)$", cache.read_text(), re.M) if cache.exists() else None
    return match.group(1) if match else None


def build(out_dir=DEFAULT_OUT, build_dir=DEFAULT_BUILD, jobs=None, verbose=False, tests=False,
          openmm_plugin_link=None, openmm_plugin_copy=None) -> list:
    """Configure, build and install the plugin into ``out_dir``; returns the files installed.

    ``openmm_plugin_link``: a directory in which ``libOpenMMHybrid.so`` becomes a symbolic link to
    the installed one (OpenMM's plugin directory, for in-place builds); ``openmm_plugin_copy``: a
    directory that receives a copy of it (a wheel's ``OpenMM.libs/lib/plugins``).  ``tests``:
    also build the C++ tests (run them with ``ctest --test-dir BUILD_DIR``).
    """
    out_dir = Path(out_dir).resolve()
    build_dir = Path(build_dir).resolve()
    deps = locate_dependencies()
    cmake = find_cmake()
    swig = find_swig()
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise BuildError(f"no C++ compiler: {cxx!r} was not found (set CXX, or install g++)")
    # Ninja where available (it starts compiling a library's sources before the libraries it
    # links are finished); $CMAKE_GENERATOR chooses otherwise.
    generator = []
    ninja = None if os.environ.get("CMAKE_GENERATOR") else find_ninja()
    if ninja:
        generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]

    # A build tree configured for another Python, OpenMM, torch or compiler is started afresh.
    stamp = {"python": sys.executable, "openmm": str(deps["openmm_lib"]), "openmm_version": deps["openmm_version"],
             "torch": str(deps["torch_dir"]), "torch_version": deps["torch_version"], "cxx": cxx,
             "source": str(HERE), "generator": os.environ.get("CMAKE_GENERATOR") or ninja or "default"}
    stamp_file = build_dir / "openmm-hybrid-build.json"
    if build_dir.exists() and (not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp):
        _log(f"removing {build_dir}: it was configured for another environment")
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps(stamp))

    wanted_cuda = {"0": "OFF", "1": "ON"}.get(os.environ.get("OPENMM_HYBRID_BUILD_CUDA", ""), "AUTO")
    _log(f"building against OpenMM {deps['openmm_version']} ({deps['openmm_lib']}) and torch "
         f"{deps['torch_version']} with {cmake}, {cxx} and {swig} into {out_dir}")
    definitions = {
        "CMAKE_BUILD_TYPE": "Release",
        "CMAKE_INSTALL_PREFIX": out_dir,
        "Python3_EXECUTABLE": sys.executable,
        "SWIG_EXECUTABLE": swig,
        "OPENMM_HYBRID_PYTHON_PACKAGE": PYTHON_PACKAGE,
        "OPENMM_HYBRID_OPENMM_LIBRARY_DIR": deps["openmm_lib"],
        "OPENMM_HYBRID_OPENMM_INCLUDE_DIR": deps["openmm_include"],
        "OPENMM_HYBRID_OPENMM_VERSION": deps["openmm_version"],
        "OPENMM_HYBRID_TORCH_DIR": deps["torch_dir"],
        "OPENMM_HYBRID_TORCH_CXX11_ABI": deps["cxx11_abi"],
        "OPENMM_HYBRID_TORCH_CUDA": deps["torch_cuda"],
        "OPENMM_HYBRID_BUILD_CUDA": wanted_cuda,
        "OPENMM_HYBRID_BUILD_TESTS": "ON" if tests else "OFF",
        "OPENMM_HYBRID_OPENMM_PLUGIN_LINK": openmm_plugin_link or "",
        "OPENMM_HYBRID_OPENMM_PLUGIN_COPY": openmm_plugin_copy or "",
    }
    _run([cmake, "-S", HERE, "-B", build_dir, *generator, *(f"-D{k}={v}" for k, v in definitions.items())],
         verbose, capture=not verbose)

    parallel = ["--parallel", str(jobs or os.cpu_count() or 1)]
    cuda_status = _cache_value(build_dir, "OPENMM_HYBRID_CUDA_STATUS")
    cuda_failed = False
    try:
        _run([cmake, "--build", build_dir, *parallel], verbose)  # everything configured, in parallel
    except BuildError as exc:
        if cuda_status != "built" or wanted_cuda == "ON":
            raise
        # Under AUTO a failure of the CUDA kernel leaves the other libraries usable (GPU platforms
        # then convert to openmm-torch's TorchForce): build them alone; if that works, it was CUDA's.
        targets = ["OpenMMHybrid", "OpenMMHybridReference", "_openmmhybrid"]
        if tests:
            targets += ["TestSerialization", "TestReferenceKernel", "TestOtherPlatformRefusal"]
        _run([cmake, "--build", build_dir, *parallel, "--target", *targets], verbose)
        cuda_failed = True
        (build_dir / "lib" / CUDA_LIBRARY).unlink(missing_ok=True)
        _log(f"CUDA kernel not built: its compilation failed (the errors are above; OPENMM_HYBRID_BUILD_CUDA=1 "
             f"makes this an error): {str(exc).splitlines()[0]}")
    if cuda_status and cuda_status != "built":
        _log(f"CUDA kernel not built: {cuda_status}")
    _run([cmake, "--install", build_dir], verbose)
    if cuda_failed:
        (out_dir / CUDA_LIBRARY).unlink(missing_ok=True)

    outputs = sorted(p for p in out_dir.iterdir() if p.suffix == ".so" or p.name == "openmmhybrid.py")
    if openmm_plugin_copy:
        outputs.append(Path(openmm_plugin_copy) / API_LIBRARY)
    _log(f"built {', '.join(p.name for p in outputs)} in {out_dir}")
    if openmm_plugin_link:
        link = Path(openmm_plugin_link) / API_LIBRARY
        if link.is_symlink() and link.exists() and os.path.samefile(link, out_dir / API_LIBRARY):
            _log(f"{link} links to {out_dir / API_LIBRARY}: `import openmm` loads it")
        else:
            _log(f"warning: could not link {link} to {out_dir / API_LIBRARY} (see CMake's message above): "
                 f"openmm_hybrid works, but a process that imports only openmm cannot read TorchModuleForce")
    return outputs


def unlink(out_dir=DEFAULT_OUT, directory=None) -> bool:
    """Remove the link to ``out_dir``'s libOpenMMHybrid.so from OpenMM's plugin directory
    (after ``pip uninstall`` of an editable install); True if there was one."""
    link = Path(directory or openmm_plugin_directory()) / API_LIBRARY
    target = Path(out_dir).resolve() / API_LIBRARY
    if link.is_symlink() and Path(os.path.realpath(link)) == Path(os.path.realpath(target)):
        link.unlink()
        return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"install directory (default: {DEFAULT_OUT})")
    parser.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"CMake build tree (default: {DEFAULT_BUILD})")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiler processes (default: all cores)")
    parser.add_argument("--tests", action="store_true",
                        help="also build the C++ tests (then: ctest --test-dir BUILD_DIR)")
    parser.add_argument("--openmm-plugin-dir", default=None,
                        help="where to link libOpenMMHybrid.so so that `import openmm` loads it (default: OpenMM's "
                             "plugin directory, see openmm_plugin_directory); 'none' for no link")
    parser.add_argument("--unlink", action="store_true",
                        help="only remove that link (if it points to --out's library) and exit")
    parser.add_argument("--verbose", action="store_true", help="print every command and CMake's configuration")
    args = parser.parse_args(argv)
    link = None if args.openmm_plugin_dir == "none" else (args.openmm_plugin_dir or None)
    try:
        if args.unlink:
            removed = unlink(args.out, link)
            _log(("removed the link from " if removed else "no link to this build in ") +
                 str(link or openmm_plugin_directory()))
            return 0
        if args.openmm_plugin_dir is None:
            link = openmm_plugin_directory()
        build(args.out, args.build_dir, args.jobs, args.verbose, args.tests, openmm_plugin_link=link)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
