"""cryopick-active: active learning for particle picking with a person in the loop (papers/active-learning.md)."""
