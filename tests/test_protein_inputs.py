"""Protein files as they come: crystal waters and ions, modified residues, protonation states, raw
structures (PDBFixer), mmCIF, ligands and cofactors taken from the structure with a template."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import pdbfixer
import pytest
from openmm import unit

from helpers import EXAMPLES, requires_ambertools
from openmm_hybrid.cli import main
from openmm_hybrid.errors import StructureError
from openmm_hybrid.mm import build_system
from openmm_hybrid.mm.structure_preparation import select_alternate_locations
from openmm_hybrid.testing import compute

INPUTS = EXAMPLES / "inputs"
PDBFIXER_DATA = Path(pdbfixer.__file__).parent / "tests" / "data"


def forces_of(system, kind):
    return [f for f in system.getForces() if isinstance(f, kind)]


# ----------------------------------------------------------------------------- waters and ions
@pytest.mark.parametrize("solvent", ["vacuum", "implicit", "explicit"])
def test_crystal_waters_and_ion_in_every_solvent(solvent, tmp_path):
    """Three crystal waters (oxygens only in the file) and a Na+ get their templates in every mode."""
    built = build_system(protein=INPUTS / "peptide-waters-ion.pdb", solvent=solvent, ligand_cache=False)
    report = built.reports["prep.json"]
    assert report["waters"] == {"in_file": 3, "kept": 3} and report["ions"] == {"NA": 1}
    counts = built.info["atom_counts"]
    assert counts["protein"] == 42
    if solvent == "explicit":
        assert counts["water"] > 9 and built.info["box_shape"] == "cube"
    else:
        assert counts["water"] == 9 and counts["ions"] == 1  # the waters got their hydrogens
        assert built.info["crystal_waters"] == 3
    assert abs(built.info["system_charge"]) < 1e-6  # CYM (-1) + Na+ (+1)
    if solvent == "implicit":
        assert len(forces_of(built.system, openmm.GBSAOBCForce)) == 1
    energy, _ = compute(built.system, built.positions, "Reference", built.topology.getPeriodicBoxVectors())
    assert np.isfinite(energy)
    removed = build_system(protein=INPUTS / "peptide-waters-ion.pdb", solvent="vacuum", remove_waters=True)
    assert removed.info["atom_counts"]["water"] == 0 and removed.reports["prep.json"]["waters"]["kept"] == 0


# ----------------------------------------------------------------------------- modified residues
def test_modified_residue_refused_by_chain_and_file_number(tmp_path, capsys):
    with pytest.raises(StructureError, match=r"has residues without a force-field template: TPO 3 \(chain A\) "
                                             r"\(17 atoms\)\..*--forcefield FILE.xml"):
        build_system(protein=INPUTS / "phosphopeptide.pdb", solvent="vacuum")
    assert main(["build", "--protein", str(INPUTS / "phosphopeptide.pdb"), "--solvent", "vacuum",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "TPO 3 (chain A)" in err and "--cofactor FILE_OR_SMILES:TPO" in err and "Traceback" not in err


@requires_ambertools
def test_phosphothreonine_template_file_matches_tleap(tmp_path):
    """examples/inputs/tpo.xml with amber14 gives the energy AmberTools' own phosaa14SB gives (tleap prmtop)."""
    built = build_system(protein=INPUTS / "phosphopeptide.pdb", solvent="vacuum",
                         forcefield_files=[str(INPUTS / "tpo.xml")], constraints=None)
    assert built.info["atom_counts"]["protein"] == 49 and round(built.info["system_charge"], 6) == -2.0
    leap = tmp_path / "leap.in"
    leap.write_text("source leaprc.protein.ff14SB\nsource leaprc.phosaa14SB\n"
                    "p = sequence { ACE ALA TPO ALA NME }\nsaveamberparm p p.prmtop p.inpcrd\nquit\n")
    subprocess.run([shutil.which("tleap"), "-f", "leap.in"], cwd=tmp_path, capture_output=True, check=True)
    reference = app.AmberPrmtopFile(str(tmp_path / "p.prmtop")).createSystem(nonbondedMethod=app.NoCutoff)
    # same atom order (the PDB was written from tleap's topology); both in the same positions
    e_ref, f_ref = compute(reference, built.positions)
    e, f = compute(built.system, built.positions)
    # prmtop files store angles in degrees with 4 decimals (and charges scaled by 18.2223 in %16.8E):
    # about 1e-3 kJ/mol on this 49-atom peptide; forces to the same rounding
    assert e == pytest.approx(e_ref, abs=5e-3)
    assert np.abs(f - f_ref).max() < 0.5


def test_modified_residue_gets_hydrogens_from_its_template(tmp_path):
    """A raw file (no hydrogens at all): TPO gets its hydrogens from tpo.xml's template."""
    structure = app.PDBFile(str(INPUTS / "phosphopeptide.pdb"))
    modeller = app.Modeller(structure.topology, structure.positions)
    modeller.delete([a for a in modeller.topology.atoms() if a.element.symbol == "H"])
    raw = tmp_path / "raw.pdb"
    with open(raw, "w") as handle:
        app.PDBFile.writeFile(modeller.topology, modeller.positions, handle, keepIds=True)
    built = build_system(protein=raw, solvent="vacuum", forcefield_files=[str(INPUTS / "tpo.xml")])
    tpo = [r for r in built.topology.residues() if r.name == "TPO"][0]
    assert sorted(a.name for a in tpo.atoms() if a.element.symbol == "H") == ["H", "HA", "HB", "HG21", "HG22",
                                                                               "HG23"]
    assert built.info["atom_counts"]["total"] == 49 and built.info["system_charge"] == pytest.approx(-2.0, abs=1e-6)


# ----------------------------------------------------------------------------- protonation
def test_thiolate_kept_and_reported(tmp_path):
    built = build_system(protein=INPUTS / "thiolate-peptide.pdb", solvent="vacuum")
    assert built.reports["prep.json"]["protonation"] == [
        {"residue": "CYS 3 (chain A)", "form": "CYM", "how": "kept from the file"}]
    assert not [a for a in built.topology.atoms() if a.name == "HG"]
    assert built.info["system_charge"] == pytest.approx(-1.0, abs=1e-6)
    again = build_system(protein=INPUTS / "thiolate-peptide.pdb", solvent="vacuum", keep_hydrogens=False)
    assert again.reports["prep.json"]["protonation"] == [
        {"residue": "CYS 3 (chain A)", "form": "CYS", "how": "changed from CYM at pH 7"}]
    assert again.info["system_charge"] == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- raw structures
def raw_fragment(path: Path) -> Path:
    """A raw piece of pdbfixer's 1BHL (HIV integrase): residues 59-75 with 69-70 removed (a gap
    inside the chain), ILE 60 without CD1, the cacodylated cysteine CAS 65, three crystal waters,
    and SEQRES records (which start at 57: residues 57-58 and those after 75 are missing terminal
    residues)."""
    lines, waters = [], 0
    for line in (PDBFIXER_DATA / "1BHL.pdb").read_text().splitlines():
        if line.startswith(("ATOM", "HETATM")):
            name, number = line[17:20], int(line[22:26])
            if name == "HOH":
                if waters == 0:
                    lines.append("TER")
                if waters < 3 and line[21] == "A":
                    lines.append(line)
                    waters += 1
            elif 59 <= number <= 75 and number not in (69, 70) and not (number == 60 and line[12:16].strip() == "CD1"):
                lines.append(line)
        elif line.startswith(("HEADER", "SEQRES", "CRYST1")):
            lines.append(line)
    path.write_text("\n".join(lines) + "\nEND\n")
    return path


def test_raw_structure_prepared_and_built(tmp_path):
    raw = raw_fragment(tmp_path / "raw.pdb")
    with pytest.raises(StructureError, match=r"CAS 65 \(chain A\).*\(CAS -> CYS\): --prepare replaces it"):
        build_system(protein=raw, solvent="vacuum")
    assert main(["--quiet", "build", "--protein", str(raw), "--prepare", "--solvent", "vacuum",
                 "--out", str(tmp_path / "built")]) == 0
    prep = json.loads((tmp_path / "built" / "prep.json").read_text())["preparation"]
    assert prep["missing_residues_added"] == [{"chain": "A", "where": "after LEU 68 (chain A)",
                                               "residues": ["GLU", "GLY"]}]
    assert [g["where"] for g in prep["missing_termini_left_out"]] == ["before GLY 59 (chain A)",
                                                                      "after VAL 75 (chain A)"]
    assert prep["nonstandard_replaced"] == [{"residue": "CAS 65 (chain A)", "by": "CYS"}]
    assert prep["missing_atoms_added"] == [{"residue": "ILE 60 (chain A)", "atoms": ["CD1"]}]
    assert prep["missing_terminal_atoms_added"] == [{"residue": "VAL 75 (chain A)", "atoms": ["OXT"]}]
    info = json.loads((tmp_path / "built" / "build.json").read_text())
    assert info["crystal_waters"] == 3
    top = app.PDBFile(str(tmp_path / "built" / "topology.pdb")).topology
    assert [r.name for r in top.residues()][9:12] == ["LEU", "GLU", "GLY"]  # the gap after LEU 68 is filled


def test_missing_heavy_atom_refused_naming_the_residue_and_prepare(tmp_path):
    lines = [line for line in (INPUTS / "thiolate-peptide.pdb").read_text().splitlines()
             if not (line.startswith("ATOM") and line[17:20] == "ALA" and line[22:26].strip() == "2"
                     and line[12:16].strip() in ("CB", "HB1", "HB2", "HB3"))]
    broken = tmp_path / "no-cb.pdb"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(StructureError, match=r"cannot add hydrogens to protein file '.*no-cb.pdb': residue ALA 2 "
                                             r"\(chain A\): it is probably missing heavy atoms: --prepare"):
        build_system(protein=broken, solvent="vacuum")
    assert build_system(protein=broken, solvent="vacuum", prepare=True).reports["prep.json"]["preparation"][
        "missing_atoms_added"] == [{"residue": "ALA 2 (chain A)", "atoms": ["CB"]}]


def test_pdbfixer_failure_is_refused_naming_the_file(tmp_path, monkeypatch):
    raw = raw_fragment(tmp_path / "raw.pdb")

    def broken(self, seed=None):
        raise ValueError("no room for the loop")

    monkeypatch.setattr(pdbfixer.PDBFixer, "addMissingAtoms", broken)
    with pytest.raises(StructureError, match=r"PDBFixer cannot repair '.*raw.pdb': ValueError: no room for the loop; "
                                             r"repair the structure by hand"):
        build_system(protein=raw, solvent="vacuum", prepare=True)


def with_alternate_locations(pdb_text: str) -> str:
    """Give ALA 2's CB two locations: A (occupancy 0.3) and B (0.7, moved by 0.5 A in x)."""
    out = []
    for line in pdb_text.splitlines():
        if line.startswith(("ATOM", "HETATM")) and line[17:20] == "ALA" and line[22:26].strip() == "2" \
                and line[12:16].strip() == "CB":
            x = float(line[30:38])
            out.append(line[:16] + "A" + line[17:54] + "  0.30" + line[60:])
            out.append(line[:16] + "B" + line[17:30] + f"{x + 0.5:8.3f}" + line[38:54] + "  0.70" + line[60:])
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def test_alternate_locations_highest_occupancy_pdb_and_mmcif(tmp_path):
    source = (INPUTS / "thiolate-peptide.pdb").read_text()
    pdb = tmp_path / "alt.pdb"
    pdb.write_text(with_alternate_locations(source))
    text, choices = select_alternate_locations(pdb)
    assert choices == [{"residue": "ALA 2 (chain A)", "kept": "B", "occupancy": 0.7, "dropped": {"A": 0.3}}]
    cb = [line for line in text.splitlines() if line[12:16].strip() == "CB" and line[17:20] == "ALA"
          and line[22:26].strip() == "2"]
    original_x = float([line for line in source.splitlines() if line[12:16].strip() == "CB"
                        and line[17:20] == "ALA" and line[22:26].strip() == "2"][0][30:38])
    assert len(cb) == 1 and cb[0][16] == " " and float(cb[0][30:38]) == pytest.approx(original_x + 0.5)

    # mmCIF: the same structure written by OpenMM, with the two locations as atom_site rows
    structure = app.PDBFile(str(INPUTS / "thiolate-peptide.pdb"))
    cif = tmp_path / "alt.cif"
    with open(cif, "w") as handle:
        app.PDBxFile.writeFile(structure.topology, structure.positions, handle, keepIds=True)
    rows = cif.read_text().splitlines()
    header = [line.split(".", 1)[1].strip() for line in rows if line.startswith("_atom_site.")]
    alt, occ, x = header.index("label_alt_id"), header.index("occupancy"), header.index("Cartn_x")
    edited = []
    for line in rows:
        fields = line.split()
        if line.startswith(("ATOM", "HETATM")) and fields[header.index("label_atom_id")] == "CB" and \
                fields[header.index("auth_seq_id")] == "2":
            a, b = list(fields), list(fields)
            a[alt], a[occ] = "A", "0.30"
            b[alt], b[occ], b[x] = "B", "0.70", f"{float(fields[x]) + 0.5:.4f}"
            edited += [" ".join(a), " ".join(b)]
        else:
            edited.append(line)
    cif.write_text("\n".join(edited) + "\n")
    assert main(["--quiet", "build", "--protein", str(cif), "--prepare", "--solvent", "vacuum",
                 "--out", str(tmp_path / "cif-built")]) == 0
    prep = json.loads((tmp_path / "cif-built" / "prep.json").read_text())
    assert prep["preparation"]["alternate_locations"] == [
        {"residue": "ALA 2 (chain A)", "kept": "B", "occupancy": 0.7, "dropped": {"A": 0.3}}]
    built = app.PDBFile(str(tmp_path / "cif-built" / "topology.pdb"))
    cb = [a for a in built.topology.atoms() if a.name == "CB" and a.residue.id == "2"][0]
    assert built.positions[cb.index].x * 10 == pytest.approx(original_x + 0.5, abs=2e-3)


def test_mmcif_input_without_preparation(tmp_path):
    structure = app.PDBFile(str(INPUTS / "peptide-waters-ion.pdb"))
    cif = tmp_path / "peptide.cif"
    with open(cif, "w") as handle:
        app.PDBxFile.writeFile(structure.topology, structure.positions, handle, keepIds=True)
    built = build_system(protein=cif, solvent="vacuum")
    assert built.info["atom_counts"]["protein"] == 42 and built.reports["prep.json"]["waters"]["kept"] == 3


# ----------------------------------------------------------------------------- ligand from the complex
COMPLEX = INPUTS / "peptide-pxylene-complex.pdb"


def test_ligand_taken_from_the_complex_with_a_smiles_template(tmp_path):
    assert main(["--quiet", "build", "--protein", str(COMPLEX), "--ligand-resname", "PXY", "--ligand-template",
                 "Cc1ccc(C)cc1", "--solvent", "vacuum", "--charge-method", "gas", "--out", str(tmp_path / "b")]) == 0
    info = json.loads((tmp_path / "b" / "build.json").read_text())
    assert info["ligand"]["resname"] == "PXY" and info["ligand"]["n_atoms"] == 18 and info["ligand"]["net_charge"] == 0
    assert info["atom_counts"]["ligand"] == 18 and info["atom_counts"]["protein"] == 42
    top = app.PDBFile(str(tmp_path / "b" / "topology.pdb"))
    ligand = [r for r in top.topology.residues() if r.name == "PXY"]
    assert len(ligand) == 1
    heavy_file = app.PDBFile(str(COMPLEX))
    heavy_in = {a.name: heavy_file.positions[a.index] for a in heavy_file.topology.atoms() if a.residue.name == "PXY"}
    heavy_out = {a.name: top.positions[a.index] for a in ligand[0].atoms() if a.element.symbol == "C"}
    assert set(heavy_out) == set(heavy_in)  # the file's heavy atoms, names and coordinates kept
    assert max(abs((heavy_out[n] - heavy_in[n]).value_in_unit(unit.angstrom)[k]) for n in heavy_in
               for k in range(3)) < 1e-3
    hydrogens = [a for a in ligand[0].atoms() if a.element.symbol == "H"]
    assert len(hydrogens) == 10
    bonded = {a: b for a, b in top.topology.bonds() if a in hydrogens} | \
        {b: a for a, b in top.topology.bonds() if b in hydrogens}
    lengths = [np.linalg.norm(np.array(top.positions[h.index].value_in_unit(unit.angstrom))
                              - np.array(top.positions[bonded[h].index].value_in_unit(unit.angstrom))) for h in hydrogens]
    assert 1.0 < min(lengths) and max(lengths) < 1.15  # C-H bonds placed with coordinates


@pytest.mark.parametrize("template, message", [
    ("Cc1ccccc1", r"residue PXY 201 \(chain B\) has 8 heavy atoms \(C8\), the template 'Cc1ccccc1' has 7 \(C7\)"),
    ("Cc1ccc(O)cc1", r"the elements of residue PXY 201 \(chain B\) \(C8\) differ from those of the template "
                     r"'Cc1ccc\(O\)cc1' \(C7O\)"),
    ("Cc1cccc(C)c1", r"the connectivity of residue PXY 201 \(chain B\) differs from the template 'Cc1cccc\(C\)c1': "
                     r"the residue has 8 bonds between heavy atoms \(inferred from distances\), the template 8; "
                     r"same neighbour counts, different bonding pattern"),
    ("CCCCCCCC", r"the connectivity of residue PXY 201 \(chain B\) differs .* atoms by neighbour count that are not "
                 r"in both: .*C with 3 heavy neighbours"),
])
def test_template_mismatch_names_what_differs(template, message):
    with pytest.raises(StructureError, match=message):
        build_system(protein=COMPLEX, ligand_resname="PXY", ligand_template=template, solvent="vacuum")


def test_unknown_residue_refused_and_given_as_cofactor(tmp_path):
    with pytest.raises(StructureError, match=r"PXY 201 \(chain B\) \(8 atoms\)\. Give each one a template: a small "
                                             r"molecule kept in MM \(cofactor, second ligand\): --cofactor "
                                             r"FILE_OR_SMILES:PXY"):
        build_system(protein=COMPLEX, solvent="vacuum")
    built = build_system(protein=COMPLEX, cofactors=["Cc1ccc(C)cc1"], solvent="vacuum", charge_method="gas")
    assert built.info["atom_counts"]["cofactors"] == 18 and built.info["atom_counts"]["ligand"] == 0
    assert built.info["cofactors"] == [{"name": "PXY 201 (chain B)", "resname": "PXY", "net_charge": 0, "n_atoms": 18}]
    # the cofactor is not the ML region: its X-H bonds are constrained like the protein's
    cofactor = {a.index for a in built.topology.atoms() if a.residue.name == "PXY"}
    pairs = [built.system.getConstraintParameters(i)[:2] for i in range(built.system.getNumConstraints())]
    assert len([p for p in pairs if set(p) <= cofactor]) == 10
    with pytest.raises(StructureError, match=r"cofactor 'CCO': no residue name of '.*' has its heavy atoms"):
        build_system(protein=COMPLEX, cofactors=["CCO"], solvent="vacuum")
    with pytest.raises(StructureError, match=r"no residue named XYZ"):
        build_system(protein=COMPLEX, cofactors=["Cc1ccc(C)cc1:XYZ"], solvent="vacuum")


# ----------------------------------------------------------------------------- whole raw structures
ADP = "Nc1ncnc2c1ncn2[C@@H]1O[C@H](COP(=O)([O-])OP(=O)([O-])[O-])[C@@H](O)[C@H]1O"


@pytest.mark.slow
def test_pdbfixer_1bhl_prepared_and_built(tmp_path):
    """HIV integrase core (1BHL): a 16-residue loop, two CAS, 53 crystal waters."""
    built = build_system(protein=PDBFIXER_DATA / "1BHL.pdb", solvent="implicit", prepare=True)
    prep = built.reports["prep.json"]
    assert [len(g["residues"]) for g in prep["preparation"]["missing_residues_added"]] == [16]
    assert [r["by"] for r in prep["preparation"]["nonstandard_replaced"]] == ["CYS", "CYS"]
    assert prep["waters"]["kept"] == 53
    energy, _ = compute(built.system, built.positions, "CPU")
    assert np.isfinite(energy)


def mlst8_with_cofactors(path: Path) -> Path:
    """pdbfixer's 4JSV (mTOR-mLST8 with ADP, two Mg2+ and MgF3-) cut to chain D (mLST8, 317 residues,
    missing residues only at its ends) and chain B's ligands: the whole complex has 52- and
    55-residue loops missing inside mTOR, whose modelling takes PDBFixer over 20 CPU minutes."""
    lines = []
    for line in (PDBFIXER_DATA / "4JSV.pdb").read_text().splitlines():
        if line.startswith(("ATOM", "HETATM")):
            if line[21] == "D":
                lines.append(line)
            elif line[21] == "B" and int(line[22:26]) >= 2601:
                if not any(x.startswith("TER") for x in lines):
                    lines.append("TER")
                lines.append(line)
        elif line.startswith("SEQRES") and line[11] == "D" or line.startswith(("HEADER", "CRYST1")):
            lines.append(line)
    path.write_text("\n".join(lines) + "\nEND\n")
    return path


@pytest.mark.slow
def test_pdbfixer_4jsv_refused_then_prepared_and_built(tmp_path):
    """4JSV: ADP and MgF3- are refused before PDBFixer runs; mLST8 with ADP as a cofactor (Gasteiger
    charges), the Mg2+ ions kept and MgF3- removed is prepared and built."""
    with pytest.raises(StructureError, match=r"ADP 2601 \(chain B\), ADP 2601 \(chain A\) \(27 atoms\); MGF 2604 "
                                             r"\(chain B\), MGF 2604 \(chain A\) \(4 atoms\)"):
        build_system(protein=PDBFIXER_DATA / "4JSV.pdb", solvent="vacuum", prepare=True)
    built = build_system(protein=mlst8_with_cofactors(tmp_path / "mlst8.pdb"), solvent="vacuum", prepare=True,
                         cofactors=[ADP + ":ADP"], remove_residues=["MGF"], charge_method="gas")
    prep = built.reports["prep.json"]
    assert [len(g["residues"]) for g in prep["preparation"]["missing_termini_left_out"]] == [7, 2]
    assert built.info["cofactors"][0]["n_atoms"] == 39 and built.info["cofactors"][0]["net_charge"] == -3
    assert prep["removed"] == ["MGF x1"] and prep["ions"] == {"MG": 2}
    energy, _ = compute(built.system, built.positions, "CPU")
    assert np.isfinite(energy)
