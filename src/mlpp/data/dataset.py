"""The in-memory jet, event, paired and track datasets and their HDF5 file format."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlpp.data.features import EVENT_JET_FEATURES, FEATURE_NAMES, UNFOLDING_OBSERVABLES

CONSTITUENT_KEYS = ("pt", "eta", "phi", "e", "charge", "pid_class", "mask")
JET_COLUMNS = ("pt", "eta", "phi", "mass")
LEVELS = ("particle", "detector")  # the two levels of a paired card's events


@dataclass
class JetDataset:
    """Labelled jets with padded constituents.

    Constituent arrays are (n_jets, max_constituents), pT-ordered, padded with zeros
    where ``mask`` is false: ``pt``, ``e`` in GeV; ``eta``; ``phi`` within π of the jet
    axis; ``charge``; ``pid_class`` (see :mod:`mlpp.data.detector`, -1 for padding).
    ``jet`` is (n_jets, 4) = (pT [GeV], η, φ, mass [GeV]) of the clustered jet,
    ``features`` (n_jets, n_features) named by ``feature_names``, ``labels`` (n_jets,).
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    jet: np.ndarray
    features: np.ndarray
    constituents: dict[str, np.ndarray]
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}: {n}" for c, n in zip(self.class_names, np.bincount(self.labels, minlength=len(self.class_names))))
        return (f"JetDataset({self.name!r}, {len(self)} jets [{counts}], "
                f"up to {self.max_constituents} constituents, {len(self.feature_names)} features)")

    @property
    def max_constituents(self) -> int:
        return self.constituents["mask"].shape[1]

    @property
    def mask(self) -> np.ndarray:
        return self.constituents["mask"]

    def feature(self, name: str) -> np.ndarray:
        """One high-level feature by name, e.g. ``"tau32_b1"``: (n_jets,)."""
        try:
            return self.features[:, self.feature_names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; known: {', '.join(self.feature_names)}") from None

    def particles(self, columns: tuple[str, ...] = ("pt", "eta", "phi", "e")) -> np.ndarray:
        """Constituents stacked as (n_jets, max_constituents, len(columns)) float32."""
        return np.stack([self.constituents[c].astype(np.float32) for c in columns], axis=-1)

    def images(self, npix: int = 40, half_width: float | None = None,
               steps: tuple[str, ...] = ("center", "rotate", "flip", "normalize")) -> np.ndarray:
        """Jet images (n_jets, npix, npix); see :mod:`mlpp.data.images` for the steps.

        ``half_width`` defaults to 1.25 R of the card, so the whole jet fits.
        """
        from mlpp.data.images import jet_images

        width = half_width if half_width is not None else 1.25 * float(self.meta.get("R", 0.8))
        c = self.constituents
        return jet_images(c["pt"], c["eta"], c["phi"], c["mask"], npix=npix, half_width=width, steps=steps)

    def subset(self, index: np.ndarray | slice) -> "JetDataset":
        """A new dataset with the jets at ``index`` (copies; the original is not changed)."""
        return JetDataset(
            name=self.name, class_names=list(self.class_names), labels=self.labels[index],
            jet=self.jet[index], features=self.features[index],
            constituents={k: v[index] for k, v in self.constituents.items()},
            feature_names=list(self.feature_names), meta=dict(self.meta),
        )

    def concatenate(self, other: "JetDataset") -> "JetDataset":
        """The jets of ``self`` followed by those of ``other``, e.g. extra test jets of one class.

        Labels follow ``self``: each class of ``other`` must be a class of ``self`` by name
        (``top_qcd``'s ``qcd`` is label 0 of ``top``). Both must have the same features and
        jet radius; constituents are padded to the longer of the two.
        """
        unknown = [c for c in other.class_names if c not in self.class_names]
        if unknown:
            raise ValueError(f"cannot add {other.name!r} to {self.name!r}: its classes {unknown} are not "
                             f"among {self.class_names}")
        if other.feature_names != self.feature_names:
            raise ValueError(f"cannot add {other.name!r} to {self.name!r}: different high-level features")
        if self.meta.get("R") != other.meta.get("R"):
            raise ValueError(f"cannot add {other.name!r} (R = {other.meta.get('R')}) to {self.name!r} "
                             f"(R = {self.meta.get('R')}): different jet radius")
        relabel = np.array([self.class_names.index(c) for c in other.class_names], dtype=self.labels.dtype)
        width = max(self.max_constituents, other.max_constituents)

        def padded(key: str, a: np.ndarray) -> np.ndarray:
            fill = -1 if key == "pid_class" else 0  # padding as the generator writes it
            return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)

        constituents = {k: np.concatenate([padded(k, self.constituents[k]), padded(k, other.constituents[k])])
                        for k in self.constituents}
        meta = dict(self.meta, added=list(self.meta.get("added", [])) + [other.meta.get("card", other.name)])
        return JetDataset(
            name=f"{self.name}+{other.name}", class_names=list(self.class_names),
            labels=np.concatenate([self.labels, relabel[other.labels]]),
            jet=np.concatenate([self.jet, other.jet]), features=np.concatenate([self.features, other.features]),
            constituents=constituents, feature_names=list(self.feature_names), meta=meta,
        )

    def split(self, fractions: tuple[float, ...] = (0.6, 0.2, 0.2)) -> tuple["JetDataset", ...]:
        """Fixed train/validation/test split (jets are stored in a seeded random order)."""
        return tuple(self.subset(part) for part in split_slices(len(self), fractions))


def split_slices(n_jets: int, fractions: tuple[float, ...]) -> tuple[slice, ...]:
    """Where consecutive parts of ``n_jets`` stored jets lie, in the given fractions (which add up to 1)."""
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must add up to 1, got {fractions}")
    edges = np.round(np.cumsum((0.0,) + tuple(fractions)) * n_jets).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]))


@dataclass
class EventDataset:
    """Labelled events of an event card (:mod:`mlpp.data.cards`), each with its leading jets.

    ``jets`` is (n_events, n_jets, 4) = (pT [GeV], η, φ, mass [GeV]) of the clustered jets in
    decreasing pT (jet 0 is the leading, trigger jet); ``features`` (n_events, n_jets,
    n_features) per-jet features named by ``feature_names``
    (:data:`mlpp.data.features.EVENT_JET_FEATURES`); ``labels`` (n_events,) the class of the
    process that made the event. No constituents are stored.
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    jets: np.ndarray
    features: np.ndarray
    feature_names: list[str] = field(default_factory=lambda: list(EVENT_JET_FEATURES))
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}: {n}" for c, n in zip(self.class_names, np.bincount(self.labels, minlength=len(self.class_names))))
        return (f"EventDataset({self.name!r}, {len(self)} events [{counts}], {self.n_jets} jets per event, "
                f"{len(self.feature_names)} features per jet)")

    @property
    def n_jets(self) -> int:
        return self.jets.shape[1]

    def jet_p4s(self) -> np.ndarray:
        """Four-vectors (E, px, py, pz) of the jets: (n_events, n_jets, 4) float64, in GeV."""
        from mlpp.kinematics import p4s_from_ptetaphie

        pt, eta, phi, mass = (self.jets[..., i].astype(np.float64) for i in range(4))
        return p4s_from_ptetaphie(pt, eta, phi, np.hypot(pt * np.cosh(eta), mass))

    @property
    def mjj(self) -> np.ndarray:
        """Invariant mass of the two leading jets, m_JJ [GeV]: (n_events,)."""
        from mlpp.kinematics import masses_from_p4s

        return masses_from_p4s(self.jet_p4s()[:, :2].sum(axis=1))

    def feature(self, name: str) -> np.ndarray:
        """One per-jet feature by name for every jet: (n_events, n_jets)."""
        try:
            return self.features[..., self.feature_names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; known: {', '.join(self.feature_names)}") from None

    def subset(self, index: np.ndarray | slice) -> "EventDataset":
        """A new dataset with the events at ``index`` (copies; the original is not changed)."""
        return EventDataset(name=self.name, class_names=list(self.class_names), labels=self.labels[index],
                            jets=self.jets[index], features=self.features[index],
                            feature_names=list(self.feature_names), meta=dict(self.meta))

    def split(self, fractions: tuple[float, ...] = (0.6, 0.2, 0.2)) -> tuple["EventDataset", ...]:
        """Consecutive parts in the stored (seeded random) order."""
        return tuple(self.subset(part) for part in split_slices(len(self), fractions))


@dataclass
class PairedDataset:
    """Events of a paired card (:mod:`mlpp.data.paired`): each event's leading jet at particle
    level and at detector level, side by side in one row.

    Per level (``"particle"``, ``"detector"``, :data:`LEVELS`): ``jets[level]`` (n, 4) = (pT [GeV], η,
    φ, mass [GeV]) of the leading jet (zeros where the level has no jet), ``observables[level]``
    (n, 6) named by ``observable_names`` (NaN where the level has no jet) and ``passed[level]`` (n,)
    bool, the leading jet in the card's window. Per event: ``labels`` (the variant, e.g. 0 = sim,
    1 = data), ``event`` (the event's number, :mod:`mlpp.data.paired`), ``boson_pt`` [GeV] (truth),
    ``dr`` (ΔR of the two jets, inf without one) and ``matched`` (``dr`` below the card's match_dr).
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    event: np.ndarray
    boson_pt: np.ndarray
    jets: dict[str, np.ndarray]
    observables: dict[str, np.ndarray]
    passed: dict[str, np.ndarray]
    dr: np.ndarray
    matched: np.ndarray
    observable_names: list[str] = field(default_factory=lambda: list(UNFOLDING_OBSERVABLES))
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}: {n}" for c, n in zip(self.class_names, np.bincount(self.labels, minlength=len(self.class_names))))
        return (f"PairedDataset({self.name!r}, {len(self)} events [{counts}], leading jet at "
                f"{' and '.join(LEVELS)} level, {len(self.observable_names)} observables per level)")

    def observable(self, name: str, level: str) -> np.ndarray:
        """One observable of the leading jet at ``level``: (n_events,)."""
        if level not in LEVELS:
            raise KeyError(f"no level {level!r}; known: {', '.join(LEVELS)}")
        try:
            return self.observables[level][:, self.observable_names.index(name)]
        except ValueError:
            raise KeyError(f"no observable {name!r}; known: {', '.join(self.observable_names)}") from None

    def subset(self, index: np.ndarray | slice) -> "PairedDataset":
        """A new dataset with the events at ``index`` (copies; the original is not changed)."""
        return PairedDataset(
            name=self.name, class_names=list(self.class_names), labels=self.labels[index], event=self.event[index],
            boson_pt=self.boson_pt[index], jets={k: v[index] for k, v in self.jets.items()},
            observables={k: v[index] for k, v in self.observables.items()},
            passed={k: v[index] for k, v in self.passed.items()}, dr=self.dr[index], matched=self.matched[index],
            observable_names=list(self.observable_names), meta=dict(self.meta))

    def split(self, fractions: tuple[float, ...] = (0.6, 0.2, 0.2)) -> tuple["PairedDataset", ...]:
        """Consecutive parts in the stored (seeded random) order."""
        return tuple(self.subset(part) for part in split_slices(len(self), fractions))


class TrackEvents:
    """Events of a tracks card (:mod:`mlpp.tracking`): ``events[i]`` is ``(hits, particles)``, two dicts of arrays.

    ``hits``: ``layer`` (int8), ``r, phi, z`` (float32; mm, rad) and ``particle`` (int32: index into
    ``particles``, −1 for a noise hit), each (n_hits,), sorted by layer then φ. ``particles``: ``pt,
    eta, phi, q, vx, vy, vz, pdgid`` (n_particles,; GeV, mm), Pythia's charged final-state particles
    of the card's selection. ``arrays`` holds them flat (``hit_<key>``, ``particle_<key>``, and
    ``hit_offsets``/``particle_offsets`` of shape (n_events + 1,), see
    :func:`mlpp.tracking.flatten_events`); ``tracker`` is the card's :class:`mlpp.tracking.Tracker`.
    """

    def __init__(self, arrays: dict[str, np.ndarray], tracker, meta: dict | None = None):
        self.arrays, self.tracker, self.meta = arrays, tracker, dict(meta or {})

    @classmethod
    def from_chunks(cls, parts: list[dict[str, np.ndarray]], tracker, meta: dict | None = None) -> "TrackEvents":
        """Chunks (:func:`mlpp.tracking.generate_chunk`) one after the other: offsets shifted, the rest stacked."""
        from mlpp.tracking import HIT_KEYS, PARTICLE_KEYS

        arrays: dict[str, np.ndarray] = {}
        for kind, keys in (("hit", HIT_KEYS), ("particle", PARTICLE_KEYS)):
            for key in keys:
                arrays[f"{kind}_{key}"] = np.concatenate([p[f"{kind}_{key}"] for p in parts])
            shifted, base = [np.zeros(1, np.int64)], 0
            for p in parts:
                shifted.append(p[f"{kind}_offsets"][1:].astype(np.int64) + base)
                base += int(p[f"{kind}_offsets"][-1])
            arrays[f"{kind}_offsets"] = np.concatenate(shifted)
        return cls(arrays, tracker, meta)

    def __len__(self) -> int:
        return len(self.arrays["hit_offsets"]) - 1

    def hits(self, i: int) -> dict[str, np.ndarray]:
        from mlpp.tracking import HIT_KEYS

        lo, hi = self.arrays["hit_offsets"][i:i + 2]
        return {k: self.arrays[f"hit_{k}"][lo:hi] for k in HIT_KEYS}

    def particles(self, i: int) -> dict[str, np.ndarray]:
        from mlpp.tracking import PARTICLE_KEYS

        lo, hi = self.arrays["particle_offsets"][i:i + 2]
        return {k: self.arrays[f"particle_{k}"][lo:hi] for k in PARTICLE_KEYS}

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"event {i} of {len(self)}")
        i %= len(self)
        return self.hits(i), self.particles(i)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def subset(self, indices) -> "TrackEvents":
        """The events ``indices`` (in that order) as a new :class:`TrackEvents`."""
        from mlpp.tracking import flatten_events

        chosen = np.arange(len(self))[indices]
        if not len(chosen):
            raise ValueError("an empty subset")
        return TrackEvents(flatten_events([self.particles(i) for i in chosen], [self.hits(i) for i in chosen]),
                           self.tracker, self.meta)

    def split(self, fractions: tuple[float, ...] = (0.6, 0.2, 0.2)) -> tuple["TrackEvents", ...]:
        """Consecutive parts in the stored order (the card's chunk order; events are independent)."""
        return tuple(self.subset(part) for part in split_slices(len(self), fractions))

    def __repr__(self) -> str:
        n_hits, n_part = len(self.arrays["hit_layer"]), len(self.arrays["particle_pt"])
        return (f"TrackEvents({len(self)} events, {n_hits} hits, {n_part} particles, "
                f"{self.tracker.n_layers} layers, B = {self.tracker.B} T)")


def write_h5(path: Path, data: JetDataset | EventDataset | PairedDataset | TrackEvents) -> None:
    """Write ``data`` to HDF5 (gzip-compressed constituents)."""
    import h5py

    if isinstance(data, TrackEvents):
        _write_tracks_h5(path, data)
        return
    if isinstance(data, EventDataset):
        _write_events_h5(path, data)
        return
    if isinstance(data, PairedDataset):
        _write_paired_h5(path, data)
        return
    with h5py.File(path, "w") as h5:
        h5.attrs["name"] = data.name
        h5.attrs["class_names"] = json.dumps(data.class_names)
        h5.attrs["feature_names"] = json.dumps(data.feature_names)
        h5.attrs["meta"] = json.dumps(data.meta)
        h5.create_dataset("labels", data=data.labels)
        h5.create_dataset("jet", data=data.jet)
        h5.create_dataset("features", data=data.features)
        group = h5.create_group("constituents")
        for key in CONSTITUENT_KEYS:
            group.create_dataset(key, data=data.constituents[key], compression="gzip", compression_opts=1, shuffle=True)


def _write_events_h5(path: Path, data: EventDataset) -> None:
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["kind"] = "events"  # jet files have no "kind": they were written before event cards
        h5.attrs["name"] = data.name
        h5.attrs["class_names"] = json.dumps(data.class_names)
        h5.attrs["feature_names"] = json.dumps(data.feature_names)
        h5.attrs["meta"] = json.dumps(data.meta)
        h5.create_dataset("labels", data=data.labels)
        h5.create_dataset("jets", data=data.jets)
        h5.create_dataset("features", data=data.features)


def _write_paired_h5(path: Path, data: PairedDataset) -> None:
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["kind"] = "paired"
        h5.attrs["name"] = data.name
        h5.attrs["class_names"] = json.dumps(data.class_names)
        h5.attrs["observable_names"] = json.dumps(data.observable_names)
        h5.attrs["meta"] = json.dumps(data.meta)
        for key in ("labels", "event", "boson_pt", "dr", "matched"):
            h5.create_dataset(key, data=getattr(data, key))
        for level in LEVELS:
            group = h5.create_group(level)
            group.create_dataset("jet", data=data.jets[level])
            group.create_dataset("observables", data=data.observables[level])
            group.create_dataset("pass", data=data.passed[level])


def _write_tracks_h5(path: Path, data: TrackEvents) -> None:
    """A tracks file: groups ``hits`` (layer, r, phi, z, particle, offsets) and ``particles`` (pt, eta,
    phi, q, vx, vy, vz, pdgid, offsets), flat arrays with per-event offsets (:class:`TrackEvents`),
    gzip-compressed; the tracker and the build's bookkeeping in the ``meta`` attribute."""
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["kind"] = "tracks"
        h5.attrs["name"] = str(data.meta.get("card", "tracks"))
        h5.attrs["meta"] = json.dumps(data.meta)
        for kind, group in (("hit", "hits"), ("particle", "particles")):
            g = h5.create_group(group)
            for key, values in data.arrays.items():
                if key.startswith(f"{kind}_"):
                    g.create_dataset(key[len(kind) + 1:], data=values, compression="gzip", compression_opts=1,
                                     shuffle=True)


def _read_tracks_h5(h5) -> TrackEvents:
    from mlpp.tracking import Tracker

    meta = json.loads(h5.attrs["meta"])
    arrays = {f"{kind}_{key}": h5[group][key][:] for kind, group in (("hit", "hits"), ("particle", "particles"))
              for key in h5[group]}
    return TrackEvents(arrays, Tracker.from_fields(meta["tracker"]), meta)


def _read_paired_h5(h5) -> PairedDataset:
    return PairedDataset(
        name=str(h5.attrs["name"]), class_names=json.loads(h5.attrs["class_names"]),
        labels=h5["labels"][:].astype(np.int64), event=h5["event"][:], boson_pt=h5["boson_pt"][:],
        jets={level: h5[level]["jet"][:] for level in LEVELS},
        observables={level: h5[level]["observables"][:] for level in LEVELS},
        passed={level: h5[level]["pass"][:].astype(bool) for level in LEVELS},
        dr=h5["dr"][:], matched=h5["matched"][:].astype(bool),
        observable_names=json.loads(h5.attrs["observable_names"]), meta=json.loads(h5.attrs["meta"]))


def read_h5(path: Path) -> JetDataset | EventDataset | PairedDataset | TrackEvents:
    """Read a dataset written by :func:`write_h5` (an :class:`EventDataset` for an event card,
    a :class:`PairedDataset` for a paired card, :class:`TrackEvents` for a tracks card)."""
    import h5py

    with h5py.File(path, "r") as h5:
        if h5.attrs.get("kind") == "tracks":
            return _read_tracks_h5(h5)
        if h5.attrs.get("kind") == "paired":
            return _read_paired_h5(h5)
        if h5.attrs.get("kind") == "events":
            return EventDataset(
                name=str(h5.attrs["name"]), class_names=json.loads(h5.attrs["class_names"]),
                labels=h5["labels"][:].astype(np.int64), jets=h5["jets"][:], features=h5["features"][:],
                feature_names=json.loads(h5.attrs["feature_names"]), meta=json.loads(h5.attrs["meta"]),
            )
        return JetDataset(
            name=str(h5.attrs["name"]),
            class_names=json.loads(h5.attrs["class_names"]),
            labels=h5["labels"][:].astype(np.int64),
            jet=h5["jet"][:],
            features=h5["features"][:],
            constituents={k: h5["constituents"][k][:] for k in CONSTITUENT_KEYS},
            feature_names=json.loads(h5.attrs["feature_names"]),
            meta=json.loads(h5.attrs["meta"]),
        )
