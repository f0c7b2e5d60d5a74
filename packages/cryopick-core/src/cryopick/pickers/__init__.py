"""Pickers that ship with cryopick-core."""
