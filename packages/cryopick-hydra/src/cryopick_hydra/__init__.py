"""cryopick-hydra: HydraPicker (papers/hydrapicker-thesis.md). The plugin registers no components yet."""
