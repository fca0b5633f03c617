"""The plugin's C++ tests (plugin/tests, CTest), built with CMake against the installed plugin
libraries (openmm_hybrid/_lib) and run: XML round trip with the API library alone (no libtorch),
the Reference/CPU kernel against analytic energies, forces and parameter derivatives, the refusal
before the kernels are loaded, and the refusal on a platform without a native kernel.

The build tree (build/plugin-tests in the repository) is kept, so a rerun only runs the tests."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openmm.version
import pytest
import torch

from openmm_hybrid import plugin

REPO = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(REPO / "plugin"))
import build_plugin  # noqa: E402

TESTS = ["MakeTestModules", "TestSerialization", "TestReferenceKernel", "TestOtherPlatformRefusal"]


def _cmake():
    try:
        return build_plugin.find_cmake()
    except build_plugin.BuildError as exc:
        pytest.skip(f"the C++ tests need CMake: {exc}")


def test_cpp_tests_pass():
    cmake = _cmake()
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        pytest.skip(f"the C++ tests need a C++ compiler: {cxx!r} was not found (set CXX)")
    ninja = None if os.environ.get("CMAKE_GENERATOR") else build_plugin.find_ninja()
    if not (ninja or os.environ.get("CMAKE_GENERATOR") or shutil.which("make")):
        pytest.skip("the C++ tests need a build tool: neither ninja nor make was found")
    assert plugin.is_available(), plugin.load_error()
    build = REPO / "build" / "plugin-tests"
    library_dir = plugin.LIBRARY_DIR.resolve()
    stamp = {"python": sys.executable, "lib": str(library_dir), "openmm": openmm.version.openmm_library_path,
             "torch": torch.__file__, "cxx": cxx, "generator": os.environ.get("CMAKE_GENERATOR") or ninja or "default"}
    stamp_file = build / "openmm-hybrid-tests.json"
    if build.exists() and (not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp):
        shutil.rmtree(build)
    build.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps(stamp))
    deps = build_plugin.locate_dependencies()
    steps = [
        [cmake, "-S", REPO / "plugin" / "tests", "-B", build,
         *(["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []), f"-DOPENMM_HYBRID_LIB_DIR={library_dir}",
         f"-DPython3_EXECUTABLE={sys.executable}", f"-DOPENMM_HYBRID_OPENMM_LIBRARY_DIR={deps['openmm_lib']}",
         f"-DOPENMM_HYBRID_OPENMM_INCLUDE_DIR={deps['openmm_include']}",
         f"-DOPENMM_HYBRID_OPENMM_VERSION={deps['openmm_version']}", f"-DOPENMM_HYBRID_TORCH_DIR={deps['torch_dir']}",
         f"-DOPENMM_HYBRID_TORCH_CXX11_ABI={deps['cxx11_abi']}", f"-DOPENMM_HYBRID_TORCH_CUDA={deps['torch_cuda']}"],
        [cmake, "--build", build, "--parallel", str(os.cpu_count() or 1)],
    ]
    for step in steps:
        result = subprocess.run([str(s) for s in step], capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(map(str, step))} failed:\n{result.stdout}\n{result.stderr}"
    ctest = shutil.which("ctest", path=os.path.dirname(cmake)) or "ctest"
    run = subprocess.run([ctest, "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True,
                         cwd=build)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in TESTS:  # every test ran and passed
        assert any(name in line and "Passed" in line for line in run.stdout.splitlines()), run.stdout
    # "100% tests passed, 0 tests failed out of N" (CMake 3) or "100% tests passed out of N" (CMake 4)
    assert re.search(rf"100% tests passed.* out of {len(TESTS)}\b", run.stdout), run.stdout
