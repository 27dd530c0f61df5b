"""Build a dataset from its card: chunks → executor → features → one verified HDF5 file.

Every finished chunk is kept, hash-verified, in a hidden folder beside the file
(``.<card>-<tier>.h5.parts/``) until the whole file is written: a build that is
interrupted (Ctrl-C, a crash, a session that ends) resumes with the chunks it still
needs, and the folder is removed once the file is in place.

Chunks go through the ``concurrent.futures.Executor`` interface: a local process pool
by default, or a Dask cluster's executor (``dask.distributed.Client.get_executor()``)
when a scheduler address is given, so that generation at reference-dataset scale
runs on an existing cluster with no change of code.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np

from mlpp import settings
from mlpp.data import cache
from mlpp.data.cards import Card, load_card
from mlpp.data.dataset import (CONSTITUENT_KEYS, LEVELS, EventDataset, JetDataset, PairedDataset, TrackEvents,
                                read_h5, write_h5)
from mlpp.data.features import (EVENT_JET_FEATURES, FEATURE_NAMES, UNFOLDING_OBSERVABLES, event_jet_features,
                                jet_features, unfolding_observables)


# Bump when the generator, the detector's code or the features change what they write:
# cached files made by another version are then regenerated, never silently reused.
# (3: calorimeter towers.) The detector's parameters (the card's, mlpp.data.cards) are in the fingerprint themselves.
GENERATOR_VERSION = 3
# The same for what only event cards write (their selection, their per-jet features): bumping it
# regenerates event cards alone, and jet cards' fingerprints do not mention it.
EVENT_MODE_VERSION = 1
# The same for paired cards (their particle level, pairing and observables): only their fingerprints mention it.
PAIRED_MODE_VERSION = 1
# The same for tracks cards (mlpp.tracking's physics and the file layout). Their files depend on
# neither the course detector nor the jet code, so their fingerprints mention only this version.
TRACKS_MODE_VERSION = 1


def _fingerprint(card: Card) -> str:
    if card.is_tracks:
        return f"{card.sha256}:tracks-v{TRACKS_MODE_VERSION}"
    # A card without a detector: block has the default model, so its fingerprint is the one it always had.
    detector = hashlib.sha256(json.dumps(card.detector.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    version = f"v{GENERATOR_VERSION}" + (f".e{EVENT_MODE_VERSION}" if card.is_events else "")
    version += f".p{PAIRED_MODE_VERSION}" if card.is_paired else ""
    return f"{card.sha256}:{version}:det-{detector}"


def dataset_path(name: str, tier: str | None = None) -> Path:
    """Where the generated file of card ``name`` lives for ``tier``."""
    return settings.cache_dir() / f"{name}-{settings.tier(tier)}.h5"


def rebuild_hint(name: str, tier: str | None = None) -> str:
    return f"rebuild it with 'mlpp data generate {name} --tier {settings.tier(tier)} --force'"


def run_chunk(card: Card, class_index: int, chunk_index: int, n_jets: int) -> dict[str, np.ndarray]:
    """One work unit: generate the jets, then their high-level features (in the worker)."""
    from mlpp.data.generate import generate_chunk

    _limit_worker_threads()
    out = generate_chunk(card, class_index, chunk_index, n_jets, detector=card.detector)
    if card.is_tracks:
        return out  # hits and particles, nothing to compute from them
    t0 = time.perf_counter()
    if card.is_events:
        # Per-jet features from the constituents, which are then dropped: (n, N, P) → (n, N, F).
        n, N, P = out["mask"].shape
        columns = [out[k].reshape(n * N, P) for k in ("pt", "eta", "phi", "e", "mask")]
        out = {k: v for k, v in out.items() if k not in CONSTITUENT_KEYS}
        out["features"] = event_jet_features(*columns, card.jets.R).reshape(n, N, -1)
        out["seconds"] = out["seconds"] + (time.perf_counter() - t0)
        return out
    if card.is_paired:
        return _paired_observables(out, card.jets.R, t0)
    features = jet_features(out["pt"], out["eta"], out["phi"], out["e"], out["mask"], card.jets.R)
    for column, name in ((0, "pt"), (1, "eta"), (3, "mass")):
        features[:, FEATURE_NAMES.index(name)] = out["jet_p4"][:, column]
    out["features"] = features
    out["seconds"] = out["seconds"] + (time.perf_counter() - t0)
    return out


def _paired_observables(out: dict[str, np.ndarray], R: float, t0: float) -> dict[str, np.ndarray]:
    """A paired chunk's observables per level from its constituents, which are then dropped:
    ``<level>_observables`` (n, 6), NaN where the level has no jet."""
    for level in LEVELS:
        mask = out[f"{level}_mask"]
        has_jet = mask.any(axis=1)
        values = np.full((len(mask), len(UNFOLDING_OBSERVABLES)), np.nan, np.float32)
        if has_jet.any():
            values[has_jet] = unfolding_observables(*(out[f"{level}_{k}"][has_jet] for k in ("pt", "eta", "phi", "e")),
                                                    mask[has_jet], R)
        out[f"{level}_observables"] = values
    out = {k: v for k, v in out.items() if not any(k == f"{level}_{c}" for level in LEVELS for c in CONSTITUENT_KEYS)}
    out["seconds"] = out["seconds"] + (time.perf_counter() - t0)
    return out


def _limit_worker_threads() -> None:
    """One numpy/torch thread per worker process, since the pool already uses every core.

    Never in the calling process: a test or a notebook that runs a chunk in-process would
    otherwise keep ``OMP_NUM_THREADS=1`` for everything it does afterwards.
    """
    if multiprocessing.parent_process() is not None:
        settings.limit_threads(1)


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None) -> Iterator[cf.Executor]:
    """A process pool (``workers`` processes) or, with ``scheduler``, a Dask executor."""
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ImportError("--scheduler needs dask.distributed: pip install 'distributed'") from None
        client = Client(scheduler)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    n = workers or max(1, min(os.cpu_count() or 1, 8))
    # spawn: a notebook may already hold TensorFlow or torch threads that must not be forked.
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End the workers' running chunks now, not when they finish (what an interrupted build needs).

    ``shutdown`` alone waits for running chunks, minutes each in the full tier, and a SIGTERM
    sent to the main process would leave them running; Python < 3.14 has no public
    ``terminate_workers``, hence the private ``_processes``.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def _versions() -> dict[str, str]:
    found = {}
    for package in ("pythia8mc", "fastjet", "numpy", "awkward"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    found["python"] = platform.python_version()
    return found


def _progress(total: int, desc: str, quiet: bool, unit: str = "jet"):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, smoothing=0.1)


def build(name: str, tier: str | None = None, workers: int | None = None, scheduler: str | None = None,
          force: bool = False, quiet: bool = False) -> Path:
    """Generate card ``name`` for ``tier`` into the cache (skipped when a verified file exists).

    Returns the path of the HDF5 file.
    """
    tier = settings.tier(tier)
    card = load_card(name)
    path = dataset_path(name, tier)
    with cache.locked(path.with_name(f".{path.name}.lock")):
        return _build_locked(card, path, tier, workers, scheduler, force, quiet)


def _build_locked(card: Card, path: Path, tier: str, workers: int | None, scheduler: str | None,
                  force: bool, quiet: bool) -> Path:
    name = card.name
    if path.exists() and not force:
        entry = cache.verify(path, rebuild_hint(name, tier))
        if entry.get("fingerprint") == _fingerprint(card):
            return path
        if not quiet:
            print(f"{path.name}: the card or the generator changed since it was made; generating again",
                  file=sys.stderr)
    units = card.chunks(tier)
    total = sum(n for _, _, n in units)
    parts = _parts_dir(path)
    if force:
        shutil.rmtree(parts, ignore_errors=True)
    results = _saved_chunks(parts, card, units)
    if results and not quiet:
        print(f"{name} ({tier}): resuming an interrupted build, {len(results)} of {len(units)} chunks kept "
              f"in {parts}", file=sys.stderr)
    started = time.perf_counter()
    unit = "event" if card.is_events or card.is_paired or card.is_tracks else "jet"
    with open_executor(workers, scheduler) as pool, _progress(total, f"{name} ({tier})", quiet, unit) as bar:
        bar.update(sum(n for ci, k, n in units if (ci, k) in results))  # a chunk holds exactly its n rows
        futures = {pool.submit(run_chunk, card, ci, k, n): (ci, k, n) for ci, k, n in units if (ci, k) not in results}
        for future in cf.as_completed(futures):
            ci, k, n = futures[future]
            results[(ci, k)] = future.result()
            _save_chunk(parts, card, (ci, k, n), results[(ci, k)])
            bar.update(n)
    wall = time.perf_counter() - started
    ordered = [results[(ci, k)] for ci, k, _ in units]
    if card.is_tracks:
        return _write_tracks(card, path, tier, ordered, total, wall, parts, quiet)
    # Store in a seeded random order so that any slice (train/test split) mixes the classes.
    perm = np.random.default_rng(card.seed).permutation(total)
    meta = {
        "card": card.name, "card_sha256": card.sha256, "generator_version": GENERATOR_VERSION,
        "tier": tier, "seed": card.seed,
        "R": card.jets.R, "events": int(sum(int(r["events"]) for r in ordered)),
        "cpu_seconds": float(sum(float(r["seconds"]) for r in ordered)), "wall_seconds": wall,
        "detector": card.detector.to_dict(), "versions": _versions(),
    }
    labels = np.concatenate([r["label"] for r in ordered])[perm].astype(np.int8)
    if card.is_events or card.is_paired:
        # Per class: the events Pythia made to keep the stored ones (the pass fractions), and their time.
        generated, seconds = [0] * len(card.classes), [0.0] * len(card.classes)
        for (ci, _, _), r in zip(units, ordered):
            generated[ci] += int(r["events"])
            seconds[ci] += float(r["seconds"])
        if card.is_paired:
            meta.update(paired_mode_version=PAIRED_MODE_VERSION, **card.paired)
        else:
            meta.update(event_mode_version=EVENT_MODE_VERSION)
        meta.update(events_per_class=generated, cpu_seconds_per_class=seconds)
    if card.is_paired:
        def stacked(key: str) -> np.ndarray:
            return np.concatenate([r[key] for r in ordered])[perm]

        data = PairedDataset(
            name=card.name, class_names=card.class_names, labels=labels, event=stacked("event"),
            boson_pt=stacked("boson_pt"), jets={level: stacked(f"{level}_jet_p4") for level in LEVELS},
            observables={level: stacked(f"{level}_observables") for level in LEVELS},
            passed={level: stacked(f"pass_{level}") for level in LEVELS}, dr=stacked("dr"),
            matched=stacked("matched"), observable_names=list(UNFOLDING_OBSERVABLES), meta=meta,
        )
    elif card.is_events:
        data = EventDataset(
            name=card.name, class_names=card.class_names, labels=labels,
            jets=np.concatenate([r["jet_p4"] for r in ordered])[perm],
            features=np.concatenate([r["features"] for r in ordered])[perm],
            feature_names=list(EVENT_JET_FEATURES), meta=meta,
        )
    else:
        data = JetDataset(
            name=card.name,
            class_names=card.class_names,
            labels=labels,
            jet=np.concatenate([r["jet_p4"] for r in ordered])[perm],
            features=np.concatenate([r["features"] for r in ordered])[perm],
            constituents={k: np.concatenate([r[k] for r in ordered])[perm] for k in CONSTITUENT_KEYS},
            feature_names=list(FEATURE_NAMES),
            meta=meta,
        )
    cache.write_atomic(path, lambda tmp: write_h5(tmp, data),
                       meta={"card": card.name, "card_sha256": card.sha256, "fingerprint": _fingerprint(card),
                             "tier": tier, unit + "s": total})
    shutil.rmtree(parts, ignore_errors=True)
    if not quiet:
        kept = f"{total} events kept" if card.is_events or card.is_paired else f"{total} jets"
        print(f"{path}: {kept} from {data.meta['events']} events in {wall:.0f} s", file=sys.stderr)
    return path


def _write_tracks(card: Card, path: Path, tier: str, ordered: list[dict], total: int, wall: float, parts: Path,
                  quiet: bool) -> Path:
    """A tracks card's chunks, in card order (no shuffling: events are independent and unlabelled),
    as one :class:`~mlpp.data.dataset.TrackEvents` file with the tracker in its metadata."""
    meta = {
        "card": card.name, "card_sha256": card.sha256, "tracks_mode_version": TRACKS_MODE_VERSION,
        "tier": tier, "seed": card.seed, "events": total, "pt_min": card.tracks["pt_min"],
        "abs_eta_max": card.tracks["abs_eta_max"], "tracker": card.tracker.to_dict(),
        "cpu_seconds": float(sum(float(r["seconds"]) for r in ordered)), "wall_seconds": wall,
        "versions": _versions(),
    }
    data = TrackEvents.from_chunks(ordered, card.tracker, meta)
    cache.write_atomic(path, lambda tmp: write_h5(tmp, data),
                       meta={"card": card.name, "card_sha256": card.sha256, "fingerprint": _fingerprint(card),
                             "tier": tier, "events": total})
    shutil.rmtree(parts, ignore_errors=True)
    if not quiet:
        print(f"{path}: {total} events, {len(data.arrays['hit_layer'])} hits in {wall:.0f} s", file=sys.stderr)
    return path


def _parts_dir(path: Path) -> Path:
    return path.with_name(f".{path.name}.parts")


def _chunk_file(parts: Path, unit: tuple[int, int, int]) -> Path:
    class_index, chunk_index, n_jets = unit
    return parts / f"class{class_index}-chunk{chunk_index}-{n_jets}jets.npz"


def _save_chunk(parts: Path, card: Card, unit: tuple[int, int, int], arrays: dict[str, np.ndarray]) -> None:
    cache.write_npz(_chunk_file(parts, unit), arrays, meta={"fingerprint": _fingerprint(card)})


def _saved_chunks(parts: Path, card: Card, units: list[tuple[int, int, int]]) -> dict[tuple[int, int], dict]:
    """The chunks an interrupted build of this card and generator version left, verified by sha256.

    A chunk of another card version, or one whose hash does not match, is generated again.
    """
    if not parts.exists():
        return {}
    try:
        manifest = cache.read_manifest(parts)
    except cache.CorruptCacheError:
        shutil.rmtree(parts, ignore_errors=True)
        return {}
    kept = {}
    for unit in units:
        path = _chunk_file(parts, unit)
        if not path.exists() or manifest.get(path.name, {}).get("fingerprint") != _fingerprint(card):
            continue
        try:
            cache.verify(path, "it is generated again")
        except cache.CorruptCacheError:
            continue
        with np.load(path) as stored:
            kept[unit[:2]] = {key: stored[key] for key in stored.files}
    return kept


def load(name: str, tier: str | None = None, generate: bool = True,
         **build_options) -> JetDataset | EventDataset | PairedDataset | TrackEvents:
    """The dataset of card ``name`` for ``tier``, generating it first if it is not cached
    (an :class:`~mlpp.data.dataset.EventDataset` for an event card, a
    :class:`~mlpp.data.dataset.PairedDataset` for a paired card,
    :class:`~mlpp.data.dataset.TrackEvents` for a tracks card).

    The file's sha256 is checked against the cache manifest; a corrupt or partial file
    raises :class:`mlpp.data.cache.CorruptCacheError` with the command that rebuilds it.
    """
    tier = settings.tier(tier)
    path = dataset_path(name, tier)
    if not path.exists():
        if not generate:
            raise FileNotFoundError(f"{path} does not exist: generate it with 'mlpp data generate {name} --tier {tier}'")
        build(name, tier, **build_options)
    entry = cache.verify(path, rebuild_hint(name, tier))
    if entry.get("fingerprint") != _fingerprint(load_card(name)):
        if not generate:
            raise cache.CorruptCacheError(
                f"{path} was made from another version of the {name} card or generator: {rebuild_hint(name, tier)}")
        build(name, tier, **build_options)
    return read_h5(path)
