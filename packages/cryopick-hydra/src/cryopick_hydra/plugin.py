"""Entry module of cryopick-hydra. HydraPicker's picker, trunk/head backbones and focal/L1/bias losses are
not implemented yet, so the plugin registers nothing; ``cryopick plugins`` lists it with no components."""
