"""Stage 2, preprocess: the picker's preprocessing chain applied to micrographs, cached in the store.

Inputs: ``/micrographs/<name>`` and the picker (its ``preprocessing(diameter_px, pixel_size_a)``).
Output: the preprocessing key (a hash of the chain); images at ``/preprocessed/<key>/<name>`` with the
downsampling factors.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from cryopick import progress
from cryopick.preprocess import Preprocessed, apply_chain
from cryopick.project import digest
from cryopick.stages.import_ import project_pixel_size


@attrs.frozen
class PreprocessResult:
    key: str  # /preprocessed/<key>
    skipped: int  # micrographs already in the store


def preprocessing_steps(host, chain: list[tuple[str, dict]], pixel_size_a: float | None) -> list[Any]:
    """The callables of a chain ``[(preprocessor_name, params), ...]``, built through the registry.
    Preprocessors whose entry says ``pixel_size=True`` also get ``pixel_size_a``."""
    steps = []
    for name, params in chain:
        entry = host.preprocessors.get(name)
        factory = host.preprocessors.load(name)
        if getattr(entry, "pixel_size", False):
            params = {"pixel_size_a": pixel_size_a, **params}
        steps.append(factory(**params))
    return steps


def picker_chain(picker, diameter_px: float, pixel_size_a: float | None) -> tuple[str, list[tuple[str, dict]]]:
    """``(key, chain)``: the picker's preprocessing chain for particles of ``diameter_px`` and its key."""
    chain = picker.preprocessing(diameter_px, pixel_size_a)
    return digest(chain), chain


def preprocess_image(picker, image: np.ndarray, diameter_px: float, pixel_size_a: float | None) -> Preprocessed:
    """One image through the picker's own chain (no store): what pre-training and tests use, so that
    they see exactly the images picking sees."""
    _, chain = picker_chain(picker, diameter_px, pixel_size_a)
    return apply_chain(image, preprocessing_steps(picker.context.plugin_host(), chain,
                                                  pixel_size_a))


def preprocess(project, picker, diameter_px: float, names: list[str], executor=None) -> PreprocessResult:
    """Preprocess ``names`` (original-pixel ``diameter_px``) for ``picker``; skips those already stored.
    With a :class:`~cryopick.executor.DaskExecutor` the workers read and preprocess, this process stores."""
    pixel = project_pixel_size(project)
    key, chain = picker_chain(picker, diameter_px, pixel)
    todo = [n for n in names if not project.has_preprocessed(key, n)]
    if executor is not None and todo:
        from cryopick.executor import job_for, payload_for

        results = executor.map(payload_for(picker, chain, pixel), [job_for(project, n, return_image=True)
                                                                   for n in todo])
        for result in progress.progress(results, "preprocess", total=len(todo)):
            project.put_preprocessed(key, result.name, result.image, result.factor, chain)
        project.store.compact()
        return PreprocessResult(key, len(names) - len(todo))
    steps = preprocessing_steps(picker.context.plugin_host(), chain, pixel)
    for name in progress.progress(todo, "preprocess"):
        result = apply_chain(project.read_image(name), steps)
        project.put_preprocessed(key, name, result.image, result.factor, chain)
    project.store.compact()
    return PreprocessResult(key, len(names) - len(todo))


def preprocessed_diameter(project, key: str, diameter_px: float, names: list[str]) -> float:
    """``diameter_px`` (original pixels) in the pixels of preprocessing ``key``."""
    fx, fy = project.preprocessed(key, names[0])[1]
    return diameter_px / ((fx + fy) / 2)
