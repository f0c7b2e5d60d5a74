"""cryopick-active: active learning for picking (papers/active-learning.md). Registers no components yet."""
