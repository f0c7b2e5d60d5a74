"""Stage 4, pick: score every micrograph (all candidates with a score), then threshold them into picks.

``score`` inputs: preprocessing key, model key (None for untrained pickers), the picker; output: the run id
(``<picker>-<8 hex>``, a hash of picker, settings, preprocessing and model) and candidates in original
pixels at ``/runs/<run>/candidates/<name>``. ``threshold`` inputs: the run id and a ``--threshold`` spec;
output: picks at ``/runs/<run>/picks/<name>`` (re-cutting never rescores).
"""

from __future__ import annotations

import platform
import time
from importlib import metadata
from typing import Any

import attrs
import numpy as np

from cryopick import progress
from cryopick.config import config_to_dict
from cryopick.errors import ConfigError
from cryopick.particles import Particles
from cryopick.project import digest
from cryopick.stages.preprocess import preprocessed_diameter


@attrs.frozen
class ScoreResult:
    run: str  # /runs/<run>
    skipped: int  # micrographs whose candidates were already stored


@attrs.frozen
class ThresholdResult:
    picks: dict[str, Particles]
    spec: str  # the --threshold used
    scope: str  # micrograph or dataset


def package_versions() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("cryopick") or name in ("torch", "numpy", "h5py", "scipy"):
            out[name] = dist.version
    return out


def run_id(picker, prep_key: str, model_key: str | None) -> str:
    name = picker.context.name
    return f"{name}-" + digest([name, config_to_dict(picker.config), prep_key, model_key], 8)


def score(project, picker, prep_key: str, model_key: str | None, diameter_px: float, names: list[str],
          label_set: str | None = None, executor=None) -> ScoreResult:
    """Candidates of ``names`` with ``picker`` (trained or loaded already), stored per micrograph in
    original pixels; micrographs already scored for the same run are skipped (resume). ``label_set``
    (the labels the model was trained on) is recorded so that evaluation can leave those micrographs out.
    With a :class:`~cryopick.executor.DaskExecutor` the workers read, preprocess and score (the picker and
    the stored model ``model_key`` are sent to each worker once) and this process stores each result as it
    arrives."""
    run = run_id(picker, prep_key, model_key)
    mics = project.micrographs()
    d_pre = preprocessed_diameter(project, prep_key, diameter_px, names)
    todo = [n for n in names if not project.has_candidates(run, n)]
    skipped = len(names) - len(todo)
    if skipped:
        progress.echo(f"score: resuming run {run}, {skipped} micrograph(s) already done")
    project.put_run_info(run, picker=picker.context.name, config=config_to_dict(picker.config),
                         preprocessing=prep_key, model=model_key, label_set=label_set if model_key else None,
                         diameter_px=diameter_px, status="scoring", updated=time.time(),
                         provenance={"versions": package_versions(), "python": platform.python_version(),
                                     "machine": platform.machine(), "device": picker.context.device,
                                     "seed": picker.context.seed})
    if executor is not None and todo:
        _score_on_workers(project, picker, executor, run, model_key, diameter_px, d_pre, todo)
    else:
        for name in progress.progress(todo, "score"):
            t0 = time.perf_counter()
            image, factor = project.preprocessed(prep_key, name)
            cands = picker.score(image, d_pre)
            cands = cands.scaled((1.0 / factor[0], 1.0 / factor[1]))
            cands = cands.subset(cands.inside(mics[name].shape))
            project.put_candidates(run, name, cands, time.perf_counter() - t0)
    project.put_run_info(run, status="scored", updated=time.time())
    project.store.compact()
    return ScoreResult(run, skipped)


def _score_on_workers(project, picker, executor, run: str, model_key: str | None, diameter_px: float,
                      d_pre: float, todo: list[str]) -> None:
    """Workers read, preprocess (the same chain) and score ``todo``; results are stored as they arrive.
    The preprocessed images stay on the workers: sending them back would make the one writer the
    bottleneck (tens of MB per micrograph), and only training needs them."""
    from cryopick.executor import job_for, payload_for
    from cryopick.stages.import_ import project_pixel_size
    from cryopick.stages.preprocess import picker_chain

    pixel = project_pixel_size(project)
    _, chain = picker_chain(picker, diameter_px, pixel)
    payload = payload_for(picker, chain, pixel, project.model(model_key) if model_key else None)
    jobs = [job_for(project, n, d_pre) for n in todo]
    for result in progress.progress(executor.map(payload, jobs), "score", total=len(todo)):
        project.put_candidates(run, result.name, result.candidates, result.seconds)


def parse_threshold(spec: str, host) -> tuple[str, dict[str, Any]]:
    """``"fixed:0.5"`` -> ``("fixed", {"value": 0.5})``: the keyword and type of VALUE come from the
    thresholder's entry (``parameter``, ``parameter_type``)."""
    name, _, value = spec.partition(":")
    entry = host.thresholders.get(name)
    params: dict[str, Any] = {}
    if value:
        convert = int if entry.parameter_type == "int" else float
        try:
            params[entry.parameter] = convert(float(value)) if convert is int else convert(value)
        except ValueError:
            raise ConfigError(f"--threshold {spec}: {value!r} is not a number") from None
    return name, params


def compute_cutoffs(candidates: dict, spec: str, host, scope: str | None = None) -> tuple[dict[str, float], str]:
    """Per-micrograph cut-offs of thresholder ``spec`` (``NAME[:VALUE]``) for ``{name: Particles}``
    candidates, computed per micrograph or over all of them (``scope``; default: the thresholder entry's
    ``scope``). Returns ``(cutoffs, scope)``."""
    name, params = parse_threshold(spec, host)
    thresholder = host.thresholders.load(name)(**params)
    scope = scope or host.thresholders.get(name).scope
    if scope not in ("micrograph", "dataset"):
        raise ConfigError(f"--threshold-scope {scope}: use micrograph or dataset")
    if scope == "dataset":
        all_scores = np.concatenate([c.score for c in candidates.values()]) if candidates else np.zeros(0)
        cut = thresholder.cutoff(all_scores)
        return {n: cut for n in candidates}, scope
    return {n: thresholder.cutoff(c.score) for n, c in candidates.items()}, scope


def threshold(project, host, run: str, spec: str, scope: str | None = None) -> ThresholdResult:
    """Cut the run's candidates with thresholder ``spec`` (``NAME[:VALUE]``), per micrograph or over the
    data set (``scope``; default: the thresholder entry's ``scope``)."""
    cands = project.candidates(run)
    cuts, scope = compute_cutoffs(cands, spec, host, scope)
    picks = {n: c.above(cuts[n]) for n, c in cands.items()}
    project.put_picks(run, picks, cuts, spec)
    project.put_run_info(run, threshold=spec, threshold_scope=scope, status="picked", updated=time.time())
    return ThresholdResult(picks, spec, scope)
