"""How the results store puts a file on disk: atomically, under a name that says which writer owns it.

One helper writes every file that must never be seen half-written -- the
store's points, checksum files and manifests, the training checkpoints and
the figures' data and reports (``montecarlo.atomic_write``) -- and the rest
of this module is what a writer needs around it:

* a **temporary** beside the target, named ``.<name>.<host>.<pid>.<uuid>.tmp``
  (:func:`temporary_name`), so that two writers never share one and a later
  writer can tell whose it is;
* the bytes are written to it, flushed and ``fsync``-ed, then **renamed** over
  the target (``os.replace``, atomic on POSIX and Windows): a reader sees the
  old file or the new one, never a part (:func:`atomic_write`); or **created
  exclusively**, where of two creators exactly one must win
  (:func:`create_exclusive`);
* whether the writer of a file may still be running (:func:`writer_alive`), so
  that only the temporaries of writers that are gone are removed
  (:func:`remove_abandoned_temporaries`).

Liveness of a pid is tested with ``os.kill(pid, 0)`` on POSIX; on Windows
(where that call would end the process) a writer counts as alive until its
file is a day old.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from pathlib import Path

#: A temporary or claim whose writer cannot be checked (another host, Windows) counts as abandoned after this.
ABANDONED_AFTER_S = 24 * 3600.0

#: The name :func:`temporary_name` gives: the target's name, the writer's host and pid, a random token.
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{32})\.tmp$")


def writer_host() -> str:
    """This machine's name as it appears in temporary names and claims (letters, digits and ``-`` only)."""
    # dots and other separators would break the parsing of temporary names
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temporary_name(path: Path) -> Path:
    """A unique temporary beside ``path`` whose name says which writer (host, pid) owns it."""
    return path.with_name(f".{path.name}.{writer_host()}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def _write_synced(tmp: Path, data: bytes) -> None:
    """Write ``data`` to the temporary ``tmp`` and flush it to disk (the caller renames or removes it)."""
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the whole new one, never a part.

    The data go to a unique temporary beside ``path`` (``.<name>.<host>.<pid>.<uuid>.tmp``,
    so concurrent writers never share one), are flushed to disk (``fsync``)
    and the temporary is renamed over ``path`` (``os.replace``).  On an error
    or an interrupt the temporary is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The file to write; its folder must exist.
    data : bytes or str
        The whole content; a ``str`` is written as UTF-8.

    Returns
    -------
    None
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        _write_synced(tmp, data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Put a complete file at ``path`` unless one is there already; ``True`` if this call created it."""
    tmp = temporary_name(path)
    try:
        _write_synced(tmp, data)
        try:
            os.link(tmp, path)  # atomic and refuses to overwrite: of two creators exactly one wins
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def writer_alive(host: str, pid: int, since: float) -> bool:
    """Whether the writer ``pid`` on ``host``, whose file dates from ``since`` (epoch seconds), may still be running.

    Parameters
    ----------
    host : str
        The writer's host as it appears in file names (see :func:`writer_host`).
    pid : int
        Its process id.
    since : float
        Modification time of its file; a writer that cannot be checked counts
        as alive until the file is ``ABANDONED_AFTER_S`` old.

    Returns
    -------
    bool
    """
    if host != writer_host() or os.name == "nt":
        return time.time() - since < ABANDONED_AFTER_S
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def remove_abandoned_temporaries(*folders: Path) -> None:
    """Remove the temporaries in ``folders`` (and claims moved aside) of writers that are gone; never a live writer's.

    A temporary named by :func:`temporary_name` is abandoned when its writer
    is not alive (:func:`writer_alive`); any other ``.*.tmp`` only when it is
    ``ABANDONED_AFTER_S`` old.
    """
    now = time.time()
    for folder in folders:
        for tmp in folder.glob(".*.tmp"):
            try:
                since = tmp.stat().st_mtime
            except FileNotFoundError:
                continue  # renamed into place by its writer meanwhile
            match = TEMPORARY.match(tmp.name)
            if match is None:  # not named by this code: only age says it is abandoned
                abandoned = now - since >= ABANDONED_AFTER_S
            else:
                abandoned = not writer_alive(match["host"], int(match["pid"]), since)
            if abandoned:
                tmp.unlink(missing_ok=True)
