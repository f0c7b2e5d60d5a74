"""cryopick-hydra: HydraPicker (papers/hydrapicker-thesis.md), a multi-data-set particle detector."""
