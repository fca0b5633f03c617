"""Build openmm-hybrid's compiled OpenMM plugin.

Produces, in the output directory (``openmm_hybrid/_lib`` for an in-place or editable build):

``libOpenMMHybrid.so``
    ``openmmapi/`` + ``serialization/``: the ``TorchModuleForce`` class, its ForceImpl,
    the kernel interface and the XML proxy (registered when the library is loaded).
    Links only libOpenMM, not libtorch.
``libOpenMMHybridReference.so``
    ``platforms/reference/``: the libtorch kernel for every platform derived from
    ReferencePlatform (Reference, CPU); an OpenMM plugin library (``registerKernelFactories``).
``_openmmhybrid<EXT_SUFFIX>`` and ``openmmhybrid.py``
    ``python/``: the SWIG bindings.

Compiled against the headers and libraries of the OpenMM and torch that are importable
when this runs (``OpenMM.libs/include``, ``OpenMM.libs/lib``, ``torch/include``,
``torch/lib``), with torch's C++ ABI flag, so the result is tied to those exact versions
(the project pins them).  Needs a C++17 compiler (``$CXX``, default ``c++``) and ``swig``
(the PyPI package).  Objects are rebuilt only when a source or header is newer.

Usage: ``python plugin/build_plugin.py [--out DIR]`` (default: in place), or through
``setup.py``'s ``build_ext`` (``pip install -e .``).
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = REPO / "openmm_hybrid" / "_lib"

API_SOURCES = ["openmmapi/src/TorchModuleForce.cpp", "openmmapi/src/TorchModuleForceImpl.cpp",
               "serialization/src/TorchModuleForceProxy.cpp", "serialization/src/SerializationProxyRegistration.cpp"]
REFERENCE_SOURCES = ["platforms/reference/src/ReferenceTorchModuleKernels.cpp",
                     "platforms/reference/src/ReferenceTorchModuleKernelFactory.cpp"]
SWIG_INTERFACE = "python/openmmhybrid.i"

API_LIBRARY = "libOpenMMHybrid.so"
REFERENCE_LIBRARY = "libOpenMMHybridReference.so"


class BuildError(RuntimeError):
    pass


def _log(message):
    print(f"[openmm-hybrid plugin] {message}", file=sys.stderr, flush=True)


def locate_dependencies() -> dict:
    """Include and library directories of the importable OpenMM, torch and Python."""
    try:
        import openmm
        import openmm.version
    except ImportError as exc:
        raise BuildError("building the plugin needs openmm importable (pip install openmm==8.6.1 first)") from exc
    try:
        import torch
    except ImportError as exc:
        raise BuildError("building the plugin needs torch importable (pip install torch==2.9.1 first)") from exc
    torch_root = Path(torch.__file__).resolve().parent
    openmm_lib = Path(openmm.version.openmm_library_path)
    openmm_include = openmm_lib.parent / "include"
    for needed in (openmm_include / "OpenMM.h", openmm_include / "swig" / "OpenMMSwigHeaders.i",
                   openmm_lib / "libOpenMM.so"):
        if not needed.exists():
            raise BuildError(f"OpenMM {openmm.version.full_version} has no {needed}: the plugin needs OpenMM's "
                             f"headers and SWIG files (the PyPI wheel ships them in OpenMM.libs)")
    return {
        "openmm_version": openmm.version.full_version,
        "openmm_include": openmm_include,
        "openmm_lib": openmm_lib,
        "torch_version": torch.__version__,
        # what torch.utils.cpp_extension.include_paths()/library_paths() give for a CPU build
        # (importing cpp_extension itself warns about CUDA_HOME on machines without CUDA)
        "torch_includes": [torch_root / "include", torch_root / "include" / "torch" / "csrc" / "api" / "include"],
        "torch_lib": torch_root / "lib",
        "cxx11_abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "python_include": Path(sysconfig.get_paths()["include"]),
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    }


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


def _run(command, verbose):
    if verbose:
        _log(" ".join(shlex.quote(str(c)) for c in command))
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(map(str, command))}\n"
                         f"{result.stdout}\n{result.stderr}")
    return result


def _newest(paths):
    return max((p.stat().st_mtime for p in paths), default=0.0)


def build(out_dir=DEFAULT_OUT, build_dir=None, jobs=None, verbose=False) -> list:
    """Build the plugin into ``out_dir``; returns the paths of the files produced."""
    out_dir = Path(out_dir).resolve()
    build_dir = Path(build_dir or REPO / "build" / "plugin").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    deps = locate_dependencies()
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise BuildError(f"no C++ compiler: {cxx!r} was not found (set CXX, or install g++)")
    swig = find_swig()
    _log(f"building against OpenMM {deps['openmm_version']} ({deps['openmm_lib']}) and torch "
         f"{deps['torch_version']} with {cxx} and {swig}")

    headers = [p for d in ("openmmapi", "serialization", "platforms") for p in (HERE / d).rglob("*.h")]
    include_flags = [f"-I{HERE / 'openmmapi' / 'include'}", f"-I{HERE / 'serialization' / 'include'}",
                     f"-I{HERE / 'platforms' / 'reference' / 'include'}", f"-I{deps['openmm_include']}"]
    torch_flags = [f"-I{p}" for p in deps["torch_includes"]]
    common = ["-std=c++17", "-O2", "-fPIC", "-Wno-deprecated-declarations",
              f"-D_GLIBCXX_USE_CXX11_ABI={deps['cxx11_abi']}", "-DOPENMM_HYBRID_BUILDING_SHARED_LIBRARY"]

    # The SWIG wrapper source is generated first (it is compiled with the others).
    swig_cpp = build_dir / "openmmhybridPYTHON_wrap.cxx"
    swig_py = out_dir / "openmmhybrid.py"
    interface = HERE / SWIG_INTERFACE
    if not swig_cpp.exists() or not swig_py.exists() or \
            swig_cpp.stat().st_mtime < _newest([interface] + headers):
        _log("swig: generating the Python bindings")
        _run([swig, "-python", "-c++", f"-I{deps['openmm_include']}", f"-I{HERE / 'openmmapi' / 'include'}",
              "-outdir", out_dir, "-o", swig_cpp, interface], verbose)

    units = [(HERE / s, include_flags) for s in API_SOURCES]
    units += [(HERE / s, include_flags + torch_flags) for s in REFERENCE_SOURCES]
    units += [(swig_cpp, include_flags + [f"-I{deps['python_include']}"])]

    def compile_unit(unit):
        source, flags = unit
        obj = build_dir / (source.stem + ".o")
        if obj.exists() and obj.stat().st_mtime >= _newest([source] + headers):
            return obj
        _log(f"compiling {source.name}")
        _run([cxx, *common, *flags, "-c", source, "-o", obj], verbose)
        return obj

    with ThreadPoolExecutor(max_workers=jobs or min(len(units), os.cpu_count() or 1)) as pool:
        objects = list(pool.map(compile_unit, units))
    api_objects, reference_objects, swig_objects = (objects[:len(API_SOURCES)],
                                                    objects[len(API_SOURCES):-1], objects[-1:])

    # Run paths: beside this library, then the OpenMM and torch of the build environment,
    # then where they lie relative to an installed openmm_hybrid/_lib in site-packages.
    # (At run time `import torch, openmm` has already loaded them, which the loader reuses.)
    rpaths = ["$ORIGIN", deps["openmm_lib"], deps["torch_lib"], "$ORIGIN/../../OpenMM.libs/lib",
              "$ORIGIN/../../torch/lib"]
    rpath_flags = [f"-Wl,-rpath,{p}" for p in rpaths]
    link = [cxx, "-shared", "-Wl,--no-undefined", *rpath_flags]
    outputs = []

    def link_library(name, objs, libs):
        target = out_dir / name
        if not target.exists() or target.stat().st_mtime < _newest(objs):
            _log(f"linking {name}")
            _run([*link, f"-Wl,-soname,{name}" if name.startswith("lib") else "-Wl,-O1", *objs, "-o", target,
                  f"-L{out_dir}", f"-L{deps['openmm_lib']}", f"-L{deps['torch_lib']}", *libs], verbose)
        outputs.append(target)

    link_library(API_LIBRARY, api_objects, ["-lOpenMM"])
    link_library(REFERENCE_LIBRARY, reference_objects, ["-lOpenMMHybrid", "-lOpenMM", "-ltorch_cpu", "-lc10"])
    # Python symbols are resolved from the interpreter at import time, so no -lpython.
    link = [cxx, "-shared", *rpath_flags]
    link_library("_openmmhybrid" + deps["ext_suffix"], swig_objects, ["-lOpenMMHybrid", "-lOpenMM"])
    outputs.append(swig_py)
    _log(f"built {', '.join(p.name for p in outputs)} in {out_dir}")
    return outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: openmm_hybrid/_lib)")
    parser.add_argument("--build-dir", default=None, help="directory for objects (default: build/plugin)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiler processes")
    parser.add_argument("--verbose", action="store_true", help="print every command")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.build_dir, args.jobs, args.verbose)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
