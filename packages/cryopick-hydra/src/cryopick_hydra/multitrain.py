"""Multi-data-set training of HydraPicker (thesis §3.2, §4.3), as run by ``cryopick hydra train`` and the
recipe of the shipped model.

Phase 1 trains the trunk and a single generic head on minibatches from every data set in turn (Adam,
cosine annealing with warm restarts). Phase 2 starts from phase 1's best trunk and head, adds one head per
data set (a copy of the generic head) and trains them all with ``l_Hydra`` (eq. 3.1): each minibatch
through its data set's head, and the bias loss (eq. 3.4) tying every data-set head to the generic head
(SGD, momentum 0.98). Every ``eval_every`` steps the average precision on each data set's held-out
micrographs is measured; the checkpoint with the best mean AP of the generic head is kept, and the state
(weights, optimiser, step) is written to ``OUT.resume.h5`` so that a killed run continues where it was.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import numpy as np

from cryopick.errors import ConfigError
from cryopick.picker import ModelState
from cryopick.progress import echo
from cryopick_hydra.model import GENERIC
from cryopick_hydra.train import HydraDataset, Schedule, fit, validate


@attrs.define
class MultiTrainSettings:
    """What ``cryopick hydra train`` trains with (the schedule of §4.3)."""

    phase1_steps: int = 1000
    phase2_steps: int = 200
    crop: int = 368
    batch: int = 4
    phase1_lr: float = 1e-3
    phase2_lr: float = 1e-4
    momentum: float = 0.98
    #: Period of the cosine warm restarts of phase 1 (steps).
    restart_steps: int = 400
    eval_every: int = 100
    lambda_bias: float = 0.01
    float16: bool = True


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume.h5")


def _optimizer_arrays(opt) -> tuple[dict, list]:
    import torch

    sd = opt.state_dict()
    arrays = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            arrays[f"opt/{idx}/{key}"] = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
    return arrays, sd["param_groups"]


def _optimizer_state(arrays: dict, groups: list) -> dict:
    import torch

    state: dict = {}
    for name, value in arrays.items():
        if name.startswith("opt/"):
            _, idx, key = name.split("/")
            state.setdefault(int(idx), {})[key] = torch.from_numpy(np.array(value))
    return {"state": state, "param_groups": groups}


def _mean(values) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def train_multi(picker, datasets: list[HydraDataset], out: Path, settings: MultiTrainSettings, *,
                record: dict | None = None, seed: int = 0, init: ModelState | None = None) -> ModelState:
    """Train a HydraPicker model on ``datasets`` (two phases, §4.3) and write it to ``out`` (HDF5); resumes
    from ``OUT.resume.h5`` when a previous run was killed. ``picker`` (a ``hydra`` picker) gives the
    architecture and the losses; ``record`` is stored in the file (what it was trained on, code version).
    ``init``: a model (``cryopick hydra train``'s) whose trunk and generic head training starts from, to
    train it further (its architecture replaces the picker's)."""

    from cryopick.torchutil import seed_everything
    from cryopick.weights import arrays_digest, load_weights, save_weights
    from cryopick_hydra.model import net_arrays, net_from_state
    from cryopick_hydra.picker import MODEL_KIND

    out = Path(out)
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"data set names must differ: {', '.join(names)}")
    if GENERIC in names:
        raise ConfigError(f"a data set cannot be called {GENERIC!r} (the name of the generic head)")
    device = picker.context.device or "cpu"
    losses = picker._losses()
    losses.lambda_bias = settings.lambda_bias
    # as stored in the resume file's JSON (tuples become lists)
    architecture = init.config["architecture"] if init is not None else picker._architecture()
    identity = json.loads(json.dumps({"datasets": names, "settings": attrs.asdict(settings),
                                      "architecture": architecture, "seed": seed,
                                      "init": arrays_digest(init.arrays)[:16] if init is not None else None}))

    seed_everything(seed)  # the initial weights
    if init is not None:
        keep = {k: v for k, v in init.arrays.items() if k.startswith("trunk.") or k.startswith(f"heads.{GENERIC}.")}
        net = net_from_state({k: np.asarray(v, np.float32) for k, v in keep.items()}, architecture, [GENERIC])
    else:
        net = picker.context.load("backbone", "hydra")(**architecture)
    phase, step, best, history, evaluations = 1, 0, None, [], []
    opt_state = None
    resume = resume_path(out)
    if resume.is_file():
        saved = load_weights(resume)
        if saved.config.get("identity") != identity:
            raise ConfigError(f"{resume} is from a training with other data sets or settings; delete it to start "
                              "again")
        c = saved.config
        phase, step, evaluations = c["phase"], c["step"], c["evaluations"]
        net = net_from_state({k[4:]: v for k, v in saved.arrays.items() if k.startswith("net/")}, c["architecture"],
                             c["heads"])
        best = ({k[5:]: v for k, v in saved.arrays.items() if k.startswith("best/")}, c["best"]) if c["best"] else None
        opt_state = {"optimizer": _optimizer_state(saved.arrays, c["param_groups"]), "scheduler": c["scheduler"]}
        echo(f"hydra train: resuming phase {phase} at step {step} from {resume}")

    def evaluate(phase_no: int, step_no: int, opt, sched) -> None:
        nonlocal best
        scores = {d.name: validate(net, d, GENERIC, device) for d in datasets}
        aps = {k: v[0] for k, v in scores.items()}
        # the generic head's default cut-off: the median over the sets of each set's best-F1 logit
        cuts = [v[1] for v in scores.values() if math.isfinite(v[1])]
        row = {"phase": phase_no, "step": step_no, "generic_ap": aps, "mean_ap": _mean(aps.values()),
               "threshold": float(np.median(cuts)) if cuts else None}
        if phase_no == 2:
            row["own_head_ap"] = {d.name: validate(net, d, d.name, device)[0] for d in datasets}
        evaluations.append(row)
        score = row["mean_ap"] if math.isfinite(row["mean_ap"]) else float(step_no)  # no validation: the last
        if best is None or best[1]["phase"] != phase_no or score >= best[1]["score"]:
            best = ({k: v.copy() for k, v in net_arrays(net).items()},
                    {"phase": phase_no, "step": step_no, "score": score, "heads": net.head_names,
                     "threshold": row["threshold"]})
        echo(f"hydra train: phase {phase_no} step {step_no}: generic-head AP "
             + ", ".join(f"{k} {v:.3f}" for k, v in aps.items()) + f" (mean {row['mean_ap']:.3f})")
        arrays = {f"net/{k}": v for k, v in net_arrays(net).items()}
        arrays.update({f"best/{k}": v for k, v in best[0].items()})
        opt_arrays, groups = _optimizer_arrays(opt)
        arrays.update(opt_arrays)
        config = {"identity": identity, "phase": phase_no, "step": step_no, "evaluations": evaluations,
                  "architecture": dict(net.architecture), "heads": net.head_names, "best": best[1],
                  "param_groups": groups, "scheduler": sched.state_dict() if sched is not None else None}
        save_weights(resume, ModelState(arrays, config))

    common = dict(batch=settings.batch, crop=settings.crop, eval_every=settings.eval_every)
    if phase == 1:
        seed_everything(seed + step)
        rng = np.random.default_rng([seed, 1, step])
        schedule = Schedule(steps=settings.phase1_steps, lr=settings.phase1_lr, optimizer="adam",
                            restart_steps=settings.restart_steps, **common)
        history += fit(net, datasets, {n: GENERIC for n in names}, schedule, losses, rng=rng, device=device,
                       start_step=step, optimizer_state=opt_state, desc="hydra phase 1",
                       on_eval=lambda s, o, sch: evaluate(1, s, o, sch))
        phase, step, opt_state = 2, 0, None
        if best is not None:  # phase 2 starts from phase 1's best trunk and head
            net = net_from_state(best[0], net.architecture, best[1]["heads"])
    if settings.phase2_steps > 0:
        if set(names) - set(net.head_names):
            for n in names:
                if n not in net.head_names:
                    net.add_head(n, GENERIC)
        seed_everything(seed + 100003 + step)
        rng = np.random.default_rng([seed, 2, step])
        schedule = Schedule(steps=settings.phase2_steps, lr=settings.phase2_lr, optimizer="sgd",
                            momentum=settings.momentum, **common)
        history += fit(net, datasets, {n: n for n in names}, schedule, losses, rng=rng, device=device,
                       start_step=step, optimizer_state=opt_state, bias_heads=names, desc="hydra phase 2",
                       on_eval=lambda s, o, sch: evaluate(2, s, o, sch))
    arrays = best[0] if best is not None else net_arrays(net)
    if settings.float16:
        arrays = {k: np.asarray(v).astype(np.float16) if np.issubdtype(np.asarray(v).dtype, np.floating) else v
                  for k, v in arrays.items()}
    heads = best[1]["heads"] if best is not None else net.head_names
    config = {"kind": MODEL_KIND, "architecture": dict(net.architecture), "heads": heads,
              "target_diameter_px": picker.config.target_diameter_px,
              "trained_on": [{"name": d.name, "micrographs": len(d.images), "validation_micrographs": len(d.validation),
                              "particles": d.particles, "diameter_px": d.diameter_px} for d in datasets],
              "settings": attrs.asdict(settings), "best": best[1] if best is not None else None,
              "threshold": best[1]["threshold"] if best is not None else None,
              "evaluations": evaluations, "seed": seed,
              "init": ({"fingerprint": identity["init"], "trained_on": init.config.get("trained_on"),
                        "best": init.config.get("best"), "settings": init.config.get("settings")}
                       if init is not None else None),
              "final_loss": float(np.mean([r["loss"] for r in history[-20:]])) if history else None,
              **(record or {})}
    state = ModelState(arrays, config)
    save_weights(out, state)
    resume.unlink(missing_ok=True)
    return state
