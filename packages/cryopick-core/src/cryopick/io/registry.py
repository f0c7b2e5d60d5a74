"""Registry entries of the core coordinate formats, returned by the core plugin's hooks.

Only entries live here: each ``target`` is a ``"cryopick.io.<module>:<function>"`` string imported when
the format is used, so importing this module stays cheap.
"""

from __future__ import annotations

from cryopick.entries import ExporterEntry, ImporterEntry

IMPORTERS: list[ImporterEntry] = [
    ImporterEntry("star", "cryopick.io.star:read_star", "RELION STAR (3.0, 3.1+; autopick.star/manualpick.star lists followed)", suffixes=(".star",)),
    ImporterEntry("box", "cryopick.io.box:read_box", "EMAN/crYOLO .box, one per micrograph", suffixes=(".box",)),
    ImporterEntry("txt", "cryopick.io.txt:read_txt", "Topaz tab-separated table", suffixes=(".txt",)),
    ImporterEntry("csv", "cryopick.io.csv:read_csv", "CryoPPP CSV, one per micrograph", suffixes=(".csv",)),
    ImporterEntry("cs", "cryopick.io.cs:read_cs", "cryoSPARC .cs particle array", suffixes=(".cs",)),
    ImporterEntry("cbox", "cryopick.io.cbox:read_cbox", "crYOLO .cbox (STAR), one per micrograph, with confidence",
                  suffixes=(".cbox",)),
    ImporterEntry("eman2", "cryopick.io.eman2:read_eman2", "EMAN2 info/<mic>_info.json boxes (a file or info/)",
                  suffixes=(".json",)),
]

EXPORTERS: list[ExporterEntry] = [
    ExporterEntry("star", "cryopick.io.star:write_star", "RELION STAR: particles.star or <mic>_autopick.star (AutoPick layout + autopick.star for RELION micrographs)", suffix=".star"),
    ExporterEntry("box", "cryopick.io.box:write_box", "EMAN/crYOLO .box per micrograph (needs box_size)", suffix=".box"),
    ExporterEntry("txt", "cryopick.io.txt:write_txt", "Topaz table: particles.txt or <mic>.txt", suffix=".txt"),
    ExporterEntry("csv", "cryopick.io.csv:write_csv", "CryoPPP CSV per micrograph", suffix=".csv"),
    ExporterEntry("cs", "cryopick.io.cs:write_cs", "cryoSPARC .cs picks as cryoSPARC writes them (needs shapes)", suffix=".cs"),
    ExporterEntry("cbox", "cryopick.io.cbox:write_cbox", "crYOLO .cbox per micrograph (needs box_size)", suffix=".cbox"),
    ExporterEntry("eman2", "cryopick.io.eman2:write_eman2", "EMAN2 <mic>_info.json per micrograph (into info/)",
                  suffix=".json"),
]
