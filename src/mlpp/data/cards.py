"""Dataset cards: one YAML file per dataset in ``datasets/`` says how it is generated.

A card fixes the process, √s, jet definition, truth-labelling rule, seed and the
number of jets per class in each tier. The same card and seed always give the same
arrays; the card's hash is stored with the generated file so that an edited card
is noticed.

A card is in one of four modes (``mode:``, default ``jets``):

* ``jets``: each stored row is one jet (up to ``jets_per_event`` per event) in the card's
  pT window that passes its class's truth rule (:class:`mlpp.data.JetDataset`);
* ``events``: each stored row is one event, its ``jets_per_event`` leading jets together,
  kept when the leading jet is in the card's pT window and acceptance
  (:class:`mlpp.data.EventDataset`; a bump hunt needs both jets of an event). The truth
  rule must be ``any``: an event's class is the process set that made it.
* ``paired``: each stored row is one event with its leading jet at two levels, the particle
  level (stable visible particles, before the detector) and the detector level (the course
  detector's candidates), for unfolding (:class:`mlpp.data.PairedDataset`, :mod:`mlpp.data.paired`).
  The ``paired:`` block names the recoiling ``boson`` (PDG id) whose pT every stored event
  must exceed (``boson_pt_min``, GeV) and may set ``match_dr`` (default R/2). A row is kept when
  the leading jet passes the card's window at either level; which level passed and whether the
  two jets match are flags, so that misses and fakes stay in the data. Truth rules must be
  ``any``; the classes are the card's variants (e.g. simulation and pseudo-data).
* ``tracks``: each stored row is one event's charged particles and their hits in the course's toy
  tracker (:mod:`mlpp.tracking`, :class:`mlpp.data.TrackEvents`): no jets, no classes. The
  ``particles:`` block selects the particles that leave hits (``pt_min`` GeV, ``abs_eta_max``),
  the ``tracker:`` block is the geometry (``B``, ``efficiency``, ``noise_per_layer`` and
  ``layers``, each ``{r, half_length, sigma_rphi, sigma_z}`` in mm), and ``chunk_events`` (default
  50) the events per chunk. Every generated event is stored.

``sizes`` counts rows (jets or events) per class; a class may give its own ``sizes``.

A card in ``jets``, ``events`` or ``paired`` mode may change the course detector with a ``detector:``
block, a mapping of :class:`mlpp.data.detector.DetectorModel` fields to the values that replace the
defaults (numbers; the rest keep the values of ``book/detector.md``), e.g. the same physics through
a worse detector for a dataset-shift test::

    detector: {ecal_stochastic: 0.20, hcal_stochastic: 1.5}

The card's :attr:`Card.detector` is the resulting model; it is stored in the file's metadata and its
fields enter the file's fingerprint, so a card without the block keeps the fingerprint it had before
the block existed. A tracks card has no ``detector:`` (its hits come from its ``tracker:``).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from mlpp import settings
from mlpp.data.detector import DetectorModel

TRUTH_RULES = ("any", "parton", "resonance")
MODES = ("jets", "events", "paired", "tracks")
TRACKS_EVENTS_PER_CHUNK = 50  # default chunk_events of a tracks card
DAUGHTER_KINDS = {"b": (5,), "q": (1, 2, 3, 4)}


class CardError(ValueError):
    """A card is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ClassSpec:
    """One jet class of a card: its Pythia processes and its truth rule."""

    name: str
    label: int
    settings: tuple[str, ...]
    truth: dict
    sizes: dict | None = None  # rows of this class per tier, when they differ from the card's


@dataclass(frozen=True)
class JetSpec:
    algorithm: str
    R: float
    pt_min: float
    pt_max: float
    max_constituents: int
    jets_per_event: int = 2
    abs_eta_max: float | None = None
    abs_rapidity_max: float | None = None


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    seed: int
    ecm: float
    settings: tuple[str, ...]
    jets: JetSpec | None  # None for a tracks card
    classes: tuple[ClassSpec, ...]
    sizes: dict[str, int]
    chunk_jets: int
    public: dict = field(default_factory=dict)
    sha256: str = ""
    path: str = ""
    mode: str = "jets"
    paired: dict = field(default_factory=dict)  # a paired card's boson, boson_pt_min and match_dr
    tracks: dict = field(default_factory=dict)  # a tracks card's pt_min, abs_eta_max and tracker
    detector: DetectorModel = field(default_factory=DetectorModel)  # the course detector, with the card's overrides

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def is_events(self) -> bool:
        """True for an event card (rows are events, see the module docstring)."""
        return self.mode == "events"

    @property
    def is_paired(self) -> bool:
        """True for a paired card: particle- and detector-level jet of each event (module docstring)."""
        return self.mode == "paired"

    @property
    def is_tracks(self) -> bool:
        """True for a tracks card: charged particles and their tracker hits, per event (module docstring)."""
        return self.mode == "tracks"

    @property
    def tracker(self):
        """A tracks card's :class:`mlpp.tracking.Tracker` (layers, resolutions, field, efficiency, noise)."""
        if not self.is_tracks:
            raise AttributeError(f"card {self.name!r} is a {self.mode} card: only a tracks card has a tracker")
        return self.tracks["tracker"]

    def n_per_class(self, tier: str | None = None, class_index: int | None = None) -> int:
        """Rows (jets, or events for an event card) of one class; the card's size without ``class_index``."""
        own = self.classes[class_index].sizes if class_index is not None else None
        return int((own or self.sizes)[settings.tier(tier)])

    def chunks(self, tier: str | None = None) -> list[tuple[int, int, int]]:
        """Work units ``(class_index, chunk_index, n_rows)``; independent of the worker count."""
        units = []
        for ci in range(len(self.classes)):
            n = self.n_per_class(tier, ci)
            for k, start in enumerate(range(0, n, self.chunk_jets)):
                units.append((ci, k, min(self.chunk_jets, n - start)))
        return units


def card_path(name: str) -> Path:
    return settings.cards_dir() / f"{name}.yml"


def available() -> list[str]:
    """Names of the cards in ``datasets/``."""
    return sorted(p.stem for p in settings.cards_dir().glob("*.yml"))


def _require(raw: dict, key: str, where: str):
    if key not in raw:
        raise CardError(f"{where}: missing key '{key}'")
    return raw[key]


def load_card(name: str) -> Card:
    """Read and check ``datasets/<name>.yml``."""
    path = card_path(name)
    if not path.exists():
        raise CardError(f"no dataset card '{name}' (looked for {path}); known cards: {', '.join(available()) or 'none'}")
    text = path.read_bytes()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CardError(f"{path} is not valid YAML: {err}") from None
    where = str(path)
    if not isinstance(raw, dict):
        raise CardError(f"{where}: a card is a YAML mapping of keys (name, seed, generator, sizes, ...)")
    if raw.get("mode") == "tracks":
        return _tracks_card(raw, name, text, path)
    gen = _require(raw, "generator", where)
    jets_raw = dict(_require(raw, "jets", where))
    jets = JetSpec(**jets_raw)
    if jets.algorithm not in ("antikt", "kt", "cambridge"):
        raise CardError(f"{where}: jets.algorithm must be antikt, kt or cambridge, not {jets.algorithm!r}")
    if (jets.abs_eta_max is None) == (jets.abs_rapidity_max is None):
        raise CardError(f"{where}: give exactly one of jets.abs_eta_max and jets.abs_rapidity_max")
    classes = []
    for i, c in enumerate(_require(raw, "classes", where)):
        truth = dict(c.get("truth", {"rule": "any"}))
        if truth.get("rule") not in TRUTH_RULES:
            raise CardError(f"{where}: class {c.get('name')}: truth.rule must be one of {TRUTH_RULES}")
        for kind in truth.get("contains", []):
            if kind not in DAUGHTER_KINDS:
                raise CardError(f"{where}: class {c['name']}: unknown daughter kind {kind!r} (use b or q)")
        own_sizes = c.get("sizes")
        if own_sizes is not None:
            own_sizes = _sizes(own_sizes, f"{where}: class {c.get('name')}")
        classes.append(ClassSpec(name=c["name"], label=int(c.get("label", i)),
                                 settings=tuple(c.get("settings", [])), truth=truth, sizes=own_sizes))
    if sorted(c.label for c in classes) != list(range(len(classes))):
        raise CardError(f"{where}: class labels must be 0..{len(classes) - 1}")
    sizes = _sizes(_require(raw, "sizes", where), where)
    mode = raw.get("mode", "jets")
    if mode not in MODES:
        raise CardError(f"{where}: mode must be one of {MODES}, not {mode!r}")
    if mode in ("events", "paired"):
        rules = {c.name: c.truth["rule"] for c in classes if c.truth["rule"] != "any"}
        if rules:
            raise CardError(f"{where}: an event card labels events by their process, so every truth.rule "
                            f"must be 'any' (not {rules})")
        if jets.jets_per_event < 1:
            raise CardError(f"{where}: jets.jets_per_event must be at least 1")
    paired = _paired(raw, jets, where) if mode == "paired" else {}
    detector = _detector(raw.get("detector"), where)
    return Card(
        name=raw.get("name", name), title=raw.get("title", name), seed=int(_require(raw, "seed", where)),
        ecm=float(gen.get("eCM", 14000.0)), settings=tuple(gen.get("settings", [])), jets=jets,
        classes=tuple(classes), sizes=sizes, chunk_jets=int(raw.get("chunk_jets", 500)),
        public=dict(raw.get("public", {})), sha256=hashlib.sha256(text).hexdigest(), path=str(path), mode=mode,
        paired=paired, detector=detector,
    )


DETECTOR_FIELDS = tuple(f.name for f in fields(DetectorModel))


def _detector(block: object, where: str) -> DetectorModel:
    """The course detector with the card's ``detector:`` overrides (module docstring), checked."""
    if block is None:
        return DetectorModel()
    allowed = f"allowed fields: {', '.join(DETECTOR_FIELDS)}"
    if not isinstance(block, dict):
        raise CardError(f"{where}: detector: give a mapping of field: number ({allowed})")
    unknown = sorted(str(k) for k in set(block) - set(DETECTOR_FIELDS))
    if unknown:
        raise CardError(f"{where}: detector: unknown field(s) {unknown} ({allowed})")
    values = {}
    for key, value in block.items():
        default = getattr(DetectorModel, key)
        # bool is an int to Python, but "on"/"yes" in YAML is never a resolution or a size
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise CardError(f"{where}: detector.{key} must be a number >= 0, not {value!r} ({allowed})")
        if isinstance(default, int) and (value != int(value) or value < 1):
            raise CardError(f"{where}: detector.{key} counts cells: give a whole number >= 1, not {value!r}")
        values[key] = type(default)(value)
    return replace(DetectorModel(), **values)


def _paired(raw: dict, jets: JetSpec, where: str) -> dict:
    """The ``paired:`` block of a paired card, checked, with ``match_dr`` defaulting to R/2."""
    block = dict(_require(raw, "paired", where) or {})
    unknown = sorted(set(block) - {"boson", "boson_pt_min", "match_dr"})
    if unknown:
        raise CardError(f"{where}: paired: unknown key(s) {unknown} (boson, boson_pt_min, match_dr)")
    for key in ("boson", "boson_pt_min"):
        if key not in block:
            raise CardError(f"{where}: paired: missing key '{key}'")
    if jets.jets_per_event != 1:
        raise CardError(f"{where}: a paired card keeps the leading jet: jets.jets_per_event must be 1")
    match_dr = float(block.get("match_dr", jets.R / 2))
    if not 0 < match_dr <= jets.R:
        raise CardError(f"{where}: paired.match_dr must be in (0, R]")
    return {"boson": int(block["boson"]), "boson_pt_min": float(block["boson_pt_min"]), "match_dr": match_dr}


TRACKS_KEYS = {"name", "title", "seed", "mode", "generator", "particles", "tracker", "sizes", "chunk_events"}
TRACKER_KEYS = {"B", "efficiency", "noise_per_layer", "layers"}
LAYER_KEYS = {"r", "half_length", "sigma_rphi", "sigma_z"}


def _tracks_card(raw: dict, name: str, text: bytes, path: Path) -> Card:
    """A card in ``tracks`` mode: Pythia settings, the particle selection and the tracker, checked."""
    from mlpp.tracking import Tracker

    where = str(path)
    if "detector" in raw:
        raise CardError(f"{where}: a tracks card does not use the course detector (its hits come from its "
                        f"tracker: block): remove detector")
    unknown = sorted(set(raw) - TRACKS_KEYS)
    if unknown:
        raise CardError(f"{where}: a tracks card has no jets or classes: remove {unknown} "
                        f"(keys: {', '.join(sorted(TRACKS_KEYS))})")
    gen = dict(_require(raw, "generator", where) or {})
    sel = dict(_require(raw, "particles", where) or {})
    if set(sel) != {"pt_min", "abs_eta_max"}:
        raise CardError(f"{where}: particles: give exactly pt_min (GeV) and abs_eta_max, not {sorted(sel)}")
    if float(sel["pt_min"]) < 0 or float(sel["abs_eta_max"]) <= 0:
        raise CardError(f"{where}: particles: need pt_min >= 0 and abs_eta_max > 0")
    block = dict(_require(raw, "tracker", where) or {})
    unknown = sorted(set(block) - TRACKER_KEYS)
    if unknown:
        raise CardError(f"{where}: tracker: unknown key(s) {unknown} (B, efficiency, noise_per_layer, layers)")
    layers = block.get("layers") or []
    if not layers:
        raise CardError(f"{where}: tracker: give layers, a list of {{r, half_length, sigma_rphi, sigma_z}} (mm)")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != LAYER_KEYS:
            raise CardError(f"{where}: tracker.layers[{i}]: give exactly r, half_length, sigma_rphi and sigma_z "
                            f"(mm), not {sorted(layer) if isinstance(layer, dict) else layer!r}")
        if min(float(layer["r"]), float(layer["half_length"])) <= 0 or min(float(layer["sigma_rphi"]),
                                                                           float(layer["sigma_z"])) < 0:
            raise CardError(f"{where}: tracker.layers[{i}]: r and half_length must be > 0, the sigmas >= 0")
    try:
        tracker = Tracker.from_dict(block)
    except ValueError as err:
        raise CardError(f"{where}: tracker: {err}") from None
    chunk_events = int(raw.get("chunk_events", TRACKS_EVENTS_PER_CHUNK))
    if chunk_events < 1:
        raise CardError(f"{where}: chunk_events must be at least 1")
    return Card(
        name=raw.get("name", name), title=raw.get("title", name), seed=int(_require(raw, "seed", where)),
        ecm=float(gen.get("eCM", 14000.0)), settings=tuple(gen.get("settings", [])), jets=None,
        classes=(ClassSpec(name="events", label=0, settings=(), truth={"rule": "any"}),),
        sizes=_sizes(_require(raw, "sizes", where), where), chunk_jets=chunk_events,
        sha256=hashlib.sha256(text).hexdigest(), path=str(path), mode="tracks",
        tracks={"pt_min": float(sel["pt_min"]), "abs_eta_max": float(sel["abs_eta_max"]), "tracker": tracker},
    )


def _sizes(raw: dict, where: str) -> dict[str, int]:
    sizes = {k: int(v) for k, v in raw.items()}
    missing = [t for t in settings.TIERS if t not in sizes]
    if missing:
        raise CardError(f"{where}: sizes has no entry for tier(s) {missing}")
    return sizes
