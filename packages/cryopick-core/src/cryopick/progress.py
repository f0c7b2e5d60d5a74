"""Progress reporting for long operations, on stderr so that ``--json`` output on stdout stays clean.

Quiet mode (``--quiet`` or ``CRYOPICK_QUIET=1``) and non-terminal stderr (CI logs) print one line per
step at most every few seconds instead of a redrawn bar.

Ctrl-C: :func:`interrupt_handler` (installed by ``cryopick``'s entry point) records every SIGINT as well
as raising ``KeyboardInterrupt``. Python silently drops an exception raised while a weakref callback or a
``__del__`` runs (h5py and numpy memmaps run them all the time), so a raised ``KeyboardInterrupt`` alone is
sometimes lost and the command runs to the end; :func:`progress` (every item of every long loop) and
:func:`check_interrupted` raise it again from the recorded flag.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_state = {"quiet": os.environ.get("CRYOPICK_QUIET", "") not in ("", "0"), "interrupted": False}


def _on_sigint(signum, frame) -> None:
    _state["interrupted"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_handler() -> Iterator[None]:
    """Within the block, SIGINT sets a flag that :func:`check_interrupted` and :func:`progress` turn into
    ``KeyboardInterrupt`` (besides raising it at once). A no-op outside the main thread or where SIGINT is
    ignored (a background job of a non-interactive shell)."""
    _state["interrupted"] = False
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    previous_hook = sys.unraisablehook

    def unraisable(info) -> None:  # a swallowed Ctrl-C: no "Exception ignored ..." traceback
        if info.exc_type is KeyboardInterrupt:
            _state["interrupted"] = True
        else:
            previous_hook(info)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _state["interrupted"] = False


def interrupted() -> bool:
    """Whether Ctrl-C was pressed during this command."""
    return _state["interrupted"]


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed (even if the first one was swallowed). Long loops
    that do not go through :func:`progress` (a training epoch, say) call this between steps."""
    if _state["interrupted"]:
        raise KeyboardInterrupt


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
        for item in iterable:
            check_interrupted()
            yield item
        check_interrupted()
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
        check_interrupted()
        yield item
        check_interrupted()
        count += 1
        now = time.monotonic()
        if tty or now - last >= every_s:
            if not (not tty and total is not None and count == total):
                show()
            last = now
    show(final=True)
