"""Micrograph and coordinate input/output.

Micrographs: :func:`read_micrograph`, :func:`read_micrograph_info`, :func:`micrograph_name`.
Coordinates: :func:`read_coordinates`, :func:`write_coordinates`, :func:`check_inside`, and
:func:`match_names` to map names in coordinate files to micrograph IDs. Format-specific readers and
writers live in :mod:`cryopick.io.star`, ``.box``, ``.txt``, ``.csv`` and ``.cs``.
"""

from cryopick.io.coords import (
    check_inside as check_inside,
    read_coordinates as read_coordinates,
    write_coordinates as write_coordinates,
)
from cryopick.io.micrographs import (
    MicrographInfo as MicrographInfo,
    micrograph_name as micrograph_name,
    read_micrograph as read_micrograph,
    read_micrograph_info as read_micrograph_info,
)
from cryopick.io.names import match_names as match_names
