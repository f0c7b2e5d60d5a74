"""Tests of the micrograph simulator."""

import numpy as np
import pytest

from cryopick.simulate import (
    DEMO_CONFIG,
    SUITE,
    SimulationConfig,
    make_demo,
    simulate_dataset,
    simulate_layers,
    simulate_micrograph,
    suite_configs,
)
from cryopick.simulate.ctf import ctf_values, ctf_zeros
from cryopick.simulate.projection import euler_to_matrix, matrix_to_euler, random_orientations

SMALL = SimulationConfig(shape=(256, 320), particles_per_micrograph=12, diameter_px=24, n_micrographs=2)


def test_deterministic_by_seed():
    a = simulate_micrograph(SMALL, 1)
    b = simulate_micrograph(SMALL, 1)
    c = simulate_micrograph(SMALL.evolve(seed=5), 1)
    d = simulate_micrograph(SMALL, 0)
    assert a.image.dtype == np.float32 and a.image.shape == (256, 320)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.truth.x, b.truth.x)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, d.image)
    assert np.all(np.isnan(a.truth.score))


@pytest.mark.parametrize("nuisances", [True, False])
def test_truth_inside_and_separated(nuisances):
    cfg = SMALL.evolve(nuisances=nuisances, particles_per_micrograph=30)
    mic = simulate_micrograph(cfg, 0)
    assert len(mic.truth) > 10
    assert np.all(mic.truth.inside(cfg.shape, margin=cfg.diameter_px / 2))
    d = np.hypot(*(mic.truth.xy[:, None, :] - mic.truth.xy[None, :, :]).transpose(2, 0, 1))
    d[np.diag_indices_from(d)] = np.inf
    assert d.min() >= cfg.diameter_px * cfg.min_distance - 1e-9
    assert mic.orientations.shape == (len(mic.truth), 3)
    assert list(mic.species) == [cfg.species] * len(mic.truth)


def test_particles_are_dark():
    for i in range(3):
        mic, layers = simulate_layers(SMALL.evolve(snr=0.05, nuisances=False), i)
        assert mic.image[layers.disk_mask].mean() < mic.image[~layers.disk_mask].mean()
        # With nuisances the background varies, but the particle signal itself stays negative.
        _, layers = simulate_layers(SMALL.evolve(snr=0.05), i)
        assert layers.signal[layers.disk_mask].mean() < layers.signal[~layers.disk_mask].mean()


def test_snr_definition():
    cfg = SMALL.evolve(nuisances=False, snr=0.3)
    mic, layers = simulate_layers(cfg, 0)
    signal = (mic.image - layers.offset) / layers.gain - layers.noise
    noise = (mic.image - layers.offset) / layers.gain - signal
    measured = np.mean(signal[layers.disk_mask] ** 2) / np.var(noise)
    assert measured == pytest.approx(0.3, rel=0.05)
    assert not np.any(layers.amplitude) and not np.any(layers.unlabelled)


def test_orientations_uniform_on_so3():
    rng = np.random.default_rng(0)
    angles = random_orientations(rng, 20000)
    m = euler_to_matrix(angles)
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", m, m), np.broadcast_to(np.eye(3), m.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-9)
    z = m[:, :, 2]  # rotated z axes
    assert np.abs(z.mean(axis=0)).max() < 0.03
    # For uniform directions, each component of a unit vector has E[v^2] = 1/3.
    np.testing.assert_allclose((z**2).mean(axis=0), 1 / 3, atol=0.02)
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(m[:50])), m[:50], atol=1e-9)


def test_ctf_zero_crossings():
    zeros = ctf_zeros(5, defocus_um=1.5)
    values = ctf_values(zeros, 0.0, defocus_u_um=1.5)
    np.testing.assert_allclose(values, 0.0, atol=1e-9)
    # Sign changes across each zero and negative contrast at low frequency.
    before = ctf_values(zeros * 0.995, 0.0, defocus_u_um=1.5)
    after = ctf_values(zeros * 1.005, 0.0, defocus_u_um=1.5)
    assert np.all(np.sign(before) != np.sign(after))
    assert ctf_values(0.0, 0.0, defocus_u_um=1.5) == pytest.approx(-0.07)
    assert ctf_values(0.5 * zeros[0], 0.0, defocus_u_um=1.5) < 0
    # Without Cs, the first zero is at sqrt((pi - phi) / (pi lambda df)).
    from cryopick.simulate.ctf import wavelength_a

    lam, phi = wavelength_a(300), np.arctan2(0.07, np.sqrt(1 - 0.07**2))
    k1 = ctf_zeros(1, defocus_um=2.0, cs_mm=0.0)[0]
    assert k1 == pytest.approx(np.sqrt((np.pi - phi) / (np.pi * lam * 2.0e4)))
    assert wavelength_a(300) == pytest.approx(0.01969, abs=1e-5)


def test_suite():
    assert len(SUITE) >= 8
    sizes = [sp.diameter_a for sp in SUITE.values()]
    assert len(set(sizes)) == len(sizes)
    for sp in SUITE.values():
        assert np.linalg.norm(sp.centers, axis=1).max() <= 1.0
        assert sp.weights.sum() == pytest.approx(1.0)
    configs = suite_configs(SimulationConfig(pixel_size_a=5.0))
    assert set(configs) == set(SUITE)
    assert configs["globular"].diameter_px == pytest.approx(SUITE["globular"].diameter_a / 5.0)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_species_renders(name):
    cfg = suite_configs(SimulationConfig(shape=(200, 200), particles_per_micrograph=3, pixel_size_a=8.0))[name]
    mic, layers = simulate_layers(cfg, 0)
    assert np.isfinite(mic.image).all() and len(mic.truth) == 3
    assert layers.signal[layers.disk_mask].mean() < 0


def test_dataset_files(tmp_path):
    import mrcfile
    import starfile

    ds = simulate_dataset(SMALL, tmp_path / "data")
    assert [p.name for p in ds.micrographs] == ["sim_0000.mrc", "sim_0001.mrc"]
    with mrcfile.open(ds.micrographs[0]) as mrc:
        assert mrc.data.dtype == np.float32 and mrc.data.shape == (256, 320)
        assert float(mrc.voxel_size.x) == pytest.approx(SMALL.pixel_size_a)
        np.testing.assert_array_equal(mrc.data, simulate_micrograph(SMALL, 0).image)
    table = starfile.read(ds.truth)
    for col in ("rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAngleRot", "rlnAngleTilt",
                "rlnAnglePsi", "cpSpecies"):
        assert col in table.columns
    assert set(table["rlnMicrographName"]) == {"sim_0000.mrc", "sim_0001.mrc"}
    mic = simulate_micrograph(SMALL, 1)
    sub = table[table["rlnMicrographName"] == "sim_0001.mrc"]
    np.testing.assert_allclose(sub["rlnCoordinateX"].to_numpy(), mic.truth.x)


def test_demo(tmp_path):
    import time

    start = time.perf_counter()
    ds = make_demo(tmp_path)
    assert time.perf_counter() - start < 5
    assert len(ds.micrographs) == DEMO_CONFIG.n_micrographs
    assert ds.config is DEMO_CONFIG


def test_fast_paths_match_reference():
    """The cached CTF grid and the separable upsampling agree with the direct formulas."""
    import scipy.ndimage

    from cryopick.simulate.ctf import ctf_rfft, rfft_frequencies
    from cryopick.simulate.micrograph import _carbon_box, _upsample

    kw = dict(defocus_u_um=1.6, defocus_v_um=1.55, astigmatism_angle_deg=37.0, b_factor=80.0)
    for shape in ((256, 320), (101, 77)):
        kx, ky = rfft_frequencies(shape, 4.0)
        np.testing.assert_allclose(ctf_rfft(shape, 4.0, **kw), ctf_values(kx, ky, **kw), atol=1e-5)
    coarse = np.random.default_rng(0).normal(size=(9, 13)).astype(np.float32)
    ref = scipy.ndimage.zoom(coarse, (200 / 9, 150 / 13), order=1, grid_mode=False)
    np.testing.assert_allclose(_upsample(coarse, (200, 150)), ref, atol=1e-5)
    # The carbon box holds every pixel within reach of the arc.
    shape, centre, hole_r = (300, 400), (-900.0, 150.0), 1150.0
    box = _carbon_box(shape, centre, hole_r, reach=24.0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    near = np.hypot(xx - centre[0], yy - centre[1]) - hole_r > -24.0
    inside = np.zeros(shape, bool)
    inside[box] = True
    assert near.any() and not np.any(near & ~inside)
    assert _carbon_box(shape, (200.0, 150.0), 5000.0, reach=24.0) is None


def test_demo_keeps_the_pre_calibration_simulator():
    from cryopick.simulate.config import PRE_CALIBRATION

    for key, value in PRE_CALIBRATION.items():
        assert getattr(DEMO_CONFIG, key) == getattr(SimulationConfig(**PRE_CALIBRATION), key) == value
    assert DEMO_CONFIG.structural_noise == 0 and SimulationConfig().structural_noise > 0


def test_structural_noise_keeps_the_snr_and_lies_in_the_particle_band():
    cfg = SMALL.evolve(nuisances=False, snr=0.3, shape=(256, 256))
    white = simulate_layers(cfg.evolve(structural_noise=0.0), 0)[1]
    coloured = simulate_layers(cfg.evolve(structural_noise=1.0, noise_b_factor=500.0), 0)[1]
    for layers in (white, coloured):
        assert layers.noise.std() == pytest.approx(layers.noise_sigma, rel=0.05)
        assert np.mean(layers.signal[layers.disk_mask] ** 2) / layers.noise_sigma**2 == pytest.approx(0.3, rel=1e-3)

    def low_fraction(x):  # power below a quarter of Nyquist
        p = np.abs(np.fft.rfft2(x)) ** 2
        ky = np.abs(np.fft.fftfreq(x.shape[0]))[:, None]
        kx = np.fft.rfftfreq(x.shape[1])[None, :]
        return p[np.hypot(kx, ky) < 0.125].sum() / p.sum()

    assert low_fraction(coloured.noise) > 3 * low_fraction(white.noise)
    with pytest.raises(Exception, match="structural_noise"):
        simulate_micrograph(cfg.evolve(structural_noise=1.5), 0)


@pytest.mark.parametrize("name", ["ribosome", "trpv1", "apoferritin"])
def test_analogues_render(name):
    from cryopick.simulate.suite import ANALOGUES, analogue_config

    cfg = analogue_config(name).evolve(shape=(300, 300), particles_per_micrograph=20)
    mic = simulate_micrograph(cfg, 0)
    assert np.isfinite(mic.image).all() and len(mic.truth) > 0
    assert ANALOGUES[name].species in SUITE
