"""The results store's file formats, and the checks a file must pass to count.

* ``manifest.json``: ``{"format", "hash", "configuration", "points", "versions",
  "provenance"}``; :func:`read_manifest` checks it (valid JSON, an object, the
  keys of ``MANIFEST_KEYS`` with their types, this code's ``FORMAT``, a hash
  that matches the configuration) and raises :class:`StoreCorrupt` naming the
  file and the defect otherwise.
* ``points/<key>.parquet``: the point's table, with its metadata (configuration,
  seed, timing, provenance...) as canonical JSON under ``META_KEY`` in the
  Parquet schema metadata (:func:`point_bytes`, :func:`read_point_bytes`).
* ``points/<key>.sha256``: the checksum record (JSON, :func:`checksum_record`):
  SHA-256 and length of the whole Parquet file, the code fingerprint and commit
  that made it, when and by which writer.  A sidecar rather than a checksum
  inside the Parquet file because a checksum in the footer cannot cover the
  footer itself, and one over the decoded columns would miss a flip in page
  headers or statistics.

:func:`verify_point` is the one look at a point's two files that says
whether it counts: a flipped byte anywhere in the Parquet file, a truncated
or emptied file, or a missing or unreadable checksum file makes it corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .store_files import writer_host

FORMAT = 1  # of the manifest
CHECKSUM_FORMAT = 1  # of the checksum files
META_KEY = b"gradient_confusion"
MANIFEST_KEYS = {"format": int, "hash": str, "configuration": dict}


class StoreCorrupt(ValueError):
    """A store file (the manifest, or a point) is damaged; the message names the file and what is wrong."""


def canonical_json(value) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(value) -> str:
    """SHA-256 of the canonical JSON of ``value`` (hex)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def read_manifest(path: Path) -> dict:
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


def point_bytes(frame: pd.DataFrame, metadata: dict) -> bytes:
    """The Parquet file of a point: ``frame`` with ``metadata`` as canonical JSON under ``META_KEY``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata({**existing, META_KEY: canonical_json(metadata).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_point_bytes(data: bytes) -> tuple[pd.DataFrame, dict]:
    """The frame and metadata of a point's Parquet file (inverse of :func:`point_bytes`)."""
    table = pq.read_table(pa.BufferReader(data))
    metadata = json.loads(table.schema.metadata[META_KEY])
    return table.to_pandas(), metadata


def checksum_record(data: bytes, provenance: dict) -> dict:
    """The checksum file of a point's Parquet bytes ``data`` made by the code of ``provenance``."""
    return {"format": CHECKSUM_FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "code": provenance["code"], "commit": provenance.get("commit"),
            "written": time.time(), "writer": {"host": writer_host(), "pid": os.getpid()}}


def verify_point(parquet: Path, checksum: Path):
    """One look at a point's two files: ``("ok", checksum record, bytes)``, ``("missing",)``, ``("corrupt", reason)``
    or ``("changing",)`` when its checksum file changed while it was read (a writer is replacing it)."""
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
