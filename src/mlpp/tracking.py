"""A toy silicon tracker: barrel layers in a solenoid, helices, smeared hits, noise.

The course's one home for charged-particle tracks as *hits* (Lecture 5's sketch, the tracking
lecture's graphs). It has two halves:

* the geometry and the physics, pure numpy: :class:`Tracker` (layer radii and lengths,
  resolutions, field, hit efficiency, noise), :func:`layer_crossings` (where a helix from
  its production vertex crosses each layer) and :func:`simulate_hits` (efficiency, smearing,
  noise hits for one event);
* the physics of one chunk of events: :func:`generate_chunk` runs Pythia for a card in
  ``tracks`` mode (``datasets/tracks.yml``), takes each event's charged final-state particles and
  simulates their hits. The data layer (:mod:`mlpp.data`) runs the chunks, writes, caches and
  verifies the file and loads it as :class:`mlpp.data.TrackEvents` (``mlpp data generate tracks``,
  :func:`mlpp.tasks.tracks.load`).

Units: lengths in mm, momenta in GeV, the field in T, angles in rad. A particle of charge
``q`` (in units of e) and transverse momentum ``pT`` bends on a circle of radius
``R = pT / (0.3 B)`` m; a positive particle turns clockwise seen from +z (B along +z), so its
azimuth *decreases*: from the origin it reaches radius ``r`` at ``φ = φ0 − q·arcsin(r / 2R)``.
Along the beam it moves ``z = z0 + s·cot θ`` (``s`` the transverse arc length, ``cot θ = sinh η``).

What it leaves out (on purpose): material (no multiple scattering, energy loss, conversions,
nuclear interactions), endcaps (barrel only), modules (each layer is a full cylinder, no gaps or
overlaps), second crossings (a looper leaves at most one hit per layer, on its way out), pileup,
and hits of particles below the card's pT threshold.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

#: c in GeV / (T m): R [m] = pT [GeV] / (C_LIGHT * B [T]), i.e. the "0.3" of R = pT / (0.3 B).
C_LIGHT = 0.299792458
HIT_KEYS = ("layer", "r", "phi", "z", "particle")
PARTICLE_KEYS = ("pt", "eta", "phi", "q", "vx", "vy", "vz", "pdgid")


@dataclass(frozen=True)
class Tracker:
    """Barrel layers (cylinders around the beam), the solenoid field and the hit model.

    ``radii`` and ``half_lengths`` (mm) give each layer's cylinder, ``sigma_rphi`` and
    ``sigma_z`` (mm) its Gaussian hit resolution, ``B`` the field (T, along +z),
    ``efficiency`` the probability that a crossing leaves a hit and ``noise_per_layer`` the
    mean number (Poisson) of noise hits per layer and event, uniform in φ and z.
    """

    radii: tuple[float, ...]
    half_lengths: tuple[float, ...]
    sigma_rphi: tuple[float, ...]
    sigma_z: tuple[float, ...]
    B: float = 2.0
    efficiency: float = 1.0
    noise_per_layer: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.radii)
        if not all(len(v) == n for v in (self.half_lengths, self.sigma_rphi, self.sigma_z)):
            raise ValueError("radii, half_lengths, sigma_rphi and sigma_z need one entry per layer")
        if list(self.radii) != sorted(self.radii):
            raise ValueError("layer radii must increase outwards")
        if not 0.0 <= self.efficiency <= 1.0 or self.noise_per_layer < 0 or self.B <= 0:
            raise ValueError("need 0 <= efficiency <= 1, noise_per_layer >= 0 and B > 0")

    @property
    def n_layers(self) -> int:
        return len(self.radii)

    @classmethod
    def from_dict(cls, raw: dict) -> "Tracker":
        """From a card's ``tracker:`` block: ``B``, ``efficiency``, ``noise_per_layer`` and
        ``layers``, a list of ``{r, half_length, sigma_rphi, sigma_z}`` (mm)."""
        layers = raw["layers"]
        return cls(radii=tuple(float(l["r"]) for l in layers),
                   half_lengths=tuple(float(l["half_length"]) for l in layers),
                   sigma_rphi=tuple(float(l["sigma_rphi"]) for l in layers),
                   sigma_z=tuple(float(l["sigma_z"]) for l in layers),
                   B=float(raw.get("B", 2.0)), efficiency=float(raw.get("efficiency", 1.0)),
                   noise_per_layer=float(raw.get("noise_per_layer", 0.0)))

    def to_dict(self) -> dict:
        """The fields as plain lists and numbers (a file's metadata); :meth:`from_fields` reads them back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict) -> "Tracker":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})

    def ideal(self) -> "Tracker":
        """The same layers with every crossing recorded exactly: no smearing, inefficiency or noise."""
        n = self.n_layers
        return Tracker(self.radii, self.half_lengths, (0.0,) * n, (0.0,) * n, self.B, 1.0, 0.0)


def helix_radius(pt: np.ndarray, B: float) -> np.ndarray:
    """Transverse radius of curvature in mm of a unit-charge particle with ``pt`` (GeV) in ``B`` (T)."""
    return 1000.0 * np.asarray(pt, dtype=float) / (C_LIGHT * B)


def layer_crossings(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, q: np.ndarray,
                    vx: np.ndarray, vy: np.ndarray, vz: np.ndarray,
                    radii: np.ndarray, B: float) -> dict[str, np.ndarray]:
    """Where each particle's helix first crosses each barrel radius, on its way out.

    Inputs are per particle, shape (n,); ``radii`` (L,) in mm. Returns arrays of shape (n, L):
    ``x, y, z, phi`` of the crossing and ``crossed`` (False where the particle curls up inside
    that radius, was produced outside it, or is neutral). ``s`` is the transverse arc length
    from the vertex. The circle–cylinder intersection is solved in closed form: from the vertex
    at the origin it reduces to φ = φ0 − q arcsin(r / 2R), and it stays exact for displaced
    vertices and for R → ∞ (a straight line).
    """
    pt, eta, phi0, q = (np.asarray(a, dtype=float)[:, None] for a in (pt, eta, phi, q))
    vx, vy, vz = (np.asarray(a, dtype=float)[:, None] for a in (vx, vy, vz))
    r = np.asarray(radii, dtype=float)[None, :]
    sign = np.sign(q)
    R = helix_radius(pt, B) / np.maximum(np.abs(q), 1e-12)  # (n, 1) mm; a charge-2 particle bends twice as hard
    tx, ty = np.cos(phi0), np.sin(phi0)                     # initial direction
    nx, ny = ty, -tx                                        # its right-hand normal: the centre side for q > 0
    # Centre of the circle, c = v + sign·R·n. Its distance d from the beam: d² − R² = |v|² + 2·sign·R·(v·n),
    # written so that nothing cancels when R is huge.
    cx, cy = vx + sign * R * nx, vy + sign * R * ny
    d = np.maximum(np.hypot(cx, cy), 1e-300)  # 0 only for a neutral particle from the beam line, never crossed
    v2 = vx**2 + vy**2
    # Intersection with the layer circle (centre 0, radius r): the foot of the chord lies a along c/|c|.
    with np.errstate(over="ignore", invalid="ignore"):  # a neutral particle's a is inf: not crossed
        a = (r**2 + v2 + 2 * sign * R * (vx * nx + vy * ny)) / (2 * d)  # (n, L)
        h2 = r**2 - a**2
    crossed = (h2 >= 0) & (v2 < r**2) & (q != 0)
    h = np.sqrt(np.where(crossed, h2, 0.0))
    ux, uy = cx / d, cy / d
    # Two intersection points, a·u ± h·u⊥: the particle reaches first the one ahead of it.
    px1, py1 = a * ux - h * uy, a * uy + h * ux
    px2, py2 = a * ux + h * uy, a * uy - h * ux
    first = ((px1 - vx) * tx + (py1 - vy) * ty) >= ((px2 - vx) * tx + (py2 - vy) * ty)
    x, y = np.where(first, px1, px2), np.where(first, py1, py2)
    chord = np.hypot(x - vx, y - vy)
    s = 2 * R * np.arcsin(np.clip(chord / (2 * R), 0.0, 1.0))  # arc length; → chord as R → ∞
    z = vz + s * np.sinh(eta)
    return {"x": x, "y": y, "z": z, "phi": np.arctan2(y, x), "s": s, "crossed": crossed}


def simulate_hits(particles: dict[str, np.ndarray], tracker: Tracker,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The hits of one event: ``layer`` (int8), ``r, phi, z`` (float32; mm, rad), ``particle``
    (int32: index into ``particles``, −1 for a noise hit), each of shape (n_hits,).

    A crossing inside a layer's length becomes a hit with probability ``tracker.efficiency``;
    its φ is smeared by ``sigma_rphi / r`` and its z by ``sigma_z``; r stays the layer radius.
    Then each layer gets Poisson(``noise_per_layer``) noise hits, uniform in φ and z. The hits
    come sorted by layer, then φ, so that their order says nothing about which particle made them.
    Random numbers are drawn in a fixed order (efficiency, smearing, noise) for a given event.
    """
    radii = np.asarray(tracker.radii)
    L = tracker.n_layers
    p = particles
    cross = layer_crossings(p["pt"], p["eta"], p["phi"], p["q"], p["vx"], p["vy"], p["vz"], radii, tracker.B)
    inside = cross["crossed"] & (np.abs(cross["z"]) < np.asarray(tracker.half_lengths)[None, :])  # (n, L)
    keep = inside & (rng.random(inside.shape) < tracker.efficiency)
    part, layer = np.nonzero(keep)  # (n_true,)
    r = radii[layer]
    phi = cross["phi"][part, layer] + rng.normal(size=len(part)) * np.asarray(tracker.sigma_rphi)[layer] / r
    z = cross["z"][part, layer] + rng.normal(size=len(part)) * np.asarray(tracker.sigma_z)[layer]
    n_noise = rng.poisson(tracker.noise_per_layer, size=L)
    noise_layer = np.repeat(np.arange(L), n_noise)
    noise_phi = rng.uniform(-np.pi, np.pi, len(noise_layer))
    half = np.asarray(tracker.half_lengths)[noise_layer]
    noise_z = rng.uniform(-half, half)
    hits = {
        "layer": np.concatenate([layer, noise_layer]).astype(np.int8),
        "r": np.concatenate([r, radii[noise_layer]]).astype(np.float32),
        "phi": np.angle(np.exp(1j * np.concatenate([phi, noise_phi]))).astype(np.float32),  # back into (−π, π]
        "z": np.concatenate([z, noise_z]).astype(np.float32),
        "particle": np.concatenate([part, np.full(len(noise_layer), -1)]).astype(np.int32),
    }
    order = np.lexsort((hits["phi"], hits["layer"]))
    return {k: v[order] for k, v in hits.items()}


def reaches_all_layers(particles: dict[str, np.ndarray], tracker: Tracker) -> np.ndarray:
    """(n,) bool: the particle's helix crosses every layer inside its length (before efficiency)."""
    p = particles
    cross = layer_crossings(p["pt"], p["eta"], p["phi"], p["q"], p["vx"], p["vy"], p["vz"],
                            np.asarray(tracker.radii), tracker.B)
    inside = cross["crossed"] & (np.abs(cross["z"]) < np.asarray(tracker.half_lengths)[None, :])
    return inside.all(axis=1)


# --- events from Pythia ----------------------------------------------------------------------------

def charged_particles(batch, charge_of, pt_min: float, abs_eta_max: float) -> list[dict[str, np.ndarray]]:
    """Each event's charged final-state particles with pT > ``pt_min`` and |η| < ``abs_eta_max``:
    ``pt, eta, phi, q, vx, vy, vz`` (production vertex, mm) and ``pdgid``, in Pythia's order."""
    import awkward as ak

    from mlpp import kinematics

    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt))
    flat = {k: ak.to_numpy(ak.flatten(v)) for k, v in (
        ("id", prt.id), ("status", prt.status), ("px", prt.p.px), ("py", prt.p.py), ("pz", prt.p.pz),
        ("vx", prt.vProd.px), ("vy", prt.vProd.py), ("vz", prt.vProd.pz))}
    event_of = np.repeat(np.arange(len(counts)), counts)
    final = np.flatnonzero(flat["status"] > 0)
    q = charge_of(flat["id"][final])
    pt, eta, phi = kinematics.ptetaphi_from_momenta(flat["px"][final], flat["py"][final], flat["pz"][final])
    sel = (q != 0) & (pt > pt_min) & (np.abs(eta) < abs_eta_max)
    idx = final[sel]
    cols = {"pt": pt[sel], "eta": eta[sel], "phi": phi[sel], "q": q[sel],
            "vx": flat["vx"][idx], "vy": flat["vy"][idx], "vz": flat["vz"][idx], "pdgid": flat["id"][idx]}
    bounds = np.searchsorted(event_of[idx], np.arange(len(counts) + 1))
    return [{k: v[bounds[i]:bounds[i + 1]] for k, v in cols.items()} for i in range(len(counts))]


def generate_chunk(card, chunk_index: int, n_events: int) -> dict[str, np.ndarray]:
    """``n_events`` events of one chunk of a tracks card (:class:`mlpp.data.Card` in ``tracks``
    mode): its own Pythia and numpy generator, both seeded from the card seed and the chunk index
    (:func:`mlpp.data.generate.chunk_seed`), so a chunk's arrays do not depend on which process runs
    it or on the other chunks. Returns the flat arrays of :func:`flatten_events` plus ``events``
    (``n_events``: every event is kept) and ``seconds``. The data layer (:mod:`mlpp.data.build`)
    runs the chunks and writes the file."""
    from mlpp.data.generate import _ChargeTable, chunk_seed, make_pythia

    start = time.perf_counter()
    seed = chunk_seed(card.seed, 0, chunk_index)
    pythia = make_pythia(card, 0, seed)
    charge_of = _ChargeTable(pythia)
    rng = np.random.default_rng(seed)
    sel = card.tracks
    events: list[dict[str, np.ndarray]] = []
    while len(events) < n_events:
        batch = pythia.nextBatch(n_events - len(events))
        events += charged_particles(batch, charge_of, sel["pt_min"], sel["abs_eta_max"])
    hits = [simulate_hits(ev, card.tracker, rng) for ev in events]
    out = flatten_events(events, hits)
    out["events"] = np.array(n_events)
    out["seconds"] = np.array(time.perf_counter() - start)
    return out


def flatten_events(events: list[dict], hits: list[dict]) -> dict[str, np.ndarray]:
    """Per-event particles and hits as flat arrays: ``hit_<key>`` for :data:`HIT_KEYS` and
    ``particle_<key>`` for :data:`PARTICLE_KEYS`, one after the other, with ``hit_offsets`` and
    ``particle_offsets`` (n_events + 1,): event ``i`` holds rows ``offsets[i]:offsets[i + 1]``."""
    out = {f"hit_{k}": np.concatenate([h[k] for h in hits]) for k in HIT_KEYS}
    out["hit_offsets"] = np.concatenate([[0], np.cumsum([len(h["layer"]) for h in hits])]).astype(np.int64)
    dtypes = {"q": np.int8, "pdgid": np.int32}
    out |= {f"particle_{k}": np.concatenate([e[k] for e in events]).astype(dtypes.get(k, np.float32))
            for k in PARTICLE_KEYS}
    out["particle_offsets"] = np.concatenate([[0], np.cumsum([len(e["pt"]) for e in events])]).astype(np.int64)
    return out


def describe(card_or_tracker) -> str:
    """A tracker (or a tracks card's) as a short table (for pages and notebooks)."""
    t = getattr(card_or_tracker, "tracker", card_or_tracker)
    rows = [f"{'layer':>5} {'r [mm]':>7} {'|z| < [mm]':>10} {'σ_rφ [µm]':>9} {'σ_z [µm]':>9}"]
    for i in range(t.n_layers):
        rows.append(f"{i:>5} {t.radii[i]:>7.0f} {t.half_lengths[i]:>10.0f} {1000 * t.sigma_rphi[i]:>9.1f} "
                    f"{1000 * t.sigma_z[i]:>9.0f}")
    rows.append(json.dumps({"B [T]": t.B, "efficiency": t.efficiency, "noise_per_layer": t.noise_per_layer}))
    return "\n".join(rows)


# --- hit graphs ---------------------------------------------------------------------------------

#: Columns of :func:`edge_features`.
EDGE_FEATURE_NAMES: tuple[str, ...] = ("r_in", "phi_slope", "dz_dr", "z0", "dphi", "dz", "dr", "r_out")


def max_phi_slope(pt_min: float, B: float) -> float:
    """The largest |Δφ/Δr| (rad/mm) of a particle from the beam line with pT ≥ ``pt_min`` (GeV).

    From φ = φ0 − q·arcsin(r / 2R), dφ/dr = 1/sqrt(4R² − r²) ≥ 1/2R; at the radii of the
    tracker (r ≪ 2R) the slope is 1/2R to better than a per cent, and 1/2R is largest for the
    smallest R, i.e. pT = ``pt_min``.
    """
    return 1.0 / (2.0 * float(helix_radius(pt_min, B)))


def candidate_edges(hits: dict[str, np.ndarray], max_slope: float, max_z0: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of hits on adjacent layers that one particle from the luminous region could have made.

    An edge joins hit ``i`` on layer ``l`` to hit ``j`` on layer ``l + 1`` when the azimuth changes
    by less than ``max_slope`` per mm of radius (|Δφ/Δr|, see :func:`max_phi_slope`) and the
    straight line through the two hits in (r, z) meets the beam line within ``max_z0`` mm of
    the centre. Returns ``(inner, outer)``: (n_edges,) int64 indices into the event's hits.
    """
    layer = np.asarray(hits["layer"])
    r, phi, z = (np.asarray(hits[k], dtype=np.float64) for k in ("r", "phi", "z"))
    inner_all, outer_all = [], []
    for l in range(int(layer.max(initial=-1))):
        a, b = np.flatnonzero(layer == l), np.flatnonzero(layer == l + 1)
        i, j = np.repeat(a, len(b)), np.tile(b, len(a))  # every pair of the two layers
        dr = r[j] - r[i]
        slope = (phi[j] - phi[i] + np.pi) % (2 * np.pi) - np.pi
        slope = slope / dr
        z0 = z[i] - r[i] * (z[j] - z[i]) / dr
        keep = (np.abs(slope) < max_slope) & (np.abs(z0) < max_z0)
        inner_all.append(i[keep])
        outer_all.append(j[keep])
    if not inner_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(inner_all).astype(np.int64), np.concatenate(outer_all).astype(np.int64)


def edge_features(hits: dict[str, np.ndarray], inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """Geometric features of each edge, (n_edges, 8) float32, columns :data:`EDGE_FEATURE_NAMES`.

    Radii in m, Δφ in rad, slopes per m, z in m: all of order one, so they need no further scaling.
    """
    r, phi, z = (np.asarray(hits[k], dtype=np.float64) for k in ("r", "phi", "z"))
    dr = (r[outer] - r[inner]) / 1000.0
    dphi = (phi[outer] - phi[inner] + np.pi) % (2 * np.pi) - np.pi
    dz = (z[outer] - z[inner]) / 1000.0
    z0 = z[inner] / 1000.0 - r[inner] / 1000.0 * dz / dr
    return np.stack([r[inner] / 1000.0, dphi / dr, dz / dr, z0, dphi, dz, dr, r[outer] / 1000.0],
                    axis=1).astype(np.float32)


def true_edges(hits: dict[str, np.ndarray], inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(n_edges,) bool: both hits belong to the same particle (noise hits, particle −1, never do)."""
    particle = np.asarray(hits["particle"])
    return (particle[inner] == particle[outer]) & (particle[inner] >= 0)
