"""Entry module of cryopick-active. The active-learning picker (logistic regression on backbone features,
entropy acquisition, oracles) is not implemented yet, so the plugin registers nothing."""
