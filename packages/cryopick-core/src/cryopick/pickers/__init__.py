"""Core's pickers (``dog``) and :func:`make_picker`, the one way to build a configured picker."""

from cryopick.pickers.build import make_picker as make_picker, picker_config as picker_config
