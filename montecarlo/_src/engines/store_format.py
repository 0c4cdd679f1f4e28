"""The results store's file formats, and the one check every file the toolkit reads back must pass.

* ``manifest.json``: ``{"format", "hash", "configuration", "points", "versions",
  "provenance"}``; :func:`read_manifest` checks it (valid JSON, an object, the
  keys of ``MANIFEST_KEYS`` with their types, this code's ``FORMAT``, a hash
  that matches the configuration) and raises :class:`StoreCorrupt` naming the
  file and the defect otherwise.
* ``points/<key>.parquet``: the point's table, with its metadata (configuration,
  seed, timing, provenance...) as canonical JSON under ``META_KEY`` in the
  Parquet schema metadata (:func:`point_bytes`, :func:`read_point_bytes`).
* ``points/<key>.sha256``: the point's checksum record (below), claiming
  ``{"store": <hash of the store's configuration>, "key": <key>}``.

**Verified files.**  A file the toolkit reads back (a store's point, a
training checkpoint, a figure's data) has a *checksum record* beside it
(JSON, :func:`file_record`): the SHA-256 and length of the whole file, the
fingerprint and commit of the code that made it, when and by which writer,
and its *claims*: what the file is (which point of which store, which
checkpoint of which run, which figure at which scale).  :func:`write_verified`
writes the file and then its record, each atomically (a file rewritten in
place, a checkpoint, gets its record first, naming the content it replaces
as well, so that it verifies at every moment); :func:`verify_file` is
the one look that says whether a file counts: a flipped byte anywhere in it,
a truncated or emptied file, or a missing or unreadable record make it
*corrupt*, and a record whose claims differ from what the reader expects (a
file copied or renamed from another point, run or figure) make it a
*mismatch*; :func:`read_verified` raises :class:`StoreCorrupt` or
:class:`StoreMismatch` naming the file.  Whether the recorded code is the
current one is the reader's to judge (a store's point of other code is stale,
a checkpoint of other code is not resumed, a figure's data of other code are
recomputed).  A record beside the file rather than a checksum inside it,
because a checksum in a Parquet footer cannot cover the footer itself, and
one over the decoded columns would miss a flip in page headers or statistics.
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

from .store_files import atomic_write, writer_host

FORMAT = 1  # of the manifest
CHECKSUM_FORMAT = 2  # of the checksum records (2: with the file's claims)
META_KEY = b"gradient_confusion"
MANIFEST_KEYS = {"format": int, "hash": str, "configuration": dict}


class StoreCorrupt(ValueError):
    """A file read back (a store's manifest or point, a checkpoint, a figure's data) is damaged; the message
    names the file and what is wrong."""


class StoreMismatch(ValueError):
    """The folder holds results of a different configuration, or is not a results store; or a file's record
    claims it is another point, run or figure than the one expected."""


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


def file_record(data: bytes, *, code: str, commit: str | None, claims: dict) -> dict:
    """The checksum record of a file's bytes ``data``: SHA-256, length, the code that made it, and its ``claims``.

    Parameters
    ----------
    data : bytes
        The whole file.
    code : str
        Fingerprint of the code that made it.
    commit : str or None
        Its git commit, for people.
    claims : dict
        What the file is (JSON values); a reader expecting other claims refuses it.

    Returns
    -------
    dict
        ``{"format", "sha256", "bytes", "code", "commit", "claims", "written", "writer"}``.
    """
    return {"format": CHECKSUM_FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "code": code, "commit": commit, "claims": claims,
            "written": time.time(), "writer": {"host": writer_host(), "pid": os.getpid()}}


def record_path(path) -> Path:
    """Where the checksum record of ``path`` lives unless told otherwise: beside it, as ``<stem>.sha256``."""
    return Path(path).with_suffix(".sha256")


def write_verified(path, data: bytes, *, claims: dict, code: str, commit: str | None = None, record=None,
                   in_place: bool = False) -> dict:
    """Write ``data`` to ``path`` and its checksum record (each atomically); return the record.

    Parameters
    ----------
    path : path-like
        The file; its folder must exist.
    data : bytes
        Its whole content.
    claims : dict
        What the file is (JSON values), checked by :func:`read_verified`.
    code : str
        Fingerprint of the code that made the content.
    commit : str, optional
        Its git commit, recorded for people.
    record : path-like, optional
        Where the record goes (default :func:`record_path`).
    in_place : bool
        For a file rewritten again and again that a reader may look at any
        moment, such as a checkpoint: the record goes first and also holds
        the verified file it replaces (``"previous"``), so that the file
        verifies at every moment, as its old content or its new one, even
        if the writer is killed between the two writes.

    Returns
    -------
    dict
        The record written (:func:`file_record`).

    Notes
    -----
    Without ``in_place``, the old record is removed first, so that between
    the two writes the file reads as unverified (no record), never as
    verified by an old record; the record is written last, so a file counts
    only once it is complete.
    """
    path = Path(path)
    record = record_path(path) if record is None else Path(record)
    document = file_record(data, code=code, commit=commit, claims=claims)
    if in_place:
        old = verify_file(path, record)
        if old[0] == "ok":
            document["previous"] = {k: v for k, v in old[1].items() if k not in ("format", "previous")}
        atomic_write(record, json.dumps(document, indent=1))
        atomic_write(path, data)
        return document
    record.unlink(missing_ok=True)
    atomic_write(path, data)
    atomic_write(record, json.dumps(document, indent=1))
    return document


def _claims_differ(path: Path, record: Path, recorded, expected: dict) -> str | None:
    """Why the recorded claims are not ``expected`` (``None`` if they are)."""
    if not isinstance(recorded, dict):
        return None if recorded == expected else f"{record.name} records no claims (a record of older code)"
    if canonical_json(recorded) == canonical_json(expected):
        return None
    differ = sorted(k for k in set(recorded) | set(expected)
                    if canonical_json(recorded.get(k)) != canonical_json(expected.get(k)))
    said = "; ".join(f"{k} {recorded.get(k)!r}, not {expected.get(k)!r}" for k in differ)
    return f"{path.name} is not the file expected here: its record {record.name} says {said}"


def verify_file(path, record=None, claims: dict | None = None):
    """One look at a file and its checksum record: does it count?

    Parameters
    ----------
    path : path-like
        The file.
    record : path-like, optional
        Its checksum record (default :func:`record_path`).
    claims : dict, optional
        What the reader expects the file to be; without it the claims are not checked.

    Returns
    -------
    tuple
        ``("ok", record, bytes)``; ``("missing",)`` (neither file is there);
        ``("corrupt", reason)`` (changed bytes, truncated or emptied, no or an
        unreadable record); ``("mismatch", reason, record)`` (intact, but its
        claims are not ``claims``); or ``("changing",)`` when the record
        changed while it was read (a writer is replacing the file).
    """
    path = Path(path)
    checksum = record_path(path) if record is None else Path(record)
    try:
        before = checksum.read_bytes()
    except FileNotFoundError:
        before = None
    try:
        data = path.read_bytes()
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
        return ("corrupt", f"no checksum file {checksum.name} (an interrupted write, or a file written "
                           f"before checksums were kept)")
    try:
        document = json.loads(after.decode("utf-8"))
    except ValueError:
        return ("corrupt", f"checksum file {checksum.name} is unreadable (not JSON)")
    try:
        expected, length, code = document["sha256"], document["bytes"], document["code"]
        if not (isinstance(expected, str) and isinstance(length, int) and isinstance(code, str)):
            raise TypeError
    except (KeyError, TypeError):
        return ("corrupt", f"checksum file {checksum.name} holds no checksum, length and code (damaged, or a "
                           f"record of older code)")
    if data is None:
        return ("corrupt", f"{path.name} is missing (its checksum file is there)")
    digest, previous = hashlib.sha256(data).hexdigest(), document.get("previous")
    if isinstance(previous, dict) and previous.get("bytes") == len(data) and previous.get("sha256") == digest \
            and isinstance(previous.get("code"), str):
        # written in place (write_verified): the writer stopped after the new record, before the new content
        document = {"format": document.get("format"), **previous}
    elif len(data) != length:
        what = "empty" if not data else f"truncated or extended: {len(data)} bytes, {length} written"
        return ("corrupt", f"{path.name} is {what}")
    elif digest != expected:
        return ("corrupt", f"{path.name} has changed bytes (its SHA-256 differs from the one recorded at "
                           f"writing)")
    if claims is not None:
        differ = _claims_differ(path, checksum, document.get("claims"), claims)
        if differ is not None:
            return ("mismatch", differ, document)
    return ("ok", document, data)


#: How many times :func:`read_verified` looks again at a file whose record changes while it is read.
READ_ATTEMPTS = 50


def read_verified(path, *, claims: dict | None = None, record=None) -> tuple[bytes, dict]:
    """The bytes of ``path`` and its checksum record, once :func:`verify_file` says they count.

    Parameters
    ----------
    path : path-like
        The file.
    claims : dict, optional
        What the file must claim to be (see :func:`write_verified`); not checked without it.
    record : path-like, optional
        Its checksum record (default :func:`record_path`).

    Returns
    -------
    (bytes, dict)
        The content and the record (``"code"`` says which code made it: the caller judges that).

    Raises
    ------
    FileNotFoundError
        Neither the file nor its record is there.
    StoreCorrupt
        The file is damaged or has no readable record (the message names the file and says how).
    StoreMismatch
        The file is intact but its record claims it is something else (the message says what differs).
    """
    path = Path(path)
    for _ in range(READ_ATTEMPTS):
        state = verify_file(path, record, claims)
        if state[0] != "changing":
            break
        time.sleep(0.02)
    else:
        raise StoreCorrupt(f"{path}: its checksum record kept changing while it was read (a writer is replacing it)")
    if state[0] == "missing":
        raise FileNotFoundError(f"{path}: no such file (and no checksum record)")
    if state[0] == "corrupt":
        raise StoreCorrupt(f"{path}: {state[1]}")
    if state[0] == "mismatch":
        raise StoreMismatch(f"{path}: {state[1]}")
    return state[2], state[1]
