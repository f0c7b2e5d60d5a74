"""``cryopick hydra``: commands of the HydraPicker plugin.

Examples::

    # a multi-data-set model from three labelled data sets (folders with labels.star, meta.json, mrc/)
    cryopick hydra train --dataset data/ribosome --dataset data/trpv1 --dataset data/apoferritin \\
        --out hydra-model.h5 --preset cpu
    # or micrographs and labels given explicitly, each with its particle diameter
    cryopick hydra train --dataset 'micrographs=ribo/*.mrc,labels=ribo.star,diameter=56,name=ribosome' \\
        --dataset 'micrographs=trpv1/*.mrc,labels=trpv1.star,diameter=150A' --out hydra-model.h5
    # then pick a new data set with its generic head (zero-shot), or train a head on a few labels
    cryopick run --picker hydra --micrographs 'new/*.mrc' --diameter 150A --set checkpoint=hydra-model.h5

torch is imported inside the command, so ``cryopick --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("hydra")
def hydra_group():
    """HydraPicker plugin commands (multi-data-set training)."""


def parse_dataset(spec: str) -> dict:
    """A ``--dataset`` value: a folder (``labels.star``, ``meta.json`` with ``diameter_px``, ``mrc/*.mrc``),
    ``micrographs=GLOB,labels=FILE,diameter=D[,name=NAME][,pixel_size=A]``, or a cryopick project,
    ``project=FILE.h5[,labels=SET][,diameter=D][,name=NAME]`` (its micrographs with labels of the label set,
    ``train`` by default; the diameter defaults to the project's)."""
    from cryopick.errors import InputError

    path = Path(spec)
    if "=" not in spec:
        meta = path / "meta.json"
        if not path.is_dir() or not meta.is_file() or not (path / "labels.star").is_file():
            raise InputError(f"--dataset {spec}: not a data set folder (labels.star, meta.json, mrc/); or give "
                             "micrographs=GLOB,labels=FILE,diameter=D")
        return {"name": path.name, "micrographs": str(path / "mrc"), "labels": str(path / "labels.star"),
                "diameter": str(json.loads(meta.read_text())["diameter_px"]), "pixel_size": None}
    fields = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"--dataset {spec}: expected key=value pairs separated by commas, got {part!r}")
        fields[key.strip().replace("-", "_")] = value.strip()
    if "project" in fields:
        unknown = set(fields) - {"project", "labels", "diameter", "name"}
        if unknown:
            raise InputError(f"--dataset {spec}: unknown keys {', '.join(sorted(unknown))}; use "
                             "project=FILE.h5[,labels=SET][,diameter=D][,name=NAME]")
        fields.setdefault("labels", "train")
        fields.setdefault("name", Path(fields["project"]).stem)
        fields.setdefault("diameter", None)
        fields["pixel_size"] = None
        return fields
    unknown = set(fields) - {"micrographs", "labels", "diameter", "name", "pixel_size"}
    missing = {"micrographs", "labels", "diameter"} - set(fields)
    if unknown or missing:
        raise InputError(f"--dataset {spec}: " + (f"unknown keys {', '.join(sorted(unknown))}; " if unknown else "")
                         + (f"missing {', '.join(sorted(missing))}; " if missing else "")
                         + "use micrographs=GLOB,labels=FILE,diameter=D[,name=NAME][,pixel_size=A]")
    fields.setdefault("name", Path(fields["labels"]).stem)
    fields["pixel_size"] = float(fields["pixel_size"]) if fields.get("pixel_size") else None
    return fields


def load_dataset(picker, spec: dict, crop: int, validation: int, rng):
    """Read, preprocess (the picker's chain) and pad one data set: a :class:`~cryopick_hydra.train.HydraDataset`."""
    import numpy as np

    from cryopick.config import parse_diameter
    from cryopick.errors import InputError
    from cryopick.stages.preprocess import preprocess_image
    from cryopick_hydra.train import make_dataset

    items, diameter_pre = [], None
    for image, pixel_size, particles, diameter in _labelled_micrographs(spec):
        d = parse_diameter(diameter, pixel_size)
        pre = preprocess_image(picker, np.asarray(image, dtype=np.float32), d, pixel_size)
        diameter_pre = d / ((pre.factor[0] + pre.factor[1]) / 2)
        items.append((pre.image, particles.scaled(pre.factor)))
    if not items:
        where = spec.get("project") or spec["micrographs"]
        raise InputError(f"data set {spec['name']}: no micrograph of {where} has labels in {spec['labels']}"
                         + ("" if spec.get("project") else " (matched by file name)"))
    return make_dataset(spec["name"], items, diameter_pre, crop, rng, validation=validation)


def _labelled_micrographs(spec: dict):
    """``(image, pixel size or None, labels, diameter)`` of each labelled micrograph of a data set."""
    from cryopick.errors import InputError
    from cryopick.io.coords import read_coordinates
    from cryopick.io.micrographs import expand_micrographs, read_micrograph

    if spec.get("project"):
        from cryopick.pipeline import open_project

        path = Path(spec["project"])
        if not path.is_file():
            raise InputError(f"--dataset project={path}: no such project file")
        project = open_project(path, "r")
        try:
            diameter = spec["diameter"] or project.settings().get("diameter_px")
            if diameter is None:
                raise InputError(f"--dataset project={path}: the project has no particle diameter; add diameter=D")
            labels = project.labels(spec["labels"])
            for name, particles in sorted(labels.items()):
                rec = project.micrograph(name)
                if rec is not None and len(particles):
                    yield project.read_image(name), rec.pixel_size_a, particles, diameter
        finally:
            project.store.close()
        return
    labels = {Path(k).stem: v for k, v in read_coordinates(spec["labels"]).items()}
    for path in (Path(p) for p in expand_micrographs(spec["micrographs"])):
        if path.stem in labels:
            image, info = read_micrograph(path)
            yield image, spec["pixel_size"] or info.pixel_size_a, labels[path.stem], spec["diameter"]


@hydra_group.command("train")
@click.option("--dataset", "datasets", multiple=True, required=True,
              help="A labelled data set: a folder (labels.star, meta.json, mrc/), "
                   "micrographs=GLOB,labels=FILE,diameter=D[,name=NAME][,pixel_size=A] or "
                   "project=FILE.h5[,labels=SET][,diameter=D][,name=NAME]. Repeat for each.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Model file to write (.h5).")
@click.option("--preset", default=None, help="paper, cpu or tiny (default: cpu without CUDA, paper with).")
@click.option("--phase1-steps", type=int, default=1000, show_default=True, help="Minibatches of phase 1 (one head).")
@click.option("--phase2-steps", type=int, default=200, show_default=True,
              help="Minibatches of phase 2 (a head per data set + the generic head, bias loss).")
@click.option("--eval-every", type=int, default=100, show_default=True,
              help="Steps between validations and resumable checkpoints.")
@click.option("--validation", type=int, default=1, show_default=True,
              help="Micrographs of each data set held out for validation AP.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="hydra picker settings (crop, batch, trunk_channels, head_widths, lambda_bias ...).")
@click.option("--init", "init_model", default=None, metavar="MODEL",
              help="Start from this model's trunk and generic head ('builtin': the one shipped with cryopick-hydra; "
                   "or a file from this command) and train it further on these data sets.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def train_command(ctx, datasets, out, preset, phase1_steps, phase2_steps, eval_every, validation, settings, init_model,
                  device, seed):
    """Train a HydraPicker model on several labelled data sets (phase 1: one generic head; phase 2: a head per
    data set tied to the generic head) and write it (HDF5), for ``cryopick run --picker hydra --set
    checkpoint=OUT``. A killed run continues from OUT.resume.h5 when started again with the same arguments."""
    import numpy as np

    from cryopick.cli.context import get_host
    from cryopick.config import parse_settings
    from cryopick.fsutil import ensure_writable_file
    from cryopick.pickers import make_picker
    from cryopick.progress import echo
    from cryopick_hydra.multitrain import MultiTrainSettings, train_multi
    from cryopick_hydra.picker import NONE

    specs = [parse_dataset(s) for s in datasets]
    ensure_writable_file(out, "--out")
    values = parse_settings(settings)
    values["checkpoint"] = NONE  # the architecture comes from the settings: this command makes the model
    values["pick_diameter_px"] = "none"  # training data at target_diameter_px (§4.1), not the picking size
    if preset:
        values["preset"] = preset
    picker = make_picker(get_host(ctx), "hydra", values, device, seed)
    cfg = picker.config
    init = None
    if init_model:
        picker.config.checkpoint = init_model
        init = picker.checkpoint_state()  # a clear error when it is not a hydra model
        picker.config.checkpoint = NONE
    rng = np.random.default_rng(seed)
    data = [load_dataset(picker, s, cfg.crop, validation, rng) for s in specs]
    for d in data:
        echo(f"hydra train: {d.name}: {len(d.images)} micrographs ({d.particles} particles) for training, "
             f"{len(d.validation)} for validation, particles {d.diameter_px:.1f} px after rescaling")
    run = MultiTrainSettings(phase1_steps=phase1_steps, phase2_steps=phase2_steps, crop=cfg.crop, batch=cfg.batch,
                             eval_every=eval_every, lambda_bias=cfg.lambda_bias)
    state = train_multi(picker, data, out, run, seed=seed, init=init,
                        record={"datasets": [{k: (str(v) if v is not None else None) for k, v in s.items()}
                                             for s in specs], "picker": dict(values)})
    best = state.config["best"] or {}
    click.echo(f"wrote {out} (best: phase {best.get('phase')} step {best.get('step')}, "
               f"mean generic-head validation AP {best.get('score', float('nan')):.3f})")
