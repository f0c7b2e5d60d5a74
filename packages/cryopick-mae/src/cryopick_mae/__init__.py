"""cryopick-mae: CryoMAE few-shot particle picking (papers/cryomae.md) as a cryopick plugin.

Components (registered in :mod:`cryopick_mae.plugin`): the ``mae`` picker, the ``vit-mae`` backbone,
the ``scs`` and ``scs-pu`` losses, and the ``cryopick mae pretrain`` command. Importing this package
does not import torch.
"""
