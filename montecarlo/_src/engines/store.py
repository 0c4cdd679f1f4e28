"""The results store: one Parquet file per finished grid point, its checksum, and a manifest.

Layout of a store folder::

    manifest.json            the configuration, its hash, the planned points, versions and the
                             provenance of the code that created the store
    points/<key>.parquet     per-trial statistics of one point; its schema metadata holds the
                             point's configuration, seed, backend, timing and provenance
    points/<key>.sha256      the point's checksum file (JSON): SHA-256 and length of the whole
                             Parquet file, the code fingerprint and commit that made it, and
                             the point it claims to be (the store's hash and the key)
    points/<key>.claim       present while a writer computes the point (JSON: pid, host, time)

This module holds the table (:class:`ResultsStore`: which points there are,
in which state, reading and writing them); the files' formats and their
verification are in ``store_format``, the claims in ``store_claims``, the
atomic writes and the liveness of writers in ``store_files``.

What a reader can rely on:

* **A point counts only if it verifies.**  The checksum file is written after
  the Parquet file (each through a unique temporary and an atomic rename), and
  a point is finished when the SHA-256 of its whole Parquet file equals the
  recorded one.  A flipped byte anywhere in the file (column data, compressed
  pages, statistics, footer), a truncated or emptied file, or a missing or
  unreadable checksum file makes the point *corrupt*: it is listed by
  :meth:`ResultsStore.corrupt` with the reason, is not in :meth:`done`, is
  recomputed (overwritten) by the next run, and :meth:`read_point` refuses it
  with a :class:`StoreCorrupt` naming the file.
* **A point is the point its name says.**  Its checksum file records which
  point it is (the hash of the store's configuration and the key); a point
  whose record names another key or another store (its two files copied or
  renamed from elsewhere) is corrupt in the same way, with a reason naming
  both, so that a copy of one point never stands in for another.
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
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pandas as pd

from .. import provenance as _provenance
from .store_claims import Claims
from .store_files import TEMPORARY, atomic_write, create_exclusive, remove_abandoned_temporaries
from .store_format import (FORMAT, StoreCorrupt, StoreMismatch, config_hash, point_bytes, read_manifest,
                           read_point_bytes, verify_file, write_verified)

#: How long :meth:`ResultsStore.read_point` waits for a point another writer is rewriting.
READ_WAIT_S = 30.0


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
                           if not (p.name.startswith(".manifest.json.") and TEMPORARY.match(p.name))]
                if foreign and not manifest.exists():
                    raise StoreMismatch(f"{self.root} exists, is not empty and has no manifest.json: "
                                        f"not a results store")
            if not manifest.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                created = create_exclusive(manifest, data)  # False: another writer created it meanwhile
        if not created:
            try:
                existing = read_manifest(manifest)
            except StoreCorrupt as error:
                kept = self._verified_keys()
                if kept:
                    raise StoreCorrupt(f"{error}; the store holds {len(kept)} verified point(s), so the manifest is "
                                       f"not rewritten: repair it, or move the folder away to recompute") from None
                # nothing verified would be lost: a fresh manifest makes the folder usable again
                atomic_write(manifest, data)
            else:
                self._check_same(existing)
        self.points_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned_temporaries(self.root, self.points_dir)

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
        document = read_manifest(manifest)
        store = cls.__new__(cls)
        store._setup(root, document["configuration"], read_only=True)
        return store

    def _setup(self, root, configuration: dict, read_only: bool) -> None:
        self.root = Path(root)
        self.configuration = configuration
        self.hash = self.hash_of(configuration)
        self.points_dir = self.root / "points"
        self.read_only = read_only
        self._claims = Claims(self.points_dir)  # the claims this object holds

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

    @staticmethod
    def hash_of(configuration: dict) -> str:
        """The hash a store of ``configuration`` records (and checks) in its manifest."""
        return config_hash(configuration)

    @property
    def manifest(self) -> dict:
        """The validated manifest (``StoreCorrupt`` if it is damaged)."""
        return read_manifest(self.root / "manifest.json")

    def summary(self) -> pd.DataFrame:
        """One row per point (planned or on disk): its ``status`` -- "done" (made by this code, checksum
        verified), "stale" (other code), "corrupt", "in flight" (claimed by a live writer) or "to do"."""
        planned = list(self.manifest.get("points") or {})
        done, stale, corrupt, flight = self.done(), self.stale(), self.corrupt(), self.in_flight()
        keys = planned + sorted((done | set(stale) | set(corrupt)) - set(planned))
        status = {**{k: "to do" for k in keys}, **{k: "in flight" for k in flight}, **{k: "stale" for k in stale},
                  **{k: "corrupt" for k in corrupt}, **{k: "done" for k in done}}
        return pd.DataFrame({"point": keys, "status": [status[k] for k in keys]}).set_index("point")

    def __repr__(self) -> str:
        try:
            counts = self.summary()["status"].value_counts()
            kind = self.manifest["configuration"].get("kind", "sweep")
        except (StoreCorrupt, OSError, KeyError) as error:
            return f"ResultsStore({str(self.root)!r}: unreadable, {error})"
        status = ", ".join(f"{n} {label}" for label, n in counts.items())
        return f"ResultsStore({str(self.root)!r}, {kind}: {status or 'no points'}; .summary(), .frame())"

    def _path(self, key: str) -> Path:
        return self.points_dir / f"{key}.parquet"

    def _checksum_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.sha256"

    # ------------------------------------------------------------------ verification

    def _identity(self, key: str) -> dict:
        """What point ``key`` of this store records that it is (``store_format.verify_file`` checks it)."""
        return {"store": self.hash, "key": key}

    def _verify(self, key: str):
        """One look at a point (``store_format.verify_file``): ok, missing, corrupt (damaged, or its record names
        another point or store), or changing under a writer."""
        state = verify_file(self._path(key), self._checksum_path(key), self._identity(key))
        return ("corrupt", state[1]) if state[0] == "mismatch" else state

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
        """Keys of intact points, whatever they claim (a damaged manifest is rewritten only if there are none)."""
        return [key for key in self._keys_on_disk()
                if verify_file(self._path(key), self._checksum_path(key))[0] == "ok"]

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
        return self._claims.in_flight()

    # ------------------------------------------------------------------ claims

    def _live_claim(self, key: str) -> dict | None:
        return self._claims.live(key)

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
        return self._claims.take(key)

    def release(self, key: str) -> None:
        """Give up the claim on ``key`` taken with :meth:`try_claim` (no-op if this object does not hold it)."""
        self._claims.release(key)

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
        for key in self._claims.held():
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
        data = point_bytes(frame, metadata)
        taken_here = key not in self._claims
        if taken_here:
            while not self.try_claim(key):
                time.sleep(0.05)  # another live writer holds it: let it finish rather than interleave the files
        try:
            # the old checksum goes first (an old checksum beside a new file would read as corruption), the new last
            write_verified(self._path(key), data, claims=self._identity(key), code=metadata["provenance"]["code"],
                           commit=metadata["provenance"].get("commit"), record=self._checksum_path(key))
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
        return read_point_bytes(state[2])

    def frame(self) -> pd.DataFrame:
        """Every trial of every point of :meth:`done`, with the point's configuration as columns."""
        frames = []
        for key in sorted(self.done()):
            frame, metadata = self.read_point(key)
            columns = {k: v for k, v in metadata["config"].items() if not isinstance(v, (dict, list))}
            frames.append(frame.assign(point=key, **columns))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
