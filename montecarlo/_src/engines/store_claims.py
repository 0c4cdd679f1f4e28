"""The claims of the results store: ``points/<key>.claim``, taken before a point is computed.

A claim is a small JSON file (pid, host, time and a random token) created
with ``O_CREAT | O_EXCL``, so that of two writers exactly one takes it.  A
claim of a live writer is respected; one of a dead writer (same host, pid
gone; another host: older than a day, ``store_files.writer_alive``) is taken
over.  A claim file still empty or half-written counts as live for
``CLAIM_WRITE_GRACE_S`` (its writer is between creating and filling it).
Claims save computing twice; correctness does not depend on them, because
every point is a pure function of its configuration and every write is
atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path

from .store_files import temporary_name, writer_alive, writer_host

#: A claim file still empty or half-written (its writer is between ``open`` and ``write``) for this long is dead.
CLAIM_WRITE_GRACE_S = 60.0


def _read_claim(path: Path):
    """``(raw bytes, document or None, mtime)`` of a claim file, or ``None`` if there is none."""
    try:
        raw = path.read_bytes()
        since = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        document = json.loads(raw.decode("utf-8"))
        if not isinstance(document, dict) or not {"pid", "host", "token"} <= set(document):
            document = None
    except ValueError:
        document = None
    return raw, document, since


def _claim_alive(claim) -> bool:
    raw, document, since = claim
    if document is None:  # its writer is between creating and filling it, or died there
        return time.time() - since < CLAIM_WRITE_GRACE_S
    try:
        return writer_alive(str(document["host"]), int(document["pid"]), since)
    except (TypeError, ValueError):
        return time.time() - since < CLAIM_WRITE_GRACE_S


def _remove_dead_claim(path: Path, raw: bytes) -> None:
    # Move it aside first: of several writers taking over, one moves it; and if a live writer re-created
    # the claim since we read it, what we moved is not what we judged dead, and it is put back.
    aside = temporary_name(path)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        if aside.read_bytes() != raw:
            with contextlib.suppress(OSError):
                os.link(aside, path)  # fails if yet another claim exists; then both compute (harmless)
    finally:
        aside.unlink(missing_ok=True)


class Claims:
    """The claims in one folder of points that one store object holds (``key in claims``: it holds ``key``'s).

    Parameters
    ----------
    folder : Path
        The store's ``points`` folder; the claim on ``key`` is ``folder/<key>.claim``.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._tokens: dict[str, str] = {}  # key -> token of the claims this object holds

    def __contains__(self, key: str) -> bool:
        return key in self._tokens

    def path(self, key: str) -> Path:
        """The claim file of point ``key``."""
        return self.folder / f"{key}.claim"

    def live(self, key: str) -> dict | None:
        """``{"pid", "host", "time"}`` of the live writer holding ``key``'s claim (this object too), else ``None``."""
        claim = _read_claim(self.path(key))
        if claim is None or not _claim_alive(claim):
            return None
        document = claim[1] or {}
        return {k: document.get(k) for k in ("pid", "host", "time")}

    def in_flight(self) -> dict[str, dict]:
        """Every claim of a live writer in the folder: ``{key: {"pid", "host", "time"}}``."""
        out = {}
        for path in sorted(self.folder.glob("*.claim")):
            holder = self.live(path.stem)
            if holder is not None:
                out[path.stem] = holder
        return out

    def take(self, key: str) -> bool:
        """Take the claim on ``key`` (or take it over from a dead writer); ``False`` if a live writer holds it."""
        if key in self._tokens:
            return True
        path = self.path(key)
        for _ in range(5):
            token = uuid.uuid4().hex
            document = {"pid": os.getpid(), "host": writer_host(), "time": time.time(), "token": token}
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                claim = _read_claim(path)
                if claim is None:
                    continue  # released meanwhile: try again
                if _claim_alive(claim):
                    return False
                _remove_dead_claim(path, claim[0])
                continue
            try:
                os.write(fd, json.dumps(document).encode())
            finally:
                os.close(fd)
            self._tokens[key] = token
            return True
        return False  # the claim kept changing hands: leave the point to the others

    def release(self, key: str) -> None:
        """Give up the claim on ``key`` (no-op if this object does not hold it; another's claim is left alone)."""
        token = self._tokens.pop(key, None)
        if token is None:
            return
        path = self.path(key)
        claim = _read_claim(path)
        if claim is not None and claim[1] is not None and claim[1].get("token") == token:
            path.unlink(missing_ok=True)

    def held(self) -> list[str]:
        """The keys whose claims this object holds."""
        return list(self._tokens)
