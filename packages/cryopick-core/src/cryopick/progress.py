"""Progress reporting for long operations, on stderr so that ``--json`` output on stdout stays clean.

Quiet mode (``--quiet`` or ``CRYOPICK_QUIET=1``) and non-terminal stderr (CI logs) print one line per
step at most every few seconds instead of a redrawn bar.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_state = {"quiet": os.environ.get("CRYOPICK_QUIET", "") not in ("", "0")}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = bool(quiet)


def is_quiet() -> bool:
    return _state["quiet"]


def echo(message: str) -> None:
    """A status line on stderr (suppressed by ``--quiet``)."""
    if not _state["quiet"]:
        print(message, file=sys.stderr, flush=True)


def progress(iterable: Iterable[T], desc: str, total: int | None = None, every_s: float = 2.0) -> Iterator[T]:
    """Yield from ``iterable`` while showing ``desc [i/total] elapsed`` on stderr."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if _state["quiet"]:
        yield from iterable
        return
    tty = sys.stderr.isatty()
    start = last = time.monotonic()
    count = 0

    def show(final: bool = False) -> None:
        elapsed = time.monotonic() - start
        of = f"/{total}" if total is not None else ""
        rate = ""
        if count and total and not final:
            eta = elapsed / count * (total - count)
            rate = f", ~{eta:.0f}s left"
        line = f"{desc} [{count}{of}] {elapsed:.1f}s{rate}"
        if tty:
            end = "\n" if final else ""
            print(f"\r\033[K{line}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    for item in iterable:
        yield item
        count += 1
        now = time.monotonic()
        if tty or now - last >= every_s:
            if not (not tty and total is not None and count == total):
                show()
            last = now
    show(final=True)
