"""A minimal stand-in for torchvision, for running topaz-em in the benchmarks on CPU.

topaz-em imports torchvision only for ``transforms.functional.rotate`` / ``hflip`` / ``vflip`` of training
crops; a full torchvision wheel would pull a second torch build. Written for cryopick (not torchvision code).
"""

from . import transforms  # noqa: F401

__version__ = "0.0.0+cryopick.shim"
