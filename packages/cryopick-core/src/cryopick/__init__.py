"""cryopick: a plugin framework for cryo-EM particle picking."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryopick-core")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

from cryopick.errors import CryopickError as CryopickError
from cryopick.hookspecs import hookimpl as hookimpl
from cryopick.particles import Particles as Particles
