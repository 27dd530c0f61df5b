"""Hash-pinned downloads of the public datasets into a local cache.

Every file is fetched with :func:`pooch.retrieve` against a pinned checksum and kept
in :func:`cache_dir`. Failures end in one line that says what to do: without network a
:class:`PublicDataUnavailable` names the dataset, its DOI and the generated dataset the
course ships instead; a file whose checksum differs gives a :class:`PublicDataCorrupt`
that names the file to delete.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MLPP_PUBLIC"
HASH_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


class PublicDataUnavailable(RuntimeError):
    """A public dataset cannot be had here (no network, server down, no pinned hash)."""


class PublicDataCorrupt(RuntimeError):
    """A cached or downloaded file does not match its pinned checksum."""


@dataclass(frozen=True)
class PublicDataset:
    """What the error messages say about one public dataset."""

    name: str  # e.g. "Top Quark Tagging Reference Dataset"
    doi: str  # e.g. "10.5281/zenodo.2603256"
    generated: str  # the course's generated equivalent, e.g. 'mlpp.data.load("top")'

    def unavailable(self, problem: str, advice: str = "retry with network access") -> PublicDataUnavailable:
        """The one-line error for when the data cannot be had: what failed, what to do instead."""
        return PublicDataUnavailable(
            f"{self.name} (doi:{self.doi}): {_one_line(problem)}; {advice}, "
            f"or use the generated equivalent {self.generated}"
        )


def cache_dir() -> Path:
    """Folder of downloaded public files: ``$MLPP_PUBLIC`` or ``~/.cache/mlpp/public``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlpp" / "public"


def split_hash(known_hash: str) -> tuple[str, str]:
    """``"md5:abc…"`` -> ``("md5", "abc…")``; a bare hex string is taken as sha256 (pooch's rule)."""
    alg, sep, value = known_hash.partition(":")
    if not sep:
        alg, value = "sha256", known_hash
    alg = alg.lower()
    if alg not in HASH_ALGORITHMS:
        raise ValueError(f"unknown hash algorithm {alg!r} in {known_hash!r}")
    return alg, value.lower()


def fetch(url: str, fname: str, known_hash: str | None, dataset: PublicDataset,
          *, verify: bool = True) -> Path:
    """Path of ``fname`` in :func:`cache_dir`, downloaded from ``url`` if it is not there yet.

    ``known_hash`` is pooch's ``"alg:hex"``. A file already in the cache is checked against
    it and used as is; a missing one is downloaded and checked by pooch. ``known_hash=None``
    is accepted only with ``verify=False``, the caller's explicit choice to skip the check.
    """
    import pooch

    if known_hash is None and verify:
        raise dataset.unavailable(f"mlpp pins no checksum for {fname} and will not download it unverified",
                                  advice="pass verify=False to accept that")
    path = cache_dir() / fname
    if path.exists():
        if known_hash is None:
            return path
        alg, expected = split_hash(known_hash)
        if pooch.file_hash(str(path), alg=alg) != expected:
            raise PublicDataCorrupt(
                f"{path} does not match its expected {alg} hash ({dataset.name}, doi:{dataset.doi}): "
                f"delete {path} and retry"
            )
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=path.parent,
                             downloader=_downloader())
    except ValueError as err:
        if "hash" not in str(err):
            raise
        alg = split_hash(known_hash)[0] if known_hash else "pinned"
        raise PublicDataCorrupt(
            f"the download of {fname} ({dataset.name}, doi:{dataset.doi}) does not match its expected "
            f"{alg} hash: delete {path} if it exists and retry"
        ) from None
    except OSError as err:  # requests' ConnectionError, Timeout and HTTPError are OSErrors
        status = getattr(getattr(err, "response", None), "status_code", None)
        reason = type(err).__name__ + (f", HTTP {status}" if status else "")
        raise dataset.unavailable(f"downloading {fname} from {url} failed ({reason})") from None
    return Path(got)


def _downloader():
    """The pooch downloader (a function of its own so tests can stand in for the network)."""
    import pooch

    return pooch.HTTPDownloader(progressbar=sys.stderr.isatty())


def _one_line(text: str, limit: int = 240) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
