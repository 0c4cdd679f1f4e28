"""The results store: one Parquet file per finished grid point, plus a manifest.

Layout of a store folder::

    manifest.json            the sweep's configuration, its hash, the planned points, versions
    points/<key>.parquet     one per finished point: per-trial statistics; its schema
                             metadata holds the point's configuration, hash, seed,
                             backend, timing and package versions

Every file is written to a temporary name and renamed into place, so a point
is either complete or absent: an interrupted run loses at most the points in
flight, and a rerun finds the finished ones and computes nothing twice.  A
store whose manifest was written by a different configuration is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT = 1
META_KEY = b"gradient_confusion"


class StoreMismatch(ValueError):
    """The folder holds results of a different configuration."""


def canonical_json(value) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(value) -> str:
    """SHA-256 of the canonical JSON of ``value`` (hex)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ResultsStore:
    """A folder of per-point results for one configuration (see the module docstring)."""

    def __init__(self, root, configuration: dict, points: dict[str, dict] | None = None, versions: dict | None = None):
        """Open ``root`` for ``configuration``, creating it if new; refuse it if it holds another configuration.

        ``points`` maps each planned point's key to its configuration; it is
        recorded in the manifest of a new store.
        """
        self.root = Path(root)
        self.configuration = configuration
        self.hash = self.hash_of(configuration)
        self.points_dir = self.root / "points"
        manifest = self.root / "manifest.json"
        if manifest.exists():
            existing = json.loads(manifest.read_text())
            if existing.get("hash") != self.hash:
                old = existing.get("configuration", {})
                differs = sorted(k for k in set(old) | set(configuration) if old.get(k) != configuration.get(k))
                raise StoreMismatch(
                    f"{self.root} holds results of a different configuration (differs in: {', '.join(differs)}); "
                    f"use a new folder, or delete this one to recompute"
                )
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise StoreMismatch(f"{self.root} exists, is not empty and has no manifest.json: not a results store")
            self.points_dir.mkdir(parents=True, exist_ok=True)
            document = {"format": FORMAT, "hash": self.hash, "configuration": configuration,
                        "points": points or {}, "versions": versions or {}}
            atomic_write_bytes(manifest, json.dumps(document, indent=1, default=str).encode())
        self.points_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        for tmp in self.points_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    @staticmethod
    def hash_of(configuration: dict) -> str:
        """The hash a store of ``configuration`` records (and checks) in its manifest."""
        return config_hash(configuration)

    @property
    def manifest(self) -> dict:
        return json.loads((self.root / "manifest.json").read_text())

    def _path(self, key: str) -> Path:
        return self.points_dir / f"{key}.parquet"

    def done(self) -> set[str]:
        """Keys of the points whose results are stored."""
        return {path.stem for path in self.points_dir.glob("*.parquet")}

    def write_point(self, key: str, frame: pd.DataFrame, metadata: dict) -> None:
        """Store one point atomically: ``frame`` as Parquet, ``metadata`` in its schema metadata."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        existing = table.schema.metadata or {}
        table = table.replace_schema_metadata({**existing, META_KEY: canonical_json(metadata).encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self._path(key), sink.getvalue().to_pybytes())

    def read_point(self, key: str) -> tuple[pd.DataFrame, dict]:
        """The stored frame of one point and its metadata."""
        table = pq.read_table(self._path(key))
        metadata = json.loads(table.schema.metadata[META_KEY])
        return table.to_pandas(), metadata

    def frame(self) -> pd.DataFrame:
        """Every stored trial of every point, with the point's configuration as columns."""
        frames = []
        for key in sorted(self.done()):
            frame, metadata = self.read_point(key)
            columns = {k: v for k, v in metadata["config"].items() if not isinstance(v, (dict, list))}
            frames.append(frame.assign(point=key, **columns))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
