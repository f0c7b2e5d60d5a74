"""cryopick-topaz: positive-unlabelled CNN particle picking (Bepler et al. 2019), as a cryopick plugin.

Importing this package is cheap (no torch); the picker, backbones and losses live in submodules that are
imported when used.
"""

__version__ = "0.1.0"
