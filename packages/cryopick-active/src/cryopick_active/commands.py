"""``cryopick active``: label the regions the model is least sure about, round after round.

Examples::

    # the built-in demo (written next to the project), answered from its truth: AP after every round
    cryopick active label --oracle simulated --rounds 5
    # your micrographs, a person at a terminal (crops saved as PNG and drawn inline), 10 regions per round
    cryopick active label -P project.h5 --micrographs 'data/*.mrc' --diameter 150A --oracle terminal
    # the same in napari (pip install 'cryopick-active[napari]')
    cryopick active label -P project.h5 --oracle napari
    # then pick every micrograph with the model and write RELION STAR files
    cryopick run --picker active -P project.h5 --micrographs 'data/*.mrc'

torch is imported inside the command, so ``cryopick --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cryopick.cli.options import settings_dict

ORACLES = ("napari", "terminal", "simulated")


@click.group("active")
def active_group():
    """Active learning: label a few uncertain regions, retrain in seconds, repeat."""


@active_group.command("label")
@click.option("--project", "-P", type=click.Path(path_type=Path), default=Path("cryopick-out/project.h5"),
              show_default=True, help="Project store; created if missing.")
@click.option("--micrographs", "-m", help="Micrographs to add (folder, glob, files). Default: the project's; with "
                                          "an empty project, the built-in simulated demo.")
@click.option("--diameter", "-d", help="Particle diameter: pixels (40) or Ångström (150A); default: the project's.")
@click.option("--pixel-size", type=float, help="Pixel size in Å, overriding the file headers.")
@click.option("--oracle", type=click.Choice(ORACLES), required=True,
              help="Who answers: napari (click on the micrograph), terminal (y/n/skip per crop), simulated "
                   "(from --truth).")
@click.option("--truth", help="Ground-truth coordinates: AP/F1 after each round; the simulated oracle answers from it.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True, help="Rounds of questions.")
@click.option("--per-round", type=click.IntRange(min=1), default=None,
              help="Regions asked per round (default: the per_round setting, 10).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="active picker settings (features=hydra|mae|topaz:ID|filters, scale, box, l2, pi, ...).")
@click.option("--crops", type=click.Path(path_type=Path), default=None,
              help="Folder for the terminal oracle's PNG crops (default: PROJECT.active-crops/).")
@click.option("--restart", is_flag=True, help="Forget the labels of earlier sessions (default: continue from them).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (feature network).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"rounds": [{"round": 1, "labels": 10, "ap": ...}, ...]}.')
@click.pass_context
def label_command(ctx, project, micrographs, diameter, pixel_size, oracle, truth, rounds, per_round, settings, crops,
                  restart, device, seed, as_json):
    """Label particles with active learning: each round fits the model, asks about the regions it is least sure
    of (entropy, eq. 5), and adds the answers to the label set ``active`` of the project. With truth known,
    every round reports the labels so far and AP/F1 against it."""
    from cryopick.cli.context import get_host
    from cryopick.errors import InputError
    from cryopick.fsutil import ensure_writable_file
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project

    host = get_host(ctx)
    values = settings_dict(settings)
    picker = make_picker(host, "active", values, device, seed)
    k = per_round or picker.config.per_round
    project = ensure_writable_file(Path(project), "--project")
    demo = None
    if micrographs is None and not _has_micrographs(project):
        from cryopick.progress import echo
        from cryopick.simulate import make_demo

        demo = make_demo(project.parent / "demo")
        micrographs = str(project.parent / "demo")
        truth = truth or str(demo.truth)
        echo(f"demo: {len(demo.micrographs)} simulated micrographs with known particles in {project.parent / 'demo'}")
        diameter = diameter or str(demo.config.diameter_px)
    if oracle == "simulated" and not truth:
        raise InputError("--oracle simulated answers from the ground truth: give --truth FILE")
    proj = open_project(project, "a")
    try:
        summary = _label(proj, host, picker, micrographs, diameter, pixel_size, oracle, truth, rounds, k,
                         crops or project.with_name(project.name + ".active-crops"), restart)
    finally:
        proj.store.close()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_summary(summary))


def _has_micrographs(path: Path) -> bool:
    if not path.exists():
        return False
    from cryopick.pipeline import open_project

    proj = open_project(path, "r")
    try:
        return bool(proj.micrographs())
    finally:
        proj.store.close()


def _label(proj, host, picker, micrographs, diameter, pixel_size, oracle_name, truth_path, rounds, k, crops_dir,
           restart) -> dict:
    from cryopick import progress
    from cryopick.config import config_to_dict
    from cryopick.errors import ConfigError, InputError
    from cryopick.particles import Particles
    from cryopick.stages import import_, preprocess
    from cryopick.stages.train import MODEL_SCHEMA_VERSION, model_key
    from cryopick_active import store
    from cryopick_active.picker import LABEL_SET
    from cryopick_active.session import ActiveSession, Item

    if micrographs:
        paths, origins = import_.micrograph_inputs(micrographs)
        names = import_.import_micrographs(proj, paths, pixel_size, [], origins)
    else:
        names = sorted(proj.micrographs())
    if not names:
        raise InputError(f"{proj.store.path} has no micrographs: give --micrographs 'data/*.mrc'")
    diameter_px = import_.project_diameter(proj, diameter)
    proj.put_settings(diameter_px=diameter_px)
    picker.resolve_model = proj.model
    prep = preprocess.preprocess(proj, picker, diameter_px, names)
    fkey = store.feature_key(picker, prep.key)
    items = []
    for name in progress.progress(names, "features"):
        image, factor = proj.preprocessed(prep.key, name)
        if store.has_features(proj, fkey, name):
            feats = store.get_features(proj, fkey, name)
        else:
            feats = picker.features(image)
            store.put_features(proj, fkey, name, feats, picker.feature_key())
        items.append(Item(name, image, feats, factor))
    proj.store.compact()
    factors = {it.name: it.factor for it in items}
    d_pre = diameter_px / ((items[0].factor[0] + items[0].factor[1]) / 2)
    truth_pre = None
    if truth_path:
        truth = import_.import_labels(proj, truth_path, "truth", host, names)
        truth_pre = {n: truth.get(n, Particles.empty()).scaled(factors[n]) for n in names}
    old = {} if restart else proj.labels(LABEL_SET)
    labels_pre = {n: p.scaled(factors[n]) for n, p in old.items() if n in factors}
    info = {} if restart else store.session_info(proj)
    previous = list(info.get("rounds") or []) if info.get("feature_key") == fkey else []
    session = ActiveSession(picker, items, d_pre, labels_pre, truth_pre, seed=picker.context.seed)
    if labels_pre:
        progress.echo(f"active: continuing from {sum(len(p) for p in labels_pre.values())} labels of earlier "
                      "sessions (--restart forgets them)")
    session.fit()
    oracle = _oracle(oracle_name, session, truth_pre, d_pre, crops_dir)
    first = len(previous) + 1

    def save_round(report) -> None:
        import attrs

        report = attrs.evolve(report, round=first + len(session.reports) - 1)
        session.reports[-1] = report
        stored = store.put_labels(proj, session.labels, factors, LABEL_SET, f"cryopick active label ({oracle_name})")
        previous.append(report.to_dict())
        store.put_session(proj, features=picker.config.features, feature_key=fkey, preprocessing=prep.key,
                          rounds=previous, labels=sum(len(p) for p in stored.values()))
        progress.echo(report.line())

    if oracle_name == "napari":
        try:
            import napari  # noqa: F401
        except ImportError as exc:
            raise ConfigError(f"--oracle napari needs napari with a Qt binding: pip install "
                              f"'cryopick-active[napari]' ({exc}); or use --oracle terminal") from None
        from cryopick_active.napari_widget import run_napari

        run_napari(session, k, rounds, on_round=save_round, export_dir=Path(proj.store.path).parent / "active-picks")
    else:
        for _ in range(rounds):
            report = session.run_round(oracle, k)
            if report is None:
                progress.echo("active: labelling stopped")
                break
            save_round(report)
            if getattr(oracle, "stopped", False):
                break
    # the model, under the key the train stage gives it: cryopick run/pick --picker active reuse it
    labels = proj.labels(LABEL_SET)
    key = None
    if session.labels and session.model is not None:
        key = model_key(picker, prep.key, labels, names)
        state = picker.state()
        proj.put_model(key, "active", state, schema_version=MODEL_SCHEMA_VERSION, settings=config_to_dict(picker.config),
                       labels=LABEL_SET, preprocessing=prep.key, micrographs=sorted(names),
                       diameter_px=float(diameter_px), seed=picker.context.seed)
        store.put_session(proj, model=key)
        proj.store.compact()
    pos, neg = session.n_labels()
    return {"project": str(proj.store.path), "features": picker.config.features, "micrographs": len(names),
            "diameter_px": round(diameter_px, 2), "labels": pos + neg, "particles": pos, "background": neg,
            "model": key, "rounds": previous}


def _oracle(name: str, session, truth_pre, d_pre: float, crops_dir: Path):
    from cryopick_active.oracles import SimulatedOracle, TerminalOracle

    if name == "simulated":
        return SimulatedOracle(truth_pre, d_pre)
    if name == "terminal":
        return TerminalOracle(Path(crops_dir))
    return None  # napari: the widget answers


def format_summary(s: dict) -> str:
    lines = [f"cryopick active label: {s['labels']} labels ({s['particles']} particles, {s['background']} background) "
             f"on {s['micrographs']} micrograph(s), features {s['features']}, diameter {s['diameter_px']} px"]
    for r in s["rounds"]:
        line = f"  round {r['round']}: {r['labels']} labels"
        if "ap" in r:
            line += f", AP {r['ap']:.3f}, F1 {r['f1']:.3f}"
        lines.append(line)
    if s["model"]:
        lines.append(f"  model: {s['model']} (cryopick run --picker active -P {s['project']} picks with it)")
    lines.append(f"  project: {s['project']}")
    return "\n".join(lines)
