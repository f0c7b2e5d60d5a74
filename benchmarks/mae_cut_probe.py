"""Threshold rules for a stored mae run, without retraining: F1 on the test micrographs for each rule.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/mae_cut_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star DIAMETER_PX \
        TEST_MIC1,TEST_MIC2,...

Prints, for the run's stored candidates: the density cut-off (the paper's), Otsu, the cut giving 0.75/1/1.5 x
the true count (oracles), leave-one-out (LOO) estimates made here, and the picker's own calibration
(``MAEPicker._calibrate``) at several ``recall_quantile`` values.
"""
import sys, json, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
from cryopick.pipeline import open_project
from cryopick.host import build_host
from cryopick.pickers import make_picker
from cryopick.stages.evaluate import evaluate_picks
from cryopick.io import read_coordinates
from cryopick.threshold import Density
from cryopick_mae.train import encode
from cryopick_mae.windows import crop_centred, to_input
torch.set_num_threads(1)
proj, truth_path, d, tests = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")
p = open_project(Path(proj), "r")
run = p.latest_run(); info = p.run_info(run)
state = p.model(info["model"])
picker = make_picker(build_host(), "mae", {k: str(v) for k, v in state.config["picker"].items() if v is not None and k not in ("calibrate", "calibration_micrographs")}, "cpu", 0)
picker.load(state)
labels = p.labels(info.get("label_set") or "train")
ref = state.config["reference"]; prep = info["preprocessing"]
img, f = p.preprocessed(prep, ref)
ex = labels[ref].scaled((f[0], f[1])); dpp = d / f[0]
cands = p.candidates(run)
test = {k: cands[k] for k in tests}
truth = read_coordinates(truth_path)
tr = {Path(k).stem: v for k, v in truth.items() if Path(k).stem in test}
ntrue = np.mean([len(v) for v in tr.values()])
def ev(picks):
    r = evaluate_picks(picks, tr, d).to_dict()
    return f"P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} picks/mic {np.mean([len(v) for v in picks.values()]):.0f}"
print(f"true/mic {ntrue:.0f}, candidates/mic {np.mean([len(c) for c in test.values()]):.0f}")
print("density      ", ev({k: c.above(Density().cutoff(c.score)) for k, c in test.items()}))
from cryopick.threshold import Otsu
print("otsu         ", ev({k: c.above(Otsu().cutoff(c.score)) for k, c in test.items()}))
allc = np.sort(np.concatenate([c.score for c in test.values()]))[::-1]
for m in (0.75, 1.0, 1.5):
    cut = allc[int(m * ntrue * len(test)) - 1]; print(f"oracle {m}x count", ev({k: c.above(cut) for k, c in test.items()}))
cfg = picker.config; n = len(ex); step = max(1, int(round(cfg.stride * dpp))); window = picker.window_px(dpp)
bank = F.normalize(picker._exemplar_features, dim=1)
own = (torch.arange(bank.shape[0])[None, :] % n) == torch.arange(n)[:, None]
def loo_at(xy):
    x = to_input(crop_centred(img, xy, window), picker._model.image_size, cfg.window_norm, "cpu")
    feats = F.normalize(encode(picker._model, x, 256, cfg.pooling), dim=1)
    return (feats @ bank.T).masked_fill(own, -torch.inf).max(1).values.numpy()
offs = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
rng = np.random.default_rng(0)
L = []
for _ in range(3):
    j = rng.uniform(-step/2, step/2, (n, 2))
    L.append(np.max([loo_at(ex.xy + j + step * np.array(o)) for o in offs], axis=0))
L = np.sort(np.concatenate(L)); m = L.size
s = np.sort(np.concatenate([c.score for c in test.values()]))
above = (s.size - np.searchsorted(s, L)) / len(test)
frac = (m - np.arange(m)) / m
usable = frac >= 1/3
count = float(np.min(above[usable] / frac[usable]))
f1 = 2 * count * frac / (above + count); i = int(np.argmax(f1))
print(f"LOO count {count:.0f}")
print("LOO F1-opt   ", ev({k: c.above(L[i]) for k, c in test.items()}))
cut = allc[min(int(count * len(test)), allc.size) - 1]
print("LOO count-cut", ev({k: c.above(cut) for k, c in test.items()}))
for q in (0.1, 0.25, 0.5):
    print(f"LOO q{q}      ", ev({k: c.above(L[int(q * m)]) for k, c in test.items()}))
# single-window jittered LOO, pooled over 8 draws
L1 = np.sort(np.concatenate([loo_at(ex.xy + rng.uniform(-step/2, step/2, (n, 2))) for _ in range(8)])); m1 = L1.size
above1 = (s.size - np.searchsorted(s, L1)) / len(test); frac1 = (m1 - np.arange(m1)) / m1
count1 = float(np.min(above1[frac1 >= 1/3] / frac1[frac1 >= 1/3]))
f1b = 2 * count1 * frac1 / (above1 + count1); i1 = int(np.argmax(f1b))
print(f"LOO1 count {count1:.0f}"); print("LOO1 F1-opt  ", ev({k: c.above(L1[i1]) for k, c in test.items()}))
for q in (0.1, 0.25, 0.5):
    print(f"LOO1 q{q}     ", ev({k: c.above(L1[int(q * m1)]) for k, c in test.items()}))
import attrs
for q in (0.1, 0.2, 0.25, 0.3, 0.5):
    picker.config = attrs.evolve(picker.config, recall_quantile=q)
    cal = picker._calibrate(img, ex, dpp, np.random.default_rng(0))
    print(f"picker q{q}    ", ev({k: c.above(cal['threshold']) for k, c in test.items()}))
