"""Multi-data-set training (§4.3) on simulated species: it learns (beats an untrained model by a wide margin),
resumes after a kill, and the picker uses its model zero-shot and trains a few-shot head on it."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick.host import build_host  # noqa: E402
from cryopick.metrics import evaluate  # noqa: E402
from cryopick.pickers import make_picker  # noqa: E402
from cryopick.simulate import SimulationConfig, simulate_micrograph  # noqa: E402

TINY_NET = {"trunk_channels": "8", "trunk_groups": "4", "blocks": "1", "head_widths": "8,16,16,16",
            "head_groups": "4", "dropout": "0.0", "crop": "96", "batch": "4", "tile": "256", "margin": "32"}
HOST = build_host()


def _species(species: str, seed: int, n: int = 3):
    config = SimulationConfig(shape=(192, 192), n_micrographs=n, particles_per_micrograph=14, species=species,
                              diameter_px=22.0, snr=1.0, seed=seed, nuisances=False)
    return [simulate_micrograph(config, i) for i in range(n)]


def _picker(**extra):
    return make_picker(HOST, "hydra", {**TINY_NET, "checkpoint": "none", **extra}, device="cpu", seed=0)


def _datasets(picker, rng):
    from cryopick_hydra.train import make_dataset

    out = []
    for k, species in enumerate(("globular", "asymmetric")):
        mics = _species(species, 11 + k)
        out.append(make_dataset(species, [(m.image, m.truth) for m in mics], 22.0, 96, rng, validation=1))
    return out


def _ap(net, head, mics):
    from cryopick_hydra.inference import pick_image

    cands = {str(i): pick_image(net, m.image, head, 22.0, tile=256, margin=32) for i, m in enumerate(mics)}
    truth = {str(i): m.truth for i, m in enumerate(mics)}
    return evaluate(cands, truth, diameter_px=22.0, candidates=cands).average_precision


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from cryopick_hydra.multitrain import MultiTrainSettings, train_multi

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("hydra") / "model.h5"
    picker = _picker()
    settings = MultiTrainSettings(phase1_steps=160, phase2_steps=20, crop=96, batch=4, phase1_lr=3e-3,
                                  phase2_lr=1e-3, restart_steps=160, eval_every=90, float16=True)
    state = train_multi(picker, _datasets(picker, np.random.default_rng(0)), out, settings, record={"test": 1})
    return out, state


def test_multidataset_training_beats_an_untrained_model(trained):
    from cryopick.weights import load_weights
    from cryopick_hydra.model import hydra_net, net_from_state

    out, state = trained
    saved = load_weights(out)
    assert saved.config["kind"] == "cryopick-hydra/model" and saved.config["test"] == 1
    assert set(saved.config["heads"]) == {"generic", "globular", "asymmetric"}  # phase 2's heads
    assert all(v.dtype == np.float16 for k, v in saved.arrays.items() if "weight" in k)
    assert [d["name"] for d in saved.config["trained_on"]] == ["globular", "asymmetric"]
    assert np.isfinite(saved.config["threshold"])  # the generic head's best-F1 logit on the validation sets
    unseen = _species("dumbbell", 99, n=2)  # a species neither head saw
    torch.manual_seed(0)
    untrained = hydra_net(**{k: saved.config["architecture"][k] for k in saved.config["architecture"]})
    net = net_from_state(saved.arrays, saved.config["architecture"])
    before, after = _ap(untrained, "generic", unseen), _ap(net, "generic", unseen)
    assert after > before + 0.3, (before, after)


def test_training_resumes_from_its_checkpoint(tmp_path):
    from cryopick.weights import load_weights
    from cryopick_hydra.multitrain import MultiTrainSettings, resume_path, train_multi

    picker = _picker()
    data = _datasets(picker, np.random.default_rng(0))
    out = tmp_path / "m.h5"
    settings = MultiTrainSettings(phase1_steps=4, phase2_steps=2, crop=96, batch=2, eval_every=2)

    class Killed(Exception):
        pass

    import cryopick_hydra.multitrain as mt

    calls = []
    real = mt.validate

    def dying(*args, **kwargs):  # killed during the second validation of phase 1 (after step 4's)
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return real(*args, **kwargs)

    mt.validate = dying
    try:
        with pytest.raises(Killed):
            train_multi(picker, data, out, settings)
    finally:
        mt.validate = real
    saved = load_weights(resume_path(out))
    assert saved.config["phase"] == 1 and saved.config["step"] == 2
    state = train_multi(picker, data, out, settings)  # continues at step 2
    assert [(e["phase"], e["step"]) for e in state.config["evaluations"]] == [(1, 2), (1, 4), (2, 2)]
    assert not resume_path(out).exists()


def test_zero_shot_without_a_model_says_what_to_do(monkeypatch):
    import cryopick_hydra.picker as hp
    from cryopick.errors import ConfigError
    from cryopick.picker import TrainingData, TrainingItem

    monkeypatch.setattr(hp, "BUILTIN_FILE", "not-installed.h5")  # an installation without the shipped model
    picker = make_picker(HOST, "hydra", {}, device="cpu", seed=0)
    assert not picker.needs_labels
    image = np.zeros((64, 64), np.float32)
    with pytest.raises(ConfigError, match=r"--set checkpoint=FILE.*cryopick hydra train"):
        picker.train(TrainingData([TrainingItem("m", image, None)], 22.0))


def test_picker_zero_shot_and_few_shot_with_a_trained_model(trained):
    from cryopick.picker import TrainingData, TrainingItem

    out, _ = trained
    mics = _species("dumbbell", 5, n=2)
    zero = _picker(checkpoint=str(out))
    state = zero.train(TrainingData([TrainingItem("a", mics[0].image, None)], 22.0))
    assert state.config["head"] == "generic" and zero.facts()["hydra model"] == str(out)
    assert zero.default_threshold == f"fixed:{state.config['info']['threshold']:.4g}"
    cands = zero.score(mics[1].image, 22.0)
    assert len(cands) > 0 and np.all(cands.inside(mics[1].image.shape))
    generic = {k: v.copy() for k, v in state.arrays.items()}

    few = _picker(checkpoint=str(out), steps="5")
    state = few.train(TrainingData([TrainingItem("a", mics[0].image, mics[0].truth)], 22.0))
    assert state.config["head"] == "few-shot" and set(state.config["heads"]) == {"generic", "few-shot"}
    # trunk and generic head frozen (§4.7), the new head trained
    for k, v in generic.items():
        np.testing.assert_array_equal(state.arrays[k], v)
    changed = [k for k in state.arrays if k.startswith("heads.few-shot.") and
               not np.array_equal(state.arrays[k], state.arrays[k.replace("few-shot", "generic")])]
    assert changed
    again = _picker(checkpoint=str(out))
    again.load(state)
    assert again.head == "few-shot" and len(again.score(mics[1].image, 22.0)) > 0


def test_tiled_scoring_covers_every_cell_with_bounded_tiles():
    from cryopick_hydra.inference import score_grid
    from cryopick_hydra.model import hydra_net

    net = hydra_net(trunk_channels=4, trunk_groups=2, blocks=1, head_widths=(4, 4, 4, 4), head_groups=2)
    image = np.random.default_rng(0).normal(size=(200, 300)).astype(np.float32)
    seen = []
    forward = net.forward
    net.forward = lambda x, head="generic": (seen.append(tuple(x.shape[-2:])), forward(x, head))[1]
    logits, centres = score_grid(net, image, "generic", tile=64, margin=32)
    assert logits.shape == (13, 19) and centres.shape == (13, 19, 2) and np.isfinite(logits).all()
    assert set(seen) == {(128, 128)}  # every tile 64 px + two 32 px margins, whatever the image


def test_demo_run_picks_zero_shot_with_a_model(trained, tmp_path):
    from cryopick.pipeline import RunOptions, run_pipeline

    out, _ = trained
    summary = run_pipeline(RunOptions(picker="hydra", out=tmp_path / "out", device="cpu",
                                      settings={"checkpoint": str(out), "tile": "256"}))
    # no labels: every demo micrograph is picked and evaluated against its truth
    assert summary["micrographs"] == 6 and summary["model"]["hydra head"] == "generic"
    assert summary["evaluation"]["n_truth"] == 6 * 40 and summary["evaluation"]["recall"] is not None


def test_training_continues_from_a_model(trained, tmp_path):
    """``init`` (``cryopick hydra train --init``): training starts from the model's trunk and generic head."""
    from cryopick.weights import load_weights
    from cryopick_hydra.multitrain import MultiTrainSettings, train_multi

    out, _ = trained
    init = load_weights(out)
    picker = _picker(trunk_channels="4")  # ignored: the architecture is the model's
    data = _datasets(picker, np.random.default_rng(1))
    state = train_multi(picker, data, tmp_path / "more.h5", MultiTrainSettings(phase1_steps=0, phase2_steps=0),
                        init=init)
    assert state.config["architecture"] == init.config["architecture"]
    assert state.config["init"]["fingerprint"] and state.config["init"]["trained_on"] == init.config["trained_on"]
    kept = [k for k in init.arrays if k.startswith("trunk.") or k.startswith("heads.generic.")]
    assert kept and sorted(state.arrays) == sorted(kept)
    for k in kept:  # no steps: exactly the model it started from
        np.testing.assert_array_equal(state.arrays[k], init.arrays[k])
    steps = MultiTrainSettings(phase1_steps=2, phase2_steps=0, crop=96, batch=2, eval_every=0)
    moved = train_multi(picker, data, tmp_path / "more2.h5", steps, init=init)
    assert any(not np.array_equal(moved.arrays[k], init.arrays[k]) for k in kept)


def test_augmented_grid_is_exactly_rotation_equivariant():
    """tta=4: each cell's logit and centre are the mean over the four quarter turns, so turning the micrograph
    turns the grid and its centres with it; one pass is not equivariant."""
    from cryopick_hydra.inference import augmented_score_grid, score_grid
    from cryopick_hydra.model import hydra_net

    torch.manual_seed(0)
    net = hydra_net(trunk_channels=4, trunk_groups=2, blocks=1, head_widths=(4, 4, 4, 4), head_groups=2)
    image = np.random.default_rng(0).normal(size=(64, 96)).astype(np.float32)
    turned = np.ascontiguousarray(np.rot90(image))  # (96, 64): pixel (r, c) of turned is image[c, 95 - r]

    def in_original(lg, xy):  # a grid of the turned image expressed in the original frame
        return np.rot90(lg, -1), np.stack([95 - xy[..., 1], xy[..., 0]], axis=-1)[::-1].transpose(1, 0, 2)

    for n, equivariant in ((1, False), (4, True)):
        lg, xy = augmented_score_grid(net, image, "generic", n, tile=64, margin=32)
        lg_t, xy_t = augmented_score_grid(net, turned, "generic", n, tile=64, margin=32)
        back_lg, back_xy = in_original(lg_t, xy_t)
        assert lg.shape == (4, 6) and xy.shape == (4, 6, 2)
        assert np.allclose(back_lg, lg, atol=1e-5) == equivariant
        if equivariant:
            np.testing.assert_allclose(back_xy, xy, atol=1e-4)
    np.testing.assert_array_equal(augmented_score_grid(net, image, "generic", 1, tile=64, margin=32)[0],
                                  score_grid(net, image, "generic", tile=64, margin=32)[0])




def test_few_shot_cut_picks_as_many_as_the_generic_head(trained):
    """A few-shot head whose logits are the generic head's minus 2 gets the generic cut-off minus 2: the cut at
    which it picks as many particles on the labelled micrographs as the generic head does."""
    from cryopick.weights import load_weights
    from cryopick_hydra.inference import pick_image
    from cryopick_hydra.model import GENERIC, net_from_state
    from cryopick_hydra.picker import FEW_SHOT

    out, _ = trained
    model = load_weights(out)
    net = net_from_state(model.arrays, model.config["architecture"], [GENERIC])
    net.add_head(FEW_SHOT, GENERIC)
    with torch.no_grad():
        net.heads[FEW_SHOT].out.bias[0] -= 2.0
    mics = _species("dumbbell", 5, n=2)
    picker = _picker(checkpoint=str(out))
    generic = pick_image(net, mics[0].image, GENERIC, 22.0, tile=picker.config.tile, margin=picker.config.margin)
    cut = float(np.median(generic.score))  # half the candidates of each micrograph above it
    matched = picker._matched_cut(net, [m.image for m in mics], 22.0, cut)
    assert matched == pytest.approx(cut - 2.0, abs=0.05)
    few = pick_image(net, mics[0].image, FEW_SHOT, 22.0, tile=picker.config.tile, margin=picker.config.margin)
    assert abs(int((few.score > matched).sum()) - int((generic.score > cut).sum())) <= 1


def _background_points(truth, shape, diameter, n, rng):
    """``n`` points at least a diameter from every particle, from each other and from the edge."""
    points = []
    while len(points) < n:
        p = rng.uniform(diameter, np.asarray(shape[::-1]) - diameter)
        others = np.concatenate([truth.xy, np.asarray(points).reshape(-1, 2)])
        if np.min(np.hypot(*(others - p).T)) >= diameter:
            points.append(p)
    return np.asarray(points)


def test_the_labels_correlation_term_alone_ranks_the_particles_first():
    """Candidates on every particle and as many on background, all with the same logit: the labels' template
    correlation (``correlation``) ranks the particles first; without it nothing separates them."""
    from cryopick.particles import Particles

    config = SimulationConfig(shape=(256, 256), n_micrographs=2, particles_per_micrograph=20, species="globular",
                              diameter_px=22.0, snr=0.5, seed=3, nuisances=False)
    train, test = (simulate_micrograph(config, i) for i in range(2))
    picker = _picker(correlation="0.5")
    picker._fit_correlation([(train.image, train.truth)], 22.0)
    assert picker._clip > 0  # the labels correlate with the others' template
    rng = np.random.default_rng(0)
    xy = np.concatenate([test.truth.xy, _background_points(test.truth, test.image.shape, 22.0, len(test.truth), rng)])
    flat = Particles(xy[:, 0], xy[:, 1], np.zeros(len(xy)))
    with_term = picker._with_correlation(test.image, flat, 22.0)
    assert len(with_term) == len(flat)
    ap = evaluate({"t": with_term}, {"t": test.truth}, diameter_px=22.0, candidates={"t": with_term})
    assert ap.average_precision > 0.9
    assert np.all(with_term.score <= 0.5 * picker._clip + 1e-9)  # capped at the labels' median
    picker.config.correlation = 0.0
    assert np.array_equal(picker._with_correlation(test.image, flat, 22.0).score, flat.score)


def test_an_aggregate_brighter_than_any_particle_falls_below_them_with_the_contaminant_bound():
    """A copy of a particle at 6x its contrast in the background: with the plain clip (``contaminant=0``) its term
    is the cap, level with the best particles; at the default it falls below every particle."""
    from cryopick.particles import Particles

    config = SimulationConfig(shape=(256, 256), n_micrographs=2, particles_per_micrograph=20, species="globular",
                              diameter_px=22.0, snr=0.5, seed=3, nuisances=False)
    train, test = (simulate_micrograph(config, i) for i in range(2))
    at = _background_points(test.truth, test.image.shape, 33.0, 1, np.random.default_rng(1))[0].round().astype(int)
    px, py = test.truth.xy[0].round().astype(int)
    r = 13
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    image = np.asarray(test.image, dtype=np.float64).copy()
    image[at[1] - r: at[1] + r + 1, at[0] - r: at[0] + r + 1] += 5.0 * np.clip((r - np.hypot(xx, yy)) / 3, 0, 1) * (
        image[py - r: py + r + 1, px - r: px + r + 1] - np.median(image))
    xy = np.concatenate([test.truth.xy, at[None].astype(float)])
    flat = Particles(xy[:, 0], xy[:, 1], np.zeros(len(xy)))
    scores = {}
    for bound in ("0", "2"):
        picker = _picker(correlation="1", contaminant=bound)
        picker._fit_correlation([(train.image, train.truth)], 22.0)
        got = picker._with_correlation(image, flat, 22.0)
        assert len(got) == len(flat)  # re-sorted by score: back to the input order by position
        scores[bound] = got.score[np.argmin(np.hypot(got.x - xy[:, :1], got.y - xy[:, 1:]), axis=1)]
    assert scores["0"][-1] == pytest.approx(scores["0"][:-1].max())
    assert scores["2"][-1] < scores["2"][:-1].min()


def test_few_shot_model_keeps_the_correlation_term_and_old_models_pick_without_it(trained):
    """A few-shot head stores the labels' template and clip; loaded, it scores logits + correlation x term; a
    model stored without them (or picking with correlation=0) scores the head's logits alone."""
    from cryopick.picker import TrainingData, TrainingItem
    from cryopick.recentre import correlation_map, correlation_score
    from cryopick_hydra.inference import pick_image

    out, _ = trained
    mics = _species("dumbbell", 5, n=2)
    few = _picker(checkpoint=str(out), steps="3", correlation="0.5")
    state = few.train(TrainingData([TrainingItem("a", mics[0].image, mics[0].truth)], 22.0))
    assert state.arrays["correlation_template"].shape == (45, 45) and state.arrays["correlation_clip"].shape == (1,)
    assert few.facts()["hydra correlation"] == 0.5
    loaded = _picker(checkpoint=str(out), correlation="0.5")
    loaded.load(state)
    cfg = loaded.config
    head = pick_image(loaded.net, mics[1].image, "few-shot", 22.0, nms_fraction=cfg.nms_fraction, tile=cfg.tile,
                      margin=cfg.margin, tta=cfg.tta)
    term = correlation_score(correlation_map(mics[1].image, state.arrays["correlation_template"]), head.xy,
                             float(state.arrays["correlation_clip"][0]))
    got = loaded.score(mics[1].image, 22.0)
    expected = np.sort(head.score + 0.5 * term)[::-1]
    np.testing.assert_allclose(np.sort(got.score)[::-1], expected, rtol=1e-6, atol=1e-6)
    for settings, arrays in (({"correlation": "0"}, state.arrays),
                             ({}, {k: v for k, v in state.arrays.items() if not k.startswith("correlation_")})):
        plain = _picker(checkpoint=str(out), **settings)
        plain.load(type(state)(arrays, state.config))
        np.testing.assert_allclose(np.sort(plain.score(mics[1].image, 22.0).score), np.sort(head.score), atol=1e-6)


def test_few_shot_cut_takes_in_the_correlation_term(trained):
    """With every candidate's term at the clip (a clip below any correlation), the few-shot cut moves by exactly
    correlation x clip: the cut ranks the scores the picker picks with."""
    from cryopick.errors import ConfigError
    from cryopick.weights import load_weights
    from cryopick_hydra.inference import pick_image
    from cryopick_hydra.model import GENERIC, net_from_state
    from cryopick_hydra.picker import FEW_SHOT

    out, _ = trained
    model = load_weights(out)
    net = net_from_state(model.arrays, model.config["architecture"], [GENERIC])
    net.add_head(FEW_SHOT, GENERIC)
    mics = _species("dumbbell", 5, n=2)
    picker = _picker(checkpoint=str(out), correlation="0.5")
    generic = pick_image(net, mics[0].image, GENERIC, 22.0, tile=picker.config.tile, margin=picker.config.margin)
    cut = float(np.median(generic.score))
    plain = picker._matched_cut(net, [m.image for m in mics], 22.0, cut)
    picker._fit_correlation([(mics[0].image, mics[0].truth)], 22.0)
    picker._clip = -40.0
    assert picker._matched_cut(net, [m.image for m in mics], 22.0, cut) == pytest.approx(plain - 20.0, abs=1e-6)
    with pytest.raises(ConfigError, match="correlation"):
        _picker(correlation="-0.1")


def test_few_shot_labels_cut_keeps_the_quantile_of_the_particles(trained):
    """The labels' cut (``cut_quantile``): from a random half of the particles labelled, the cut keeps about
    1 - q of all particles, labelled or not, on those micrographs. The default cut is the lower of it and the
    count matched to the generic head; q = 0 is the matched count alone."""
    from cryopick.weights import load_weights
    from cryopick_hydra.inference import pick_image
    from cryopick_hydra.model import GENERIC, net_from_state
    from cryopick_hydra.picker import FEW_SHOT

    out, _ = trained
    model = load_weights(out)
    net = net_from_state(model.arrays, model.config["architecture"], [GENERIC])
    net.add_head(FEW_SHOT, GENERIC)
    mics = _species("dumbbell", 5, n=2)
    rng = np.random.default_rng(0)
    halves = [m.truth.subset(np.sort(rng.choice(len(m.truth), len(m.truth) // 2, replace=False))) for m in mics]
    picker = _picker(checkpoint=str(out), cut_quantile="0.2", correlation="0")
    pairs = [(m.image, h) for m, h in zip(mics, halves)]
    cut = picker._labels_cut(net, pairs, 22.0)
    found = kept = 0
    for m in mics:
        cands = pick_image(net, m.image, FEW_SHOT, 22.0, tile=picker.config.tile, margin=picker.config.margin)
        d = np.hypot(cands.x[None, :] - m.truth.x[:, None], cands.y[None, :] - m.truth.y[:, None])
        best = np.where(d <= 11.0, cands.score[None, :], -np.inf).max(axis=1)
        found += int(np.isfinite(best).sum())
        kept += int((best > cut).sum())
    assert found >= 0.8 * sum(len(m.truth) for m in mics)
    assert 0.65 <= kept / found <= 0.92  # 1 - q = 0.8, up to the sampling of the labelled half
    matched = picker._matched_cut(net, [m.image for m in mics], 22.0, None)
    assert picker._few_shot_cut(net, pairs, 22.0, None) == min(cut, matched)
    assert _picker(checkpoint=str(out), cut_quantile="0", correlation="0")._few_shot_cut(
        net, pairs, 22.0, None) == matched
    assert picker._labels_cut(net, [(m.image, h.subset(np.zeros(0, int))) for m, h in zip(mics, halves)],
                              22.0) is None
    with pytest.raises(Exception, match="cut_quantile"):
        _picker(cut_quantile="1")


def _weak_head_scene(seed: int = 3):
    """A simulated micrograph and candidates on every particle and on as many background points, scored as a
    half-right head would: 12 particles clearly above the cut-off (0), 8 just above it, 10 background points
    between the two and 10 below the cut-off."""
    from cryopick.particles import Particles

    config = SimulationConfig(shape=(256, 256), n_micrographs=1, particles_per_micrograph=20, species="globular",
                              diameter_px=22.0, snr=0.5, seed=seed, nuisances=False)
    mic = simulate_micrograph(config, 0)
    rng = np.random.default_rng(seed)
    n = len(mic.truth)
    xy = np.concatenate([mic.truth.xy, _background_points(mic.truth, mic.image.shape, 22.0, n, rng)])
    logit = np.concatenate([np.full(12, 2.0), np.full(n - 12, 0.5), np.full(n // 2, 1.0), np.full(n - n // 2, -1.0)])
    logit += rng.uniform(-0.05, 0.05, logit.size)
    return mic, Particles(xy[:, 0], xy[:, 1], logit)


def test_zero_shot_self_template_ranks_the_weak_particles_above_background_and_keeps_the_count():
    """Zero-shot (``self_template``): the template of the micrograph's best picks lifts the particles the head
    scored weakly above the background it scored higher; as many candidates stay at the cut-off as before."""
    mic, cands = _weak_head_scene()
    picker = _picker(self_template="2")
    assert picker.zero_shot and picker._cut == 0.0

    def ap(c):
        return evaluate({"m": c}, {"m": mic.truth}, diameter_px=22.0, candidates={"m": c}).average_precision

    rescored = picker._with_self_template(mic.image, cands, 22.0)
    assert np.array_equal(rescored.xy, cands.xy)
    assert ap(cands) < 0.86 and ap(rescored) > 0.97
    assert np.sum(rescored.score >= 0.0) == np.sum(cands.score >= 0.0) == 30
    # the 8 weak particles now rank above the 10 background points that out-scored them
    assert np.min(rescored.score[12:20]) > np.max(rescored.score[20:30])


def test_zero_shot_self_template_leaves_scores_alone_when_off_or_too_few_picks():
    mic, cands = _weak_head_scene()
    off = _picker(self_template="0")._with_self_template(mic.image, cands, 22.0)
    assert np.array_equal(off.score, cands.score)
    picker = _picker()
    picker._cut = 1.9  # 12 picks at the cut-off, the best half (6) make the template
    assert not np.array_equal(picker._with_self_template(mic.image, cands, 22.0).score, cands.score)
    picker._cut = 3.0  # nothing at the cut-off: no template
    assert np.array_equal(picker._with_self_template(mic.image, cands, 22.0).score, cands.score)
    from cryopick.errors import ConfigError

    with pytest.raises(ConfigError, match="self_template_top"):
        _picker(self_template_top="0")
