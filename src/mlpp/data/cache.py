"""Atomic, hash-verified storage of generated datasets.

Every file is written to a temporary name in the same folder and renamed into place,
so a crash never leaves a half-written file under the real name. Its sha256 goes into
``manifest.json`` beside it; loading recomputes the hash and refuses a file that does
not match, with a message that says how to rebuild it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

MANIFEST = "manifest.json"
# Data files are shared read-only (a hub's students, the grading sandbox): readable by all,
# unlike mkstemp's 0600. The umask still applies, so a private setting stays private.
FILE_MODE = 0o644


def _publish_mode(path: str | Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, FILE_MODE & ~umask)


class CorruptCacheError(RuntimeError):
    """A cached file is missing from the manifest, truncated or altered."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(obj, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        _publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a lock file beside the data) for the block.

    Two notebooks that ask for the same dataset at once then generate it once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(folder: Path) -> dict:
    """The manifest of ``folder`` (empty if there is none yet)."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorruptCacheError(
            f"{path} is not valid JSON ({err}); delete it and regenerate with 'mlpp data generate --all --force'"
        ) from None


def write_atomic(path: Path, writer: Callable[[Path], None], meta: dict | None = None) -> str:
    """Write ``path`` through ``writer(tmp_path)``, rename it into place, record its sha256.

    Returns the sha256. ``meta`` (card hash, sizes, versions) is stored in the manifest.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        digest = sha256_of(tmp_path)
        _publish_mode(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    with locked(path.parent / ".manifest.lock"):
        manifest = read_manifest(path.parent)
        manifest[path.name] = {"sha256": digest, "bytes": path.stat().st_size,
                               "written": time.strftime("%Y-%m-%dT%H:%M:%S"), **(meta or {})}
        _write_json_atomic(path.parent / MANIFEST, manifest)
    return digest


def write_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict | None = None) -> str:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically and record it; returns its sha256."""

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append ".npz" to a bare path
            np.savez(handle, **arrays)

    return write_atomic(path, writer, meta)


def verify(path: Path, rebuild_hint: str) -> dict:
    """Check ``path`` against the manifest; return its manifest entry.

    Raises :class:`CorruptCacheError` with ``rebuild_hint`` when the file is not in the
    manifest or its hash differs (a partial copy, a crashed write, an edit by hand).
    """
    path = Path(path)
    entry = read_manifest(path.parent).get(path.name)
    if entry is None:
        raise CorruptCacheError(f"{path} is not in the cache manifest (partial or foreign file): {rebuild_hint}")
    if path.stat().st_size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
        raise CorruptCacheError(f"{path} is corrupt or incomplete (sha256 mismatch): {rebuild_hint}")
    return entry
