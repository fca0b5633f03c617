"""Free-energy estimators on data with exactly known answers, and the settings files.

No simulation here: works and samples are drawn from distributions whose free-energy
difference is analytic, so a wrong estimator (a sign, a missing kT, a biased average,
one-sided exponential averaging where BAR is claimed) fails.
"""
import json

import numpy as np
import pytest

from openmm_hybrid.errors import FreeEnergyError, InsufficientOverlapError
from openmm_hybrid.freeenergy import estimators
from openmm_hybrid.freeenergy.estimators import FreeEnergy
from openmm_hybrid.freeenergy.settings import (EndstateSettings, HydrationSettings, apply_overrides, from_dict,
                                               load_settings, to_dict, write_settings)


def gaussian_works(delta_f, sigma, n, rng):
    """Forward/reverse works obeying the Crooks relation: W_F ~ N(dF + s^2/2, s^2), W_R ~ N(-dF + s^2/2, s^2)."""
    w_f = rng.normal(delta_f + 0.5 * sigma ** 2, sigma, n)
    w_r = rng.normal(-delta_f + 0.5 * sigma ** 2, sigma, n)
    return w_f, w_r


def test_bar_recovers_crooks_gaussian_works():
    rng = np.random.default_rng(2024)
    delta_f, sigma = 3.7, 2.0           # dissipation sigma^2/2 = 2 kT: the mean work is far off
    w_f, w_r = gaussian_works(delta_f, sigma, 400, rng)
    analysis = estimators.neq_analysis(w_f, w_r, 300.0)
    bar = analysis["estimate"]
    assert bar.error_kT < 0.2
    assert abs(bar.value_kT - delta_f) < 4 * bar.error_kT
    assert abs(np.mean(w_f) - delta_f) > 10 * bar.error_kT          # the naive estimate would fail
    assert analysis["dissipation_forward_kT"] == pytest.approx(2.0, abs=0.4)
    for key in ("jarzynski_forward", "jarzynski_reverse"):
        one_sided = analysis[key]
        assert abs(one_sided.value_kT - delta_f) < 4 * one_sided.error_kT + 0.3
    assert 0.05 < analysis["overlap"] < 0.5
    convergence = analysis["convergence"]
    assert convergence["fraction"][-1] == 1.0
    assert convergence["forward_kT"][-1] == pytest.approx(bar.value_kT)
    assert convergence["backward_kT"][-1] == pytest.approx(bar.value_kT)


def test_bar_with_a_large_constant_offset():
    """ANI-2x's reference energies put dF near -1e5 kT; the estimate must not lose precision."""
    rng = np.random.default_rng(7)
    w_f, w_r = gaussian_works(1.0, 1.0, 200, rng)
    small = estimators.bar(w_f, w_r)
    large = estimators.bar(w_f - 123456.0, w_r + 123456.0)
    assert large[0] + 123456.0 == pytest.approx(small[0], abs=1e-6)
    assert large[1] == pytest.approx(small[1], rel=1e-6)


def test_second_law_violation_is_flagged():
    rng = np.random.default_rng(4)
    w_f, w_r = gaussian_works(1.0, 0.5, 200, rng)
    assert estimators.neq_analysis(w_f, w_r, 300.0)["warnings"] == []
    shifted = estimators.neq_analysis(w_f - 0.3, w_r - 0.3, 300.0)   # <W_F> + <W_R> < 0: impossible in equilibrium
    assert "not equilibrated" in shifted["warnings"][0]


def test_no_overlap_of_works_is_an_error():
    rng = np.random.default_rng(3)
    w_f, w_r = gaussian_works(0.0, 12.0, 50, rng)
    with pytest.raises(InsufficientOverlapError, match="longer switches") as info:
        estimators.neq_analysis(w_f, w_r, 300.0, min_overlap=0.03)
    assert info.value.analysis["overlap"] < 0.03


def harmonic_windows(ks, n, dims, rng):
    """Exact samples of u_k(x) = k |x|^2 / 2 (kT units) in ``dims`` dimensions, and every u_k."""
    windows = []
    for k in ks:
        x = rng.normal(0.0, 1.0 / np.sqrt(k), (n, dims))
        r2 = (x ** 2).sum(axis=1)
        windows.append(0.5 * np.outer(r2, ks))
    return windows


def test_mbar_recovers_harmonic_free_energy():
    rng = np.random.default_rng(11)
    ks = np.array([1.0, 1.6, 2.5, 4.0])
    dims = 6
    exact = 0.5 * dims * np.log(ks[-1] / ks[0])      # -ln(Z_K/Z_0) = (d/2) ln(k_K/k_0)
    analysis = estimators.mbar_analysis(harmonic_windows(ks, 300, dims, rng), 300.0, decorrelate=True)
    mbar = analysis["estimate"]
    assert mbar.error_kT < 0.15
    assert abs(mbar.value_kT - exact) < 4 * mbar.error_kT
    assert analysis["delta_f_kT"][0] == 0.0
    expected = 0.5 * dims * np.log(ks / ks[0])
    assert np.allclose(analysis["delta_f_kT"], expected, atol=4 * max(analysis["delta_f_error_kT"]) + 1e-9)
    matrix = np.array(analysis["overlap_matrix"])
    assert np.allclose(matrix.sum(axis=1), 1.0)
    assert analysis["min_neighbour_overlap"] > 0.1


def test_mbar_without_overlap_names_the_windows_and_advises_more():
    rng = np.random.default_rng(5)
    ks = np.array([1.0, 400.0])
    with pytest.raises(InsufficientOverlapError) as info:
        estimators.mbar_analysis(harmonic_windows(ks, 100, 6, rng), 300.0, min_overlap=0.03,
                                 labels=["lambda=0", "lambda=1"])
    message = str(info.value)
    assert "lambda=0 and lambda=1" in message and "overlap matrix" in message and "add windows" in message
    assert info.value.analysis["min_neighbour_overlap"] < 0.03


def test_decorrelation_drops_correlated_samples():
    rng = np.random.default_rng(8)
    ks = np.array([1.0, 1.5])
    windows = harmonic_windows(ks, 400, 3, rng)
    correlated = [np.repeat(w[:100], 4, axis=0) for w in windows]   # each sample four times in a row
    kept, g = estimators.decorrelate_windows(correlated)
    assert all(gi > 2.5 for gi in g)
    assert all(len(w) <= 160 for w in kept)


def test_free_energy_units_and_combination():
    a = FreeEnergy(2.0, 0.3, 300.0)
    kT_kcal = 0.0019872043 * 300.0
    assert a.kcal_per_mol == pytest.approx(2.0 * kT_kcal, rel=1e-6)
    assert a.to_dict()["kJ_per_mol"] == pytest.approx(2.0 * 0.0083144626 * 300.0, rel=1e-6)
    b = FreeEnergy(0.5, 0.4, 300.0)
    assert (a - b).value_kT == pytest.approx(1.5)
    assert (a - b).error_kT == pytest.approx(0.5)
    with pytest.raises(FreeEnergyError, match="300"):
        a + FreeEnergy(1.0, 0.1, 310.0)


def test_settings_files_round_trip_and_errors(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("method: mbar\nneq:\n  n_switches: 20\nmbar:\n  lambdas: [0, 0.5, 1]\nseed: 42\n")
    settings = load_settings(EndstateSettings, path, ["simulation.timestep_fs=0.5"])
    assert settings.method == "mbar" and settings.neq.n_switches == 20 and settings.mbar.lambdas == [0.0, 0.5, 1.0]
    assert settings.simulation.timestep_fs == 0.5 and settings.neq.switch_steps == EndstateSettings().neq.switch_steps
    out = tmp_path / "written.yaml"
    write_settings(settings, out)
    assert load_settings(EndstateSettings, out) == settings
    json_path = tmp_path / "settings.json"
    json_path.write_text(json.dumps(to_dict(settings)))
    assert load_settings(EndstateSettings, json_path) == settings

    with pytest.raises(FreeEnergyError, match="unknown setting.*'neq.n_switch'.*n_switches"):
        from_dict(EndstateSettings, {"neq": {"n_switch": 3}})
    with pytest.raises(FreeEnergyError, match="'mbar.lambdas' must increase from 0 to 1"):
        load_settings(EndstateSettings, None, ["mbar.lambdas=[0, 0.7, 0.5, 1]"])
    with pytest.raises(FreeEnergyError, match="method"):
        load_settings(EndstateSettings, None, ["method=fep"])
    with pytest.raises(FreeEnergyError, match="integer"):
        load_settings(EndstateSettings, None, ["neq.n_switches=many"])
    with pytest.raises(FreeEnergyError, match="KEY=VALUE"):
        apply_overrides({}, ["neq.n_switches"])
    hydration = load_settings(HydrationSettings, None, ["ml=null", "alchemical.sterics_lambdas=[1.0, 0.5, 0.0]"])
    assert hydration.ml is None and hydration.alchemical.sterics_lambdas == [1.0, 0.5, 0.0]
