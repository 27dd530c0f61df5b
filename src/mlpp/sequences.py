"""Jets as sequences of particles: ordering, padding and truncation, masks, and per-particle
input features relative to the jet axis (for recurrent networks and 1D CNNs in Lecture 3, and
for the set and graph networks after it).

Layout. A batch of jets is a padded array ``(n_jets, n_particles)`` per quantity, or
``(n_jets, n_particles, n_features)``, with a boolean ``mask`` ``(n_jets, n_particles)`` that is
true for real particles. The course's datasets store the constituents in decreasing pT with the
padding at the end; the functions here accept padding anywhere (a mask with holes) and always
return it at the end, set to ``pad_value`` (0 by default).

>>> from mlpp import data, sequences
>>> jets = data.load("top")
>>> x, mask = sequences.sequences_from_dataset(jets, n_particles=30)         # (n, 30, 7), (n, 30)
>>> x_shuffled, mask = sequences.shuffle_particles(x, mask, seed=1)          # same particles, random order
>>> scaler = sequences.fit_scaler(x, mask)                                    # per feature, real particles only
>>> x_scaled = sequences.scale_particles(x, mask, scaler)                     # padding stays 0

The features (:data:`PARTICLE_FEATURE_NAMES`) are those of ParticleNet's top-tagging inputs
(Qu and Gouskos, arXiv:1902.08570, Table 1). Every function returns new arrays and never
changes its inputs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from mlpp.kinematics import delta_phi, ptetaphi_from_momenta
from mlpp.training import Standardizer

if TYPE_CHECKING:
    from mlpp.data.dataset import JetDataset

#: Per-particle features, all relative to the jet axis except ``log_pt`` and ``log_e``:
#: ``deta`` η − η_jet; ``dphi`` φ − φ_jet wrapped into [−π, π); ``log_pt`` ln(pT / GeV);
#: ``log_e`` ln(E / GeV); ``log_pt_rel`` ln(pT / pT_jet); ``log_e_rel`` ln(E / E_jet);
#: ``dr`` ΔR = sqrt(Δη² + Δφ²).
PARTICLE_FEATURE_NAMES: tuple[str, ...] = ("deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr")

#: Orderings understood by :func:`sequences_from_dataset`.
ORDERS: tuple[str, ...] = ("pt", "random", "dr")

_CHUNK = 20_000  # jets per block where float64 temporaries of shape (n_jets, n_particles) are made


def _as_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask has shape {mask.shape}, expected {shape} (n_jets, n_particles)")
    return mask


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _where_mask(values: np.ndarray, mask: np.ndarray, pad_value: float) -> np.ndarray:
    """``values`` with ``pad_value`` wherever ``mask`` is false (mask broadcast over feature axes)."""
    m = mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim))
    return np.where(m, values, np.asarray(pad_value, dtype=values.dtype))


# --- masks, padding and truncation ----------------------------------------------------------

def mask_from_counts(counts: np.ndarray, n_particles: int) -> np.ndarray:
    """Boolean mask (n_jets, n_particles): the first ``counts[i]`` slots of jet i are real.

    ``counts``: (n_jets,) numbers of particles; counts above ``n_particles`` fill every slot.
    """
    counts = np.asarray(counts)
    if np.any(counts < 0):
        raise ValueError("particle counts must be >= 0")
    return np.arange(n_particles)[None, :] < counts[:, None]


def fix_length(values: np.ndarray, mask: np.ndarray, n_particles: int,
               pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Truncate or pad the particle axis (axis 1) to ``n_particles`` slots.

    ``values``: (n_jets, P) or (n_jets, P, n_features); ``mask``: (n_jets, P). Keeps the first
    ``n_particles`` slots as they are, so order the particles first (e.g. by pT, as stored) to
    keep the hardest ones. Returns ``(values, mask)`` of shapes (n_jets, n_particles[, n_features])
    and (n_jets, n_particles); every slot where the mask is false holds ``pad_value``.
    """
    values = np.asarray(values)
    mask = _as_mask(mask, values.shape[:2])
    if n_particles < 0:
        raise ValueError(f"n_particles must be >= 0, got {n_particles}")
    n_jets, n_slots = mask.shape
    if n_particles <= n_slots:
        out_values, out_mask = values[:, :n_particles], mask[:, :n_particles]
    else:
        extra = n_particles - n_slots
        out_values = np.concatenate([values, np.zeros((n_jets, extra) + values.shape[2:], values.dtype)], axis=1)
        out_mask = np.concatenate([mask, np.zeros((n_jets, extra), dtype=bool)], axis=1)
    return _where_mask(out_values, out_mask, pad_value), out_mask.copy()


def pad_sequences(sequences: Sequence[np.ndarray], n_particles: int | None = None,
                  pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length jets into one padded array and its mask.

    ``sequences``: a list of (n_i,) or (n_i, n_features) arrays, one per jet, particles in the
    order to keep. ``n_particles``: slots per jet (default: the longest jet); longer jets keep
    their first ``n_particles`` particles. Returns ``(values, mask)``:
    (n_jets, n_particles[, n_features]) and (n_jets, n_particles).
    """
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise ValueError("pad_sequences needs at least one jet")
    trailing = arrays[0].shape[1:]
    if any(a.shape[1:] != trailing for a in arrays):
        raise ValueError("every jet must have the same number of features")
    counts = np.array([len(a) for a in arrays])
    n = int(counts.max()) if n_particles is None else int(n_particles)
    dtype = np.result_type(*arrays)
    values = np.full((len(arrays), n) + trailing, pad_value, dtype=dtype)
    for i, a in enumerate(arrays):
        values[i, : min(len(a), n)] = a[:n]
    return values, mask_from_counts(counts, n)


# --- orderings ------------------------------------------------------------------------------

def ordering(keys: np.ndarray, mask: np.ndarray, descending: bool = True) -> np.ndarray:
    """Indices (n_jets, n_particles) that sort each jet's real particles by ``keys``, padding last.

    ``keys``: (n_jets, n_particles), e.g. pT (descending) or ΔR to the axis (``descending=False``).
    Ties keep their original order (a stable sort); padded slots keep theirs, after the particles.
    Apply the result with :func:`reorder`.
    """
    keys = np.asarray(keys, dtype=np.float64)
    mask = _as_mask(mask, keys.shape)
    signed = -keys if descending else keys
    # Padding sorts after every real particle: sort on (is padding, key), stably.
    signed = np.where(mask, signed, 0.0)
    by_key = np.argsort(signed, axis=1, kind="stable")
    padding_last = np.argsort(~np.take_along_axis(mask, by_key, axis=1), axis=1, kind="stable")
    return np.take_along_axis(by_key, padding_last, axis=1)


def random_ordering(mask: np.ndarray, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Indices (n_jets, n_particles) that put each jet's real particles in a random order, padding last."""
    mask = np.asarray(mask, dtype=bool)
    keys = _rng(seed).random(mask.shape)
    return ordering(keys, mask, descending=False)


def reorder(values: np.ndarray, mask: np.ndarray, order: np.ndarray,
            pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Apply per-jet particle indices ``order`` (n_jets, n_particles) to ``values`` and ``mask``.

    ``values``: (n_jets, n_particles[, n_features]). Returns new ``(values, mask)``; slots that
    the new mask marks as padding hold ``pad_value``.
    """
    values = np.asarray(values)
    mask = _as_mask(mask, values.shape[:2])
    order = np.asarray(order)
    if order.shape != mask.shape:
        raise ValueError(f"order has shape {order.shape}, expected {mask.shape}")
    index = order.reshape(order.shape + (1,) * (values.ndim - 2))
    new_values = np.take_along_axis(values, index, axis=1)
    new_mask = np.take_along_axis(mask, order, axis=1)
    return _where_mask(new_values, new_mask, pad_value), new_mask


def sort_particles(values: np.ndarray, mask: np.ndarray, keys: np.ndarray, descending: bool = True,
                   pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (n_jets, n_particles[, n_features]) sorted per jet by ``keys`` (n_jets, n_particles).

    Real particles first (in decreasing ``keys`` unless ``descending=False``), padding last.
    Sorting by pT gives the order in which the course's datasets store the constituents.
    """
    return reorder(values, mask, ordering(keys, mask, descending), pad_value)


def shuffle_particles(values: np.ndarray, mask: np.ndarray, seed: int | np.random.Generator | None = None,
                      pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The same particles in a random order per jet (padding last): a sequence without its order.

    ``values``: (n_jets, n_particles[, n_features]); ``seed`` makes the order reproducible.
    """
    return reorder(values, mask, random_ordering(mask, seed), pad_value)


# --- features relative to the jet axis ------------------------------------------------------

def jet_axes(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
             mask: np.ndarray) -> np.ndarray:
    """Jet (pT [GeV], η, φ, E [GeV]) from the four-momentum sum of its real constituents.

    Inputs are (n_jets, n_particles) arrays (pT and E in GeV); returns (n_jets, 4) float64. For
    anti-kT jets (E-scheme recombination) this is the clustered jet when no constituent is missing.
    """
    mask = _as_mask(mask, np.shape(pts))
    out = np.zeros((len(mask), 4))
    for start in range(0, len(mask), _CHUNK):
        sl = slice(start, start + _CHUNK)
        # Padding may hold anything: zero its pT and E, and put it at η = φ = 0.
        pt = np.where(mask[sl], np.asarray(pts[sl], dtype=np.float64), 0.0)
        phi = np.where(mask[sl], np.asarray(phis[sl], dtype=np.float64), 0.0)
        eta = np.where(mask[sl], np.asarray(etas[sl], dtype=np.float64), 0.0)
        px, py, pz = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1), (pt * np.sinh(eta)).sum(1)
        e = np.where(mask[sl], np.asarray(es[sl], dtype=np.float64), 0.0).sum(1)
        out[sl, 0], out[sl, 1], out[sl, 2] = ptetaphi_from_momenta(px, py, pz)
        out[sl, 3] = e
    return out


def jet_axes_from_ptetaphims(jets: np.ndarray) -> np.ndarray:
    """(n_jets, 4) = (pT, η, φ, E) from (pT, η, φ, m), the layout of ``JetDataset.jet``.

    E = sqrt(m² + (pT cosh η)²), in GeV.
    """
    jets = np.asarray(jets, dtype=np.float64)
    pts, etas, phis, ms = jets[:, 0], jets[:, 1], jets[:, 2], jets[:, 3]
    return np.stack([pts, etas, phis, np.sqrt(ms**2 + (pts * np.cosh(etas)) ** 2)], axis=1)


def particle_features(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
                      mask: np.ndarray, jets: np.ndarray | None = None,
                      names: Sequence[str] = PARTICLE_FEATURE_NAMES) -> np.ndarray:
    """Per-particle inputs relative to the jet axis: (n_jets, n_particles, len(names)) float32.

    ``pts``, ``etas``, ``phis``, ``es``: (n_jets, n_particles) constituents (GeV, radians);
    ``mask``: (n_jets, n_particles), padding anywhere. ``jets``: (n_jets, 4) = (pT, η, φ, E) of
    the jet axis; by default :func:`jet_axes` of the given constituents (pass the axis of the
    whole jet when the arrays are truncated). ``names``: any of :data:`PARTICLE_FEATURE_NAMES`, in the
    order wanted. Padded slots are 0 in every feature.
    """
    unknown = [n for n in names if n not in PARTICLE_FEATURE_NAMES]
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; choose from {', '.join(PARTICLE_FEATURE_NAMES)}")
    mask = _as_mask(mask, np.shape(pts))
    if jets is None:
        jets = jet_axes(pts, etas, phis, es, mask)
    jets = np.asarray(jets, dtype=np.float64)
    out = np.zeros(mask.shape + (len(names),), dtype=np.float32)
    for start in range(0, len(mask), _CHUNK):
        sl = slice(start, start + _CHUNK)
        m = mask[sl]
        # Padding gets harmless dummy kinematics (pT = E = 1 GeV on the axis) before the logs.
        pt = np.where(m, np.asarray(pts[sl], dtype=np.float64), 1.0)
        e = np.where(m, np.asarray(es[sl], dtype=np.float64), 1.0)
        jet = jets[sl]
        deta = np.where(m, np.asarray(etas[sl], dtype=np.float64) - jet[:, 1:2], 0.0)
        dphi = np.where(m, delta_phi(np.where(m, np.asarray(phis[sl], dtype=np.float64), 0.0), jet[:, 2:3]), 0.0)
        columns = {
            "deta": lambda: deta,
            "dphi": lambda: dphi,
            "log_pt": lambda: np.log(pt),
            "log_e": lambda: np.log(e),
            "log_pt_rel": lambda: np.log(pt / jet[:, 0:1]),
            "log_e_rel": lambda: np.log(e / jet[:, 3:4]),
            "dr": lambda: np.hypot(deta, dphi),
        }
        for k, name in enumerate(names):
            out[sl, :, k] = np.where(m, columns[name](), 0.0)
    return out


def sequences_from_dataset(dataset: JetDataset, n_particles: int, names: Sequence[str] = PARTICLE_FEATURE_NAMES,
                           order: str = "pt", seed: int | np.random.Generator | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-length particle sequences from a :class:`mlpp.data.JetDataset`.

    Keeps the ``n_particles`` hardest constituents of each jet (padding jets with fewer) and
    computes :func:`particle_features` relative to the clustered jet (``dataset.jet``). ``order``:
    ``"pt"`` decreasing pT (as stored); ``"random"`` the same particles shuffled per jet
    (``seed``); ``"dr"`` the same particles by increasing ΔR to the axis. Returns
    ``x`` (n_jets, n_particles, len(names)) float32, 0 at padding, and ``mask`` (n_jets, n_particles).
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    c = dataset.constituents
    axes = jet_axes_from_ptetaphims(dataset.jet)
    rng = _rng(seed)
    xs, masks = [], []
    for start in range(0, len(dataset.labels), _CHUNK):
        sl = slice(start, start + _CHUNK)
        # The stored order is decreasing pT; sort anyway, so that any padded layout works.
        by_pt = ordering(c["pt"][sl], c["mask"][sl])[:, :n_particles]
        cols = {key: np.take_along_axis(np.asarray(c[key][sl]), by_pt, axis=1)
                for key in ("pt", "eta", "phi", "e", "mask")}
        kept = cols["mask"].astype(bool)
        mask = fix_length(kept, kept, n_particles)[1]
        pt, eta, phi, e = (fix_length(cols[key], kept, n_particles)[0] for key in ("pt", "eta", "phi", "e"))
        x = particle_features(pt, eta, phi, e, mask, jets=axes[sl], names=names)
        if order == "random":
            x, mask = shuffle_particles(x, mask, rng)
        elif order == "dr":
            drs = particle_features(pt, eta, phi, e, mask, jets=axes[sl], names=("dr",))[..., 0]
            x, mask = sort_particles(x, mask, drs, descending=False)
        xs.append(x)
        masks.append(mask)
    return np.concatenate(xs), np.concatenate(masks)


# --- scaling the inputs -----------------------------------------------------------------------

def fit_scaler(x: np.ndarray, mask: np.ndarray) -> Standardizer:
    """Mean and standard deviation of each feature over the real particles of ``x``.

    ``x``: (n_jets, n_particles, n_features) training sequences; ``mask``: (n_jets, n_particles).
    Returns a :class:`mlpp.training.Standardizer` with ``mean`` and ``scale`` of shape (n_features,).
    """
    x = np.asarray(x)
    mask = _as_mask(mask, x.shape[:2])
    return Standardizer.fit(x[mask])


def scale_particles(x: np.ndarray, mask: np.ndarray, scaler: Standardizer) -> np.ndarray:
    """``(x − mean) / scale`` for real particles, 0 at padding: (n_jets, n_particles, n_features) float32.

    Keeping the padding at exactly 0 lets ``keras.layers.Masking(mask_value=0.0)`` find it.
    """
    x = np.asarray(x)
    mask = _as_mask(mask, x.shape[:2])
    return _where_mask(scaler.transform(x), mask, 0.0).astype(np.float32)
