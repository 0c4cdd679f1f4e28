"""The results store: one Parquet file per finished grid point, its checksum, and a manifest.

Layout of a store folder::

    manifest.json            the configuration, its hash, the planned points, versions and the
                             provenance of the code that created the store
    points/<key>.parquet     per-trial statistics of one point; its schema metadata holds the
                             point's configuration, seed, backend, timing and provenance
    points/<key>.sha256      the point's checksum file (JSON): SHA-256 and length of the whole
                             Parquet file, and the code fingerprint and commit that made it
    points/<key>.claim       present while a writer computes the point (JSON: pid, host, time)

What a reader can rely on:

* **A point counts only if it verifies.**  The checksum file is written after
  the Parquet file (each through a unique temporary and an atomic rename), and
  a point is finished when the SHA-256 of its whole Parquet file equals the
  recorded one.  A flipped byte anywhere in the file (column data, compressed
  pages, statistics, footer), a truncated or emptied file, or a missing or
  unreadable checksum file makes the point *corrupt*: it is listed by
  :meth:`ResultsStore.corrupt` with the reason, is not in :meth:`done`, is
  recomputed (overwritten) by the next run, and :meth:`read_point` refuses it
  with a :class:`StoreCorrupt` naming the file.  A sidecar rather than a
  checksum inside the Parquet file because a checksum in the footer cannot
  cover the footer itself, and one over the decoded columns would miss a flip
  in page headers or statistics.
* **A point counts only if the current code made it.**  Each checksum file
  records the code fingerprint (``provenance.code_fingerprint``: a hash of the
  source of ``montecarlo`` and ``theory``) of the code that computed the point.
  :meth:`done` holds only points of the current fingerprint; verified points of
  other code are :meth:`stale` (with their fingerprint and commit) and are
  recomputed, so a run never mixes numbers of old and new code.  Point keys
  hash the configuration only; a point recomputed under new code overwrites
  the old file.
* **Writers do not destroy each other's work.**  Temporary files carry their
  writer's host and pid in their name (``.<name>.<host>.<pid>.<uuid>.tmp``);
  opening a store for writing removes only temporaries whose writer is dead
  (same host, pid gone) or that are older than a day; opening it for reading
  (:meth:`ResultsStore.open_existing`) removes nothing.
* **Claims.**  Before computing a point a writer takes ``<key>.claim``
  (created with ``O_CREAT | O_EXCL``): :meth:`try_claim` / :meth:`release`, or
  the :meth:`claim` context manager.  A claim of a live writer is respected;
  one of a dead writer (same host, pid gone; another host: older than a day)
  is taken over.  Claims save computing twice; correctness does not depend on
  them, because every point is a pure function of its configuration and every
  write is atomic.  :meth:`write_point` holds the claim for the write itself,
  so that a reader sees a point being rewritten as *in flight*, not corrupt.
* **The manifest is checked.**  Invalid JSON, a manifest that is not an
  object, missing or ill-typed keys, or a hash that does not match its
  configuration raise :class:`StoreCorrupt` naming the file.  A writer
  rewrites such a manifest only if the store holds no verified point;
  otherwise it refuses (results are never silently destroyed).  A store
  whose manifest holds another configuration is refused
  (:class:`StoreMismatch`).

Liveness of a pid is tested with ``os.kill(pid, 0)`` on POSIX; on Windows
(where that call would end the process) a writer counts as alive until its
file is a day old.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import provenance as _provenance

FORMAT = 1  # of the manifest
CHECKSUM_FORMAT = 1  # of the checksum files
META_KEY = b"gradient_confusion"
MANIFEST_KEYS = {"format": int, "hash": str, "configuration": dict}
#: A temporary or claim whose writer cannot be checked (another host, Windows) counts as abandoned after this.
ABANDONED_AFTER_S = 24 * 3600.0
#: A claim file still empty or half-written (its writer is between ``open`` and ``write``) for this long is dead.
CLAIM_WRITE_GRACE_S = 60.0
#: How long :meth:`ResultsStore.read_point` waits for a point another writer is rewriting.
READ_WAIT_S = 30.0


class StoreMismatch(ValueError):
    """The folder holds results of a different configuration, or is not a results store."""


class StoreCorrupt(ValueError):
    """A store file (the manifest, or a point) is damaged; the message names the file and what is wrong."""


def canonical_json(value) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(value) -> str:
    """SHA-256 of the canonical JSON of ``value`` (hex)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _host() -> str:
    # dots and other separators would break the parsing of temporary names
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{32})\.tmp$")


def temporary_name(path: Path) -> Path:
    """A unique temporary beside ``path`` whose name says which writer (host, pid) owns it."""
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def _write_synced(tmp: Path, data: bytes) -> None:
    """Write ``data`` to the temporary ``tmp`` and flush it to disk (the caller renames or removes it)."""
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file and an atomic rename."""
    tmp = temporary_name(path)
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _create_exclusive(path: Path, data: bytes) -> bool:
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
        The writer's host as it appears in file names (see ``temporary_name``).
    pid : int
        Its process id.
    since : float
        Modification time of its file; a writer that cannot be checked counts
        as alive until the file is ``ABANDONED_AFTER_S`` old.

    Returns
    -------
    bool
    """
    if host != _host() or os.name == "nt":
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


def _read_manifest(path: Path) -> dict:
    """The validated manifest at ``path``; ``StoreCorrupt`` naming the file and the defect otherwise."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise StoreCorrupt(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise StoreCorrupt(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno}; "
                           f"truncated or overwritten?)") from None
    if not isinstance(document, dict):
        raise StoreCorrupt(f"{path}: not a JSON object (got {type(document).__name__})")
    missing = [key for key in MANIFEST_KEYS if key not in document]
    if missing:
        raise StoreCorrupt(f"{path}: missing {', '.join(map(repr, missing))}")
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(document[key], kind) or isinstance(document[key], bool):
            raise StoreCorrupt(f"{path}: {key!r} must be a JSON {kind.__name__}, got {document[key]!r:.80}")
    if document["format"] != FORMAT:
        raise StoreCorrupt(f"{path}: format {document['format']} is not one this code reads (it reads {FORMAT})")
    if config_hash(document["configuration"]) != document["hash"]:
        raise StoreCorrupt(f"{path}: its 'hash' does not match its 'configuration' (edited or damaged)")
    return document


class ResultsStore:
    """A folder of per-point results for one configuration (see the module docstring).

    Open it for writing with ``ResultsStore(root, configuration)`` and for
    reading with :meth:`open_existing`.
    """

    def __init__(self, root, configuration: dict, points: dict[str, dict] | None = None, versions: dict | None = None):
        """Open ``root`` for writing ``configuration``, creating it if new; refuse it if it holds another configuration.

        Parameters
        ----------
        root : path-like
            The store folder.
        configuration : dict
            What the store holds (hashed; a store of another configuration is refused).
        points : dict, optional
            ``{key: point configuration}`` of the planned points, recorded in the manifest of a new store.
        versions : dict, optional
            Package versions recorded in the manifest of a new store.

        Raises
        ------
        StoreMismatch
            ``root`` holds another configuration, or is a non-empty folder that is not a store.
        StoreCorrupt
            The manifest is damaged and the store holds verified points (it is not rewritten).
        """
        self._setup(root, configuration, read_only=False)
        if self.root.exists() and not self.root.is_dir():
            raise StoreMismatch(f"{self.root} is a file, not a folder: not a results store")
        manifest = self.root / "manifest.json"
        document = {"format": FORMAT, "hash": self.hash, "configuration": configuration, "points": points or {},
                    "versions": versions or {}, "provenance": _provenance.provenance()}
        data = json.dumps(document, indent=1, default=str).encode()
        created = False
        if not manifest.exists():
            if self.root.exists():
                # a concurrent creator's manifest temporary (or its manifest, just renamed in) is not foreign content
                foreign = [p for p in self.root.iterdir()
                           if not (p.name.startswith(".manifest.json.") and _TEMPORARY.match(p.name))]
                if foreign and not manifest.exists():
                    raise StoreMismatch(f"{self.root} exists, is not empty and has no manifest.json: "
                                        f"not a results store")
            if not manifest.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                created = _create_exclusive(manifest, data)  # False: another writer created it meanwhile
        if not created:
            try:
                existing = _read_manifest(manifest)
            except StoreCorrupt as error:
                kept = self._verified_keys()
                if kept:
                    raise StoreCorrupt(f"{error}; the store holds {len(kept)} verified point(s), so the manifest is "
                                       f"not rewritten: repair it, or move the folder away to recompute") from None
                # nothing verified would be lost: a fresh manifest makes the folder usable again
                atomic_write_bytes(manifest, data)
            else:
                self._check_same(existing)
        self.points_dir.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_temporaries()

    @classmethod
    def open_existing(cls, root) -> "ResultsStore":
        """Open an existing store for reading: nothing is created, removed or claimed.

        Parameters
        ----------
        root : path-like
            The store folder.

        Returns
        -------
        ResultsStore
            A read-only store (``done``, ``stale``, ``corrupt``, ``read_point``, ``frame`` work;
            ``write_point`` and claims raise).

        Raises
        ------
        StoreMismatch
            ``root`` is not a folder with a ``manifest.json``.
        StoreCorrupt
            Its manifest is damaged (the message names the file and says what is wrong).
        """
        root = Path(root)
        manifest = root / "manifest.json"
        if not root.is_dir():
            raise StoreMismatch(f"{root} is not a results store (no such folder)")
        if not manifest.is_file():
            raise StoreMismatch(f"{root} is not a results store (no manifest.json)")
        document = _read_manifest(manifest)
        store = cls.__new__(cls)
        store._setup(root, document["configuration"], read_only=True)
        return store

    def _setup(self, root, configuration: dict, read_only: bool) -> None:
        self.root = Path(root)
        self.configuration = configuration
        self.hash = self.hash_of(configuration)
        self.points_dir = self.root / "points"
        self.read_only = read_only
        self._claims: dict[str, str] = {}  # key -> token of the claims this object holds

    def _check_same(self, existing: dict) -> None:
        if existing["hash"] != self.hash:
            old = existing["configuration"]
            differs = sorted(k for k in set(old) | set(self.configuration) if old.get(k) != self.configuration.get(k))
            raise StoreMismatch(
                f"{self.root} holds results of a different configuration (differs in: {', '.join(differs)}); "
                f"use a new folder, or delete this one to recompute"
            )

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise PermissionError(f"{self.root} was opened read-only (ResultsStore.open_existing): cannot {what}")

    def _remove_abandoned_temporaries(self) -> None:
        """Remove the temporaries (and taken-over claims) of writers that are gone; never a live writer's."""
        now = time.time()
        for folder in (self.root, self.points_dir):
            for tmp in folder.glob(".*.tmp"):
                try:
                    since = tmp.stat().st_mtime
                except FileNotFoundError:
                    continue  # renamed into place by its writer meanwhile
                match = _TEMPORARY.match(tmp.name)
                if match is None:  # not named by this code: only age says it is abandoned
                    abandoned = now - since >= ABANDONED_AFTER_S
                else:
                    abandoned = not writer_alive(match["host"], int(match["pid"]), since)
                if abandoned:
                    tmp.unlink(missing_ok=True)

    @staticmethod
    def hash_of(configuration: dict) -> str:
        """The hash a store of ``configuration`` records (and checks) in its manifest."""
        return config_hash(configuration)

    @property
    def manifest(self) -> dict:
        """The validated manifest (``StoreCorrupt`` if it is damaged)."""
        return _read_manifest(self.root / "manifest.json")

    def _path(self, key: str) -> Path:
        return self.points_dir / f"{key}.parquet"

    def _checksum_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.sha256"

    def _claim_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.claim"

    # ------------------------------------------------------------------ verification

    def _verify(self, key: str):
        """One look at a point: ``("ok", checksum document, bytes)``, ``("missing",)``, ``("corrupt", reason)``
        or ``("changing",)`` when its checksum file changed while it was read (a writer is replacing it)."""
        parquet, checksum = self._path(key), self._checksum_path(key)
        try:
            before = checksum.read_bytes()
        except FileNotFoundError:
            before = None
        try:
            data = parquet.read_bytes()
        except FileNotFoundError:
            data = None
        try:
            after = checksum.read_bytes()
        except FileNotFoundError:
            after = None
        if before != after:
            return ("changing",)
        if data is None and after is None:
            return ("missing",)
        if after is None:
            return ("corrupt", f"no checksum file {checksum.name} (an interrupted write, or a store written "
                               f"before checksums were kept)")
        try:
            document = json.loads(after.decode("utf-8"))
            expected, length, code = document["sha256"], document["bytes"], document["code"]
            if not (isinstance(expected, str) and isinstance(length, int) and isinstance(code, str)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return ("corrupt", f"checksum file {checksum.name} is unreadable")
        if data is None:
            return ("corrupt", f"{parquet.name} is missing (its checksum file is there)")
        if len(data) != length:
            what = "empty" if not data else f"truncated or extended: {len(data)} bytes, {length} written"
            return ("corrupt", f"{parquet.name} is {what}")
        if hashlib.sha256(data).hexdigest() != expected:
            return ("corrupt", f"{parquet.name} has changed bytes (its SHA-256 differs from the one recorded at "
                               f"writing)")
        return ("ok", document, data)

    def _examine(self, key: str, wait: float = 0.0):
        """``_verify`` that tells a point being (re)written from a damaged one.

        Returns ``("ok", document, bytes)``, ``("missing",)``, ``("corrupt", reason)``
        or ``("in flight", claim)``.  With ``wait`` > 0, waits that long for a
        point in flight to settle.
        """
        deadline = time.monotonic() + wait
        changes = 0
        while True:
            state = self._verify(key)
            if state[0] == "changing":
                changes += 1
                if changes > 200 and time.monotonic() >= deadline:  # rewritten over and over: busy, not broken
                    return ("in flight", self._live_claim(key) or {"pid": None, "host": None, "time": None})
                time.sleep(0.01)
                continue
            if state[0] in ("ok", "missing"):
                return state
            holder = self._live_claim(key)
            if holder is None:
                # the writer may have finished between the look and the claim check (it releases after writing)
                again = self._verify(key)
                if again[0] == "changing":
                    changes += 1
                    continue
                return again
            if time.monotonic() >= deadline:
                return ("in flight", holder)
            time.sleep(0.02)

    def _keys_on_disk(self) -> list[str]:
        keys = {p.stem for p in self.points_dir.glob("*.parquet")} | {p.stem for p in self.points_dir.glob("*.sha256")}
        return sorted(k for k in keys if not k.startswith("."))

    def _scan(self) -> dict[str, tuple]:
        return {key: self._examine(key) for key in self._keys_on_disk()}

    def _verified_keys(self) -> list[str]:
        return [key for key in self._keys_on_disk() if self._verify(key)[0] == "ok"]

    def is_done(self, key: str) -> bool:
        """Whether point ``key`` is stored, verifies, and was made by the current code."""
        state = self._examine(key)
        return state[0] == "ok" and state[1]["code"] == _provenance.code_fingerprint()

    def status(self) -> dict[str, tuple[str, object]]:
        """Every point with a file in the store: ``{key: (state, detail)}``, one look at each file.

        ``state`` is ``"done"`` (verified, current code; detail: its checksum
        record), ``"stale"`` (verified, other code; detail: ``{"code", "commit"}``),
        ``"corrupt"`` (detail: the reason) or ``"in flight"`` (a live writer
        holds its claim while its files change; detail: ``{"pid", "host", "time"}``).
        """
        current = _provenance.code_fingerprint()
        out = {}
        for key, state in self._scan().items():
            if state[0] == "ok":
                document = state[1]
                out[key] = (("done", document) if document["code"] == current
                            else ("stale", {"code": document["code"], "commit": document.get("commit")}))
            elif state[0] != "missing":
                out[key] = (state[0], state[1])
        return out

    def done(self) -> set[str]:
        """Keys of the points stored, verified, and made by the current code (``provenance.code_fingerprint``)."""
        return {key for key, (state, _) in self.status().items() if state == "done"}

    def stale(self) -> dict[str, dict]:
        """Verified points made by other code: ``{key: {"code": fingerprint, "commit": commit or None}}``."""
        return {key: info for key, (state, info) in self.status().items() if state == "stale"}

    def corrupt(self) -> dict[str, str]:
        """Damaged points: ``{key: reason}`` (a point another writer is rewriting is not listed)."""
        return {key: info for key, (state, info) in self.status().items() if state == "corrupt"}

    def in_flight(self) -> dict[str, dict]:
        """Points a live writer has claimed (being computed or written): ``{key: {"pid", "host", "time"}}``."""
        out = {}
        for path in sorted(self.points_dir.glob("*.claim")):
            holder = self._live_claim(path.stem)
            if holder is not None:
                out[path.stem] = holder
        return out

    # ------------------------------------------------------------------ claims

    def _read_claim(self, path: Path):
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

    def _claim_alive(self, claim) -> bool:
        raw, document, since = claim
        if document is None:  # its writer is between creating and filling it, or died there
            return time.time() - since < CLAIM_WRITE_GRACE_S
        try:
            return writer_alive(str(document["host"]), int(document["pid"]), since)
        except (TypeError, ValueError):
            return time.time() - since < CLAIM_WRITE_GRACE_S

    def _live_claim(self, key: str) -> dict | None:
        claim = self._read_claim(self._claim_path(key))
        if claim is None or not self._claim_alive(claim):
            return None
        document = claim[1] or {}
        return {k: document.get(k) for k in ("pid", "host", "time")}

    def try_claim(self, key: str) -> bool:
        """Take the claim on point ``key`` before computing it.

        Parameters
        ----------
        key : str
            The point's key.

        Returns
        -------
        bool
            ``True`` if this store object now holds the claim (newly taken, or
            taken over from a dead writer); ``False`` if a live writer (another
            process, or another store object) holds it: skip the point, it is
            being computed.  Release with :meth:`release`.
        """
        self._require_writable("claim points")
        if key in self._claims:
            return True
        path = self._claim_path(key)
        for _ in range(5):
            token = uuid.uuid4().hex
            document = {"pid": os.getpid(), "host": _host(), "time": time.time(), "token": token}
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                claim = self._read_claim(path)
                if claim is None:
                    continue  # released meanwhile: try again
                if self._claim_alive(claim):
                    return False
                self._remove_dead_claim(path, claim[0])
                continue
            try:
                os.write(fd, json.dumps(document).encode())
            finally:
                os.close(fd)
            self._claims[key] = token
            return True
        return False  # the claim kept changing hands: leave the point to the others

    def _remove_dead_claim(self, path: Path, raw: bytes) -> None:
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

    def release(self, key: str) -> None:
        """Give up the claim on ``key`` taken with :meth:`try_claim` (no-op if this object does not hold it)."""
        token = self._claims.pop(key, None)
        if token is None:
            return
        path = self._claim_path(key)
        claim = self._read_claim(path)
        if claim is not None and claim[1] is not None and claim[1].get("token") == token:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def claim(self, key: str):
        """Context manager around :meth:`try_claim` and :meth:`release`: ``with store.claim(key) as mine:``.

        ``mine`` is ``True`` when this object holds the claim (compute and
        write the point), ``False`` when a live writer holds it (skip it).
        The claim is released on leaving the block, also on an error or an
        interrupt; a claim held before entering is left held.
        """
        held = key in self._claims
        mine = self.try_claim(key)
        try:
            yield mine
        finally:
            if mine and not held:
                self.release(key)

    def release_all(self) -> None:
        """Release every claim this object holds."""
        for key in list(self._claims):
            self.release(key)

    # ------------------------------------------------------------------ points

    def write_point(self, key: str, frame: pd.DataFrame, metadata: dict) -> None:
        """Store one point: ``frame`` as Parquet with ``metadata`` (plus provenance), then its checksum file.

        Parameters
        ----------
        key : str
            The point's key.
        frame : pandas.DataFrame
            Its table.
        metadata : dict
            Stored in the Parquet schema metadata.  ``metadata["provenance"]``
            (as ``provenance.provenance()`` returns it) says which code computed
            the point, for example a Dask worker; without it, this process's
            provenance is recorded.

        Notes
        -----
        The claim on ``key`` is held during the write (taken here if not held
        already, waiting while a live writer holds it), so that readers see the
        replacement of an old file as in flight, not as corrupt.
        """
        self._require_writable("write points")
        metadata = {**metadata, "provenance": metadata.get("provenance") or _provenance.provenance()}
        table = pa.Table.from_pandas(frame, preserve_index=False)
        existing = table.schema.metadata or {}
        table = table.replace_schema_metadata({**existing, META_KEY: canonical_json(metadata).encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data = sink.getvalue().to_pybytes()
        checksum = {"format": CHECKSUM_FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "code": metadata["provenance"]["code"], "commit": metadata["provenance"].get("commit"),
                    "written": time.time(), "writer": {"host": _host(), "pid": os.getpid()}}
        taken_here = key not in self._claims
        if taken_here:
            while not self.try_claim(key):
                time.sleep(0.05)  # another live writer holds it: let it finish rather than interleave the files
        try:
            # the old checksum goes first: an old checksum beside a new file would read as corruption
            self._checksum_path(key).unlink(missing_ok=True)
            atomic_write_bytes(self._path(key), data)
            atomic_write_bytes(self._checksum_path(key), json.dumps(checksum).encode())
        finally:
            if taken_here:
                self.release(key)

    def read_point(self, key: str) -> tuple[pd.DataFrame, dict]:
        """The stored frame of one point and its metadata, after verifying its checksum.

        Parameters
        ----------
        key : str
            The point's key.

        Returns
        -------
        (pandas.DataFrame, dict)

        Raises
        ------
        StoreCorrupt
            The point file is damaged (the message names it and says how), or
            another writer kept rewriting it for ``READ_WAIT_S``.
        FileNotFoundError
            No such point.
        """
        state = self._examine(key, wait=READ_WAIT_S)
        path = self._path(key)
        if state[0] == "missing":
            raise FileNotFoundError(f"{path}: no such point in the store")
        if state[0] == "corrupt":
            raise StoreCorrupt(f"{path}: {state[1]}; rerun the sweep to recompute it")
        if state[0] == "in flight":
            raise StoreCorrupt(f"{path}: being rewritten by pid {state[1]['pid']} on {state[1]['host']}; "
                               f"try again when it has finished")
        table = pq.read_table(pa.BufferReader(state[2]))
        metadata = json.loads(table.schema.metadata[META_KEY])
        return table.to_pandas(), metadata

    def frame(self) -> pd.DataFrame:
        """Every trial of every point of :meth:`done`, with the point's configuration as columns."""
        frames = []
        for key in sorted(self.done()):
            frame, metadata = self.read_point(key)
            columns = {k: v for k, v in metadata["config"].items() if not isinstance(v, (dict, list))}
            frames.append(frame.assign(point=key, **columns))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
