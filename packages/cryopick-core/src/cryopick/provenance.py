"""Where a result came from: the code version of a checkout, recorded in model files made by recipes."""

from __future__ import annotations

import subprocess
from pathlib import Path


def code_version(path: str | Path) -> str:
    """``git describe --always --dirty`` of the checkout holding ``path`` ("unknown" outside one or without git)."""
    try:
        return subprocess.run(["git", "-C", str(path), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
