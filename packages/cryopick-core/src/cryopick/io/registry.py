"""Registry entries of the core coordinate formats, returned by the core plugin's hooks.

Only entries live here: each ``target`` is a ``"cryopick.io.<module>:<function>"`` string imported when
the format is used, so importing this module stays cheap.
"""

from __future__ import annotations

from cryopick.entries import ExporterEntry, ImporterEntry

IMPORTERS: list[ImporterEntry] = [
    ImporterEntry("star", "cryopick.io.star:read_star", "RELION STAR (3.0 and 3.1+ with optics)", suffixes=(".star",)),
    ImporterEntry("box", "cryopick.io.box:read_box", "EMAN/crYOLO .box, one per micrograph", suffixes=(".box",)),
    ImporterEntry("txt", "cryopick.io.txt:read_txt", "Topaz tab-separated table", suffixes=(".txt",)),
    ImporterEntry("csv", "cryopick.io.csv:read_csv", "CryoPPP CSV, one per micrograph", suffixes=(".csv",)),
    ImporterEntry("cs", "cryopick.io.cs:read_cs", "cryoSPARC .cs particle array", suffixes=(".cs",)),
]

EXPORTERS: list[ExporterEntry] = [
    ExporterEntry("star", "cryopick.io.star:write_star", "RELION STAR: particles.star or <mic>_autopick.star", suffix=".star"),
    ExporterEntry("box", "cryopick.io.box:write_box", "EMAN/crYOLO .box per micrograph (needs box_size)", suffix=".box"),
    ExporterEntry("txt", "cryopick.io.txt:write_txt", "Topaz table: particles.txt or <mic>.txt", suffix=".txt"),
    ExporterEntry("csv", "cryopick.io.csv:write_csv", "CryoPPP CSV per micrograph", suffix=".csv"),
    ExporterEntry("cs", "cryopick.io.cs:write_cs", "cryoSPARC .cs particle array (needs shapes)", suffix=".cs"),
]
