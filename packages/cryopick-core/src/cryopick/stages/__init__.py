"""The stages of picking, one module each, in the order ``cryopick run`` chains them
(:func:`cryopick.pipeline.run_pipeline`):

``import_`` -> ``preprocess`` -> ``train`` -> ``pick`` (score, threshold) -> ``export`` -> ``evaluate``

Each stage is a function from explicit inputs to explicit outputs, both keys into the project store
(preprocessing key, model key, run id), so any stage can run alone given the keys, and a rerun finds
the work already stored under the same key (resume).

Import the stage modules (``from cryopick.stages import preprocess``; ``preprocess.preprocess(...)``):
this package re-exports nothing, so a module and its main function can share the stage's name.
"""
