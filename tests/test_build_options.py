"""Build options: the early model check (before any sqm run), charge methods, the box shape."""
import json
from typing import List

import numpy as np
import pytest
import torch

from helpers import count_ambertools_calls, requires_ambertools, requires_emle
from openmm_hybrid.cli import main
from openmm_hybrid.errors import HybridError, ModelError
from openmm_hybrid.hybrid import ligand_checker
from openmm_hybrid.mm import build_series, build_system, load_ligand
from openmm_hybrid.mm.builder import choose_box_shape
from openmm_hybrid.models import describe_model
from openmm_hybrid.models.ani import ANI2xFamily
from openmm_hybrid.testing import emle_model_path


class _SmallModel(torch.nn.Module):
    supported_elements: List[int]
    supports_charge: bool

    def __init__(self):
        super().__init__()
        self.supported_elements = [1, 6, 8]
        self.supports_charge = True

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor, total_charge: torch.Tensor):
        return (positions ** 2).sum()


def test_describe_model_reads_no_ani_weights(monkeypatch, tmp_path):
    def no_weights(self, *args, **kwargs):
        raise AssertionError("describe must not load the model")

    monkeypatch.setattr(ANI2xFamily, "load", no_weights)
    ani = describe_model("ani2x")
    assert ani.supported_elements == [1, 6, 7, 8, 9, 16, 17] and ani.supports_charge is False
    with pytest.raises(ModelError, match=r"option\(s\) cutoff are not used by ANI-2x models"):
        describe_model("ani2x", cutoff=5)
    path = tmp_path / "small.pt"
    torch.jit.save(torch.jit.script(_SmallModel()), str(path))
    small = describe_model(str(path))  # the default: load the file and read its attributes
    assert small.supported_elements == [1, 6, 8] and small.supports_charge is True


@requires_ambertools
def test_ligand_refused_before_any_sqm_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENMM_HYBRID_CACHE", str(tmp_path / "cache"))
    calls = count_ambertools_calls(monkeypatch, tmp_path / "bin")
    check = ligand_checker("ani2x")
    with pytest.raises(ModelError, match=r"ligand 'CC\(=O\)\[O-\]' has net charge -1 e, but model 'ani2x' is for "
                                         r"neutral molecules only"):
        build_system(ligand="CC(=O)[O-]", solvent="vacuum", check_ligand=check)
    with pytest.raises(ModelError, match=r"ligand 'CBr' contains element\(s\) Br that model 'ani2x' does not support "
                                         r"\(supported: H C N O F S Cl\)"):
        build_system(ligand="CBr", solvent="vacuum", check_ligand=check)
    assert main(["build", "--ligand", "CCBr", "--solvent", "vacuum", "--model", "ani2x",
                 "--out", str(tmp_path / "x")]) == 2
    assert "contains element(s) Br that model 'ani2x' does not support" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert calls()["antechamber"] == 0 and calls()["sqm"] == 0  # refused before parametrisation
    # in a series, the refused ligand is reported and only the others are parametrised
    result = build_series(None, ["CO", "CC(=O)[O-]"], tmp_path / "series", jobs=1, solvent="vacuum",
                          check_ligand=check)
    assert [(e.status, e.stage) for e in result.ligands] == [("built", None), ("failed", "check")]
    assert calls()["antechamber"] == 1


@requires_emle
def test_emle_elements_checked_from_its_parameter_file(tmp_path):
    check = ligand_checker("ani2x", "electrostatic", emle_model=str(emle_model_path()))
    with pytest.raises(ModelError, match=r"ligand 'CCl' contains element\(s\) Cl that model 'EMLE \(.*\)' does not "
                                         r"support \(supported: H C N O S\)"):
        build_system(ligand="CCl", solvent="vacuum", check_ligand=check)  # ANI-2x has Cl, EMLE not
    with pytest.raises(HybridError, match="electrostatic embedding needs an EMLE parameter file"):
        ligand_checker("ani2x", "electrostatic")
    with pytest.raises(HybridError, match="unknown embedding 'polarisable'"):
        ligand_checker("ani2x", "polarisable")
    not_emle = tmp_path / "x.mat"
    not_emle.write_text("not a MATLAB file")
    with pytest.raises(ModelError, match=r"is not an EMLE .mat parameter file"):
        ligand_checker("ani2x", "electrostatic", emle_model=str(not_emle))(load_ligand("CO"))


@requires_ambertools
def test_charge_methods_recorded(tmp_path):
    assert main(["--quiet", "build", "--ligand", "CO", "--solvent", "vacuum", "--charge-method", "gas",
                 "--out", str(tmp_path / "gas")]) == 0
    info = json.loads((tmp_path / "gas" / "build.json").read_text())
    assert info["charge_method"] == "gas" and info["force_fields"]["ligand"] == "GAFF2 + Gasteiger"


def test_box_shape_auto():
    """The dodecahedron where its reduced box fits the cutoff (width / sqrt(2) >= 2 cutoff), else the cube."""
    point = [[0.0, 0.0, 0.0]]
    assert choose_box_shape(point, padding=1.0, cutoff=1.0) == "cube"  # width 2.0: 1.41 < 2
    assert choose_box_shape(point, padding=1.5, cutoff=1.0) == "dodecahedron"  # width 3.0: 2.12 >= 2
    protein = [[0.0, 0.0, 0.0], [4.0, 0.0, 0.0]]
    assert choose_box_shape(protein, padding=1.0, cutoff=1.0) == "dodecahedron"  # width 5.0


@requires_ambertools
def test_dodecahedron_by_default_where_it_fits(tmp_path):
    dodecahedron = build_system(ligand="CO", solvent="explicit", padding=1.5, ionic_strength=0.0, charge_method="gas")
    cube = build_system(ligand="CO", solvent="explicit", padding=1.5, ionic_strength=0.0, charge_method="gas",
                        box_shape="cube")
    assert dodecahedron.info["box_shape"] == "dodecahedron" and dodecahedron.info["box_shape_requested"] == "auto"
    box = np.array(dodecahedron.info["box_nm"])
    assert box[2, 0] == pytest.approx(0.5 * box[0, 0]) and box[2, 2] == pytest.approx(box[0, 0] / np.sqrt(2))
    # same edge (the same distance to the nearest periodic copy), 71% of the volume, as many fewer waters
    assert box[0, 0] == pytest.approx(np.array(cube.info["box_nm"])[0, 0])
    assert dodecahedron.info["n_waters"] / cube.info["n_waters"] == pytest.approx(np.sqrt(0.5), abs=0.04)
