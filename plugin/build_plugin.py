"""Build openmm-hybrid's compiled OpenMM plugin.

Produces, in the output directory (``openmm_hybrid/forces/_lib`` for an in-place or editable build):

``libOpenMMHybrid.so``
    ``openmmapi/`` + ``serialization/``: the ``TorchModuleForce`` class, its ForceImpl,
    the kernel interface and the XML proxy (registered when the library is loaded).
    Links only libOpenMM, not libtorch.
``libOpenMMHybridReference.so``
    ``platforms/reference/``: the libtorch kernel for every platform derived from
    ReferencePlatform (Reference, CPU); an OpenMM plugin library (``registerKernelFactories``).
``libOpenMMHybridCUDA.so`` (only where it can be built)
    ``platforms/cuda/``: the libtorch kernel for the CUDA platform.  Built when torch is a CUDA
    build and OpenMM's CUDA platform (``openmm-cuda-12``/``-13``: ``plugins/libOpenMMCUDA.so``)
    and ``cuda.h`` are found; otherwise skipped with a message (the pinned CPU-only test setup
    has no OpenMM CUDA platform).  ``OPENMM_HYBRID_BUILD_CUDA=0`` skips it, ``=1`` makes a missing
    piece an error.
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
DEFAULT_OUT = REPO / "openmm_hybrid" / "forces" / "_lib"

API_SOURCES = ["openmmapi/src/TorchModuleForce.cpp", "openmmapi/src/TorchModuleForceImpl.cpp",
               "serialization/src/TorchModuleForceProxy.cpp", "serialization/src/SerializationProxyRegistration.cpp"]
COMMON_SOURCES = ["platforms/common/src/TorchModuleRunner.cpp"]
REFERENCE_SOURCES = ["platforms/reference/src/ReferenceTorchModuleKernels.cpp",
                     "platforms/reference/src/ReferenceTorchModuleKernelFactory.cpp"]
CUDA_SOURCES = ["platforms/cuda/src/CudaTorchModuleKernels.cpp", "platforms/cuda/src/CudaTorchModuleKernelFactory.cpp"]
SWIG_INTERFACE = "python/openmmhybrid.i"

API_LIBRARY = "libOpenMMHybrid.so"
REFERENCE_LIBRARY = "libOpenMMHybridReference.so"
CUDA_LIBRARY = "libOpenMMHybridCUDA.so"


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


def locate_cuda(deps: dict):
    """What the CUDA kernel needs, as a dict, or the reason it cannot be built (a str)."""
    import torch
    torch_lib = Path(deps["torch_lib"])
    if not torch.version.cuda or not (torch_lib / "libtorch_cuda.so").exists():
        return "torch is not a CUDA build"
    plugins = Path(deps["openmm_lib"]) / "plugins"
    if not (plugins / "libOpenMMCUDA.so").exists():
        return f"OpenMM's CUDA platform is not installed (no {plugins / 'libOpenMMCUDA.so'}; pip install openmm-cuda-12)"
    if not (Path(deps["openmm_include"]) / "openmm" / "cuda" / "CudaContext.h").exists():
        return "OpenMM's CUDA platform headers are missing"
    candidates = [Path(os.environ[v]) / "include" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    candidates.append(Path("/usr/local/cuda/include"))
    for site in {Path(p) for p in sys.path if p and Path(p, "nvidia").is_dir()}:
        candidates += sorted(Path(site, "nvidia").glob("*/include"))
    cuda_include = next((c for c in candidates if (c / "cuda.h").exists()), None)
    if cuda_include is None:
        return "cuda.h was not found (set CUDA_HOME)"
    # libtorch's inline CUDA guards call the CUDA runtime: link the one torch itself loads
    runtime_dirs = [torch_lib, cuda_include.parent / "lib", cuda_include.parent / "lib64"]
    cudart = next((p for d in runtime_dirs if d.is_dir() for p in sorted(d.glob("libcudart.so*"))), None)
    if cudart is None:
        return "the CUDA runtime library (libcudart.so) was not found beside cuda.h or torch"
    # the driver API (contexts, streams) links against libcuda: the toolkit's stub at build time
    stubs = [d / "stubs" for d in (cuda_include.parent / "lib64", cuda_include.parent / "lib")
             if (d / "stubs" / "libcuda.so").exists()]
    return {"cuda_include": cuda_include, "openmm_plugins": plugins, "cudart": cudart,
            "driver_flags": ([f"-L{stubs[0]}"] if stubs else []) + ["-lcuda"]}


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
    common_flags = include_flags + torch_flags + [f"-I{HERE / 'platforms' / 'common' / 'include'}"]
    units += [(HERE / s, common_flags) for s in COMMON_SOURCES + REFERENCE_SOURCES]
    units += [(swig_cpp, include_flags + [f"-I{deps['python_include']}"])]
    cuda = None
    wanted = os.environ.get("OPENMM_HYBRID_BUILD_CUDA", "auto")
    if wanted != "0":
        cuda = locate_cuda(deps)
        if isinstance(cuda, str):
            if wanted == "1":
                raise BuildError(f"OPENMM_HYBRID_BUILD_CUDA=1, but the CUDA kernel cannot be built: {cuda}")
            _log(f"CUDA kernel not built: {cuda}")
            cuda = None
    cuda_units = []
    if cuda is not None:
        cuda_flags = common_flags + [f"-I{HERE / 'platforms' / 'cuda' / 'include'}", f"-I{cuda['cuda_include']}"]
        cuda_units = [(HERE / s, cuda_flags) for s in CUDA_SOURCES]

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
    n_api, n_reference = len(API_SOURCES), len(COMMON_SOURCES) + len(REFERENCE_SOURCES)
    api_objects = objects[:n_api]
    reference_objects = objects[n_api:n_api + n_reference]
    swig_objects = objects[n_api + n_reference:]

    # Run paths: beside this library, then the OpenMM and torch of the build environment,
    # then where they lie relative to an installed openmm_hybrid/_lib in site-packages.
    # (At run time `import torch, openmm` has already loaded them, which the loader reuses.)
    rpaths = ["$ORIGIN", deps["openmm_lib"], deps["torch_lib"], "$ORIGIN/../../OpenMM.libs/lib",
              "$ORIGIN/../../torch/lib"]
    rpath_flags = [f"-Wl,-rpath,{p}" for p in rpaths]
    outputs = []

    def link_library(name, objs, libs, flags=("-Wl,--no-undefined",)):
        target = out_dir / name
        if not target.exists() or target.stat().st_mtime < _newest(objs):
            _log(f"linking {name}")
            _run([cxx, "-shared", *flags, *rpath_flags, f"-Wl,-soname,{name}" if name.startswith("lib") else "-Wl,-O1",
                  *objs, "-o", target,
                  f"-L{out_dir}", f"-L{deps['openmm_lib']}", f"-L{deps['torch_lib']}", *libs], verbose)
        outputs.append(target)

    link_library(API_LIBRARY, api_objects, ["-lOpenMM"])
    link_library(REFERENCE_LIBRARY, reference_objects, ["-lOpenMMHybrid", "-lOpenMM", "-ltorch_cpu", "-lc10"])
    if cuda is not None:
        # The CUDA kernel is optional: unless OPENMM_HYBRID_BUILD_CUDA=1 asked for it, a failure
        # leaves the other libraries usable (GPU platforms then convert to openmm-torch's TorchForce).
        try:
            cuda_objects = [compile_unit(u) for u in cuda_units]
            cuda_rpaths = [f"-Wl,-rpath,{p}" for p in (cuda["openmm_plugins"], "$ORIGIN/../../OpenMM.libs/lib/plugins",
                                                       cuda["cudart"].parent)]
            # the runner is compiled into each platform library (one object, linked twice)
            link_library(CUDA_LIBRARY, cuda_objects + reference_objects[:len(COMMON_SOURCES)],
                         [f"-L{cuda['openmm_plugins']}", "-lOpenMMCUDA", "-lOpenMMHybrid", "-lOpenMM",
                          "-ltorch_cuda", "-ltorch_cpu", "-lc10_cuda", "-lc10", cuda["cudart"], *cuda["driver_flags"]],
                         flags=("-Wl,--no-undefined", *cuda_rpaths))
        except BuildError as exc:
            if wanted == "1":
                raise
            _log(f"CUDA kernel not built (the build failed; OPENMM_HYBRID_BUILD_CUDA=1 shows why): "
                 f"{str(exc).splitlines()[0]}")
    # Python symbols are resolved from the interpreter at import time: no -lpython, and undefined
    # symbols are allowed.
    link_library("_openmmhybrid" + deps["ext_suffix"], swig_objects, ["-lOpenMMHybrid", "-lOpenMM"], flags=())
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
