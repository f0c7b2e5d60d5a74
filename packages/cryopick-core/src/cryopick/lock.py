"""The project's writer lock, and which file system the project lives on.

Local file systems: an exclusive, non-blocking ``flock`` on ``<project>.h5.lock``; the OS releases it when
the process dies, so a killed run never leaves a stale lock.

Network and cluster file systems (NFS, Lustre, CIFS/SMB, sshfs, BeeGFS, GPFS, ...): ``flock`` there is
emulated, per client, or refused, depending on the mount options, so it cannot be trusted to keep two
machines out. There the writer also creates ``<project>.h5.writer`` with ``O_CREAT | O_EXCL`` (atomic on
these file systems), holding ``host pid time``, and deletes it when it is done. A killed writer leaves the
file behind: on the same host the next writer sees that the pid is gone and takes the lock over; from
another host it cannot tell, so it refuses with a message that says how to remove the file.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import os
import re
import socket
from pathlib import Path

from cryopick.errors import StoreLockedError

#: File system types (``/proc/mounts`` column 3) on which ``flock`` is not trusted.
NETWORK_FS = frozenset({"nfs", "nfs4", "lustre", "cifs", "smb3", "smbfs", "fuse.sshfs", "beegfs", "gpfs",
                        "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "panfs", "afs", "9p"})
MOUNTS = "/proc/mounts"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as \ooo (octal)
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_type(path: str | Path, mounts: str | Path | None = None) -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``nfs4``, ``lustre``, ...), from the mount
    table (``/proc/mounts`` unless ``mounts`` names another file): the entry whose mount point is the
    longest prefix of the path. ``None`` when the table cannot be read."""
    try:
        text = Path(mounts or MOUNTS).read_text()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, best_type = -1, None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1]).rstrip("/") or "/"
        if target == point or target.startswith(point + "/") or point == "/":
            if len(point) > best:
                best, best_type = len(point), fields[2]
    return best_type


def is_network_fs(fs_type: str | None) -> bool:
    return fs_type is not None and (fs_type in NETWORK_FS or fs_type.split(".")[0] in NETWORK_FS)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """The single-writer lock of the project ``path`` (see the module docstring).

    Parameters
    ----------
    path : path
        The project file.
    mounts : path, optional
        Mount table to read instead of ``/proc/mounts`` (tests). ``CRYOPICK_LOCK=file`` forces the lock
        file on any file system, ``CRYOPICK_LOCK=flock`` turns it off.
    """

    def __init__(self, path: str | Path, mounts: str | Path | None = None) -> None:
        self.path = Path(path)
        self.flock_path = self.path.with_name(self.path.name + ".lock")
        self.file_path = self.path.with_name(self.path.name + ".writer")
        self.fs_type = filesystem_type(self.path.parent, mounts)
        forced = os.environ.get("CRYOPICK_LOCK", "")
        self.use_file = forced == "file" or (forced != "flock" and is_network_fs(self.fs_type))
        self._fd: int | None = None
        self._owns_file = False
        self.note = ""  # set when a stale lock file was taken over

    def _where(self) -> str:
        return f"{self.path.parent} is on {self.fs_type or 'a network file system'}"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.flock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLockedError(
                f"{self.path} is being written by {holder}; wait for it to finish, or use another --project"
            ) from None
        except OSError as exc:
            # ENOLCK / ENOSYS / EOPNOTSUPP: no flock on this mount (e.g. Lustre without -o flock)
            if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
            self.use_file = True
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"cryopick pid {os.getpid()} since {_now()}".encode())
        except OSError:
            pass
        self._fd = fd
        if self.use_file:
            try:
                self._acquire_file()
            except BaseException:
                self.release()
                raise

    def _acquire_file(self) -> None:
        host = socket.gethostname()
        for _ in range(2):
            try:
                fd = os.open(self.file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read_holder()
                if holder.get("host") == host and holder.get("pid", "").isdigit() \
                        and not _pid_alive(int(holder["pid"])):
                    # the writer died on this host: the lock is stale
                    self.note = (f"note: took over the lock {self.file_path} left by cryopick pid {holder['pid']} "
                                 f"(no longer running)")
                    self.file_path.unlink(missing_ok=True)
                    continue
                self._refuse(holder, host)
            try:
                os.write(fd, f"host={host} pid={os.getpid()} since={_now()}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._owns_file = True
            return
        self._refuse(self._read_holder(), host)

    def _read_holder(self) -> dict[str, str]:
        try:
            text = self.file_path.read_text(errors="replace")
        except OSError:
            return {}
        return dict(part.split("=", 1) for part in text.split() if "=" in part)

    def _refuse(self, holder: dict[str, str], host: str) -> None:
        who = (f"cryopick pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"
               if holder else "a process that left an empty lock file")
        if holder.get("host") == host:
            raise StoreLockedError(f"{self.path} is being written by {who}; wait for it to finish, or use "
                                   f"another --project (if that pid is not cryopick, remove {self.file_path})")
        raise StoreLockedError(
            f"{self.path} is locked by {who} ({self._where()}, where a killed writer's lock is not released "
            f"by the OS). If no cryopick is running there, remove the lock: rm '{self.file_path}'")

    def release(self) -> None:
        if self._owns_file:
            holder = self._read_holder()
            if holder.get("pid") == str(os.getpid()) and holder.get("host") == socket.gethostname():
                self.file_path.unlink(missing_ok=True)
            self._owns_file = False
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
