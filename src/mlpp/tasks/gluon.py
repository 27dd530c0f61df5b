"""The ``gluon`` thread: JetNet-style gluon jets as particle clouds (Lecture 7 and its exercise).

The ``gluon`` card stores the leading jet of each event with up to 150 constituents. Generative
models see what JetNet (Kansal et al., arXiv:2106.11535) gives them: the 30 leading constituents
in relative coordinates, zero-padded::

    from mlpp.tasks import gluon
    train, test = gluon.split()                  # JetDatasets, fixed 60/40
    x = gluon.particles(train)                   # (n, 30, 3) float32: eta_rel, phi_rel, pt_rel
    m = gluon.mask(x)                            # (n, 30) bool: real particles
    mass = gluon.jet_mass(x)                     # (n,) relative mass m / pT_jet
    features = gluon.efps(x)                     # (n, 36) EFPs for FPD / KPD

Conventions (JetNet's): ``eta_rel = eta - eta_jet``, ``phi_rel = phi - phi_jet`` (within π),
``pt_rel = pT / pT_jet``, with the clustered jet's (pT, eta, phi) from ``JetDataset.jet``; the
30 leading particles of a jet therefore carry a little less than all of its pT. Padding
particles are exactly (0, 0, 0).
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np

from mlpp import settings
from mlpp.data import JetDataset, dataset

CARD = "gluon"
#: Particles per jet, as in JetNet's 30-particle gluon sample.
N_PARTICLES = 30
#: Training and test fractions; the jets are stored in a seeded random order.
SPLIT: tuple[float, float] = (0.6, 0.4)
#: Names of the three particle features, in the order of :func:`particles`.
PARTICLE_FEATURES: tuple[str, str, str] = ("eta_rel", "phi_rel", "pt_rel")
#: JetNet's EFP set for FPD and KPD (``jetnet.evaluation.get_fpd_kpd_jet_features``):
#: all EFPs of degree d <= 4 (36 of them), hadronic measure, beta = 1, not normalised
#: (the pt_rel already sum to about 1).
EFP_ARGS: tuple = (("d<=", 4),)
EFP_OPTIONS: dict = {"measure": "hadr", "beta": 1, "normed": None, "coords": "ptyphim"}


def load(tier: str | None = None) -> JetDataset:
    """The ``gluon`` dataset of ``tier`` (default ``$MLPP_TIER``), generated on first use."""
    from mlpp import data

    return data.load(CARD, tier=settings.tier(tier))


def split_slices(n_jets: int) -> tuple[slice, slice]:
    """Where the training and test jets lie among ``n_jets`` stored jets (:data:`SPLIT`)."""
    return dataset.split_slices(n_jets, SPLIT)


def split(jets: JetDataset | None = None, tier: str | None = None) -> tuple[JetDataset, JetDataset]:
    """The fixed training / test split (60/40 of the stored, seeded order); ``jets`` defaults to :func:`load`."""
    jets = load(tier) if jets is None else jets
    if jets.name != CARD:
        raise ValueError(f"gluon.split needs the {CARD!r} dataset, not {jets.name!r}")
    train, test = (jets.subset(part) for part in split_slices(len(jets)))
    return train, test


def particles(jets: JetDataset, n_particles: int = N_PARTICLES) -> np.ndarray:
    """The leading ``n_particles`` constituents in relative coordinates: (n_jets, n_particles, 3) float32.

    Columns ``(eta_rel, phi_rel, pt_rel)``; rows beyond a jet's multiplicity are zero.
    """
    c = jets.constituents
    keep = c["mask"][:, :n_particles]                                     # (n, P) bool
    pt_jet, eta_jet, phi_jet = (jets.jet[:, i:i + 1] for i in range(3))   # (n, 1) each
    eta_rel = c["eta"][:, :n_particles] - eta_jet
    # stored phi are already within π of the jet axis; wrap again in case a caller edits them
    phi_rel = np.mod(c["phi"][:, :n_particles] - phi_jet + np.pi, 2 * np.pi) - np.pi
    pt_rel = c["pt"][:, :n_particles] / pt_jet
    out = np.stack([eta_rel, phi_rel, pt_rel], axis=-1).astype(np.float32)  # (n, P, 3)
    out[~keep] = 0.0
    if out.shape[1] < n_particles:  # a card with fewer stored constituents: pad
        out = np.pad(out, ((0, 0), (0, n_particles - out.shape[1]), (0, 0)))
    return out


def mask(x: JetDataset | np.ndarray, n_particles: int = N_PARTICLES) -> np.ndarray:
    """Which particles are real: (n_jets, n_particles) bool.

    From a dataset: the stored mask. From a particle array (n, P, 3), generated ones included:
    particles with pt_rel > 0 (the padding is zero).
    """
    if isinstance(x, JetDataset):
        m = x.mask[:, :n_particles]
        return np.pad(m, ((0, 0), (0, n_particles - m.shape[1]))) if m.shape[1] < n_particles else m
    return np.asarray(x)[..., 2] > 0


def jet_mass(x: np.ndarray) -> np.ndarray:
    """Relative jet mass m / pT_jet of particle clouds (n, P, 3): (n,) float64.

    JetNet's convention (``jetnet.utils.jet_features``): each particle is massless with
    (pT, eta, phi) = (pt_rel, eta_rel, phi_rel) and the mass is that of their four-vector sum.
    Shifting eta is a boost along the beam and shifting phi a rotation, so this is exactly
    m(leading particles) / pT_jet. Particles with pt_rel <= 0 (padding) do not contribute.
    """
    x = np.asarray(x, dtype=np.float64)
    eta, phi, pt = x[..., 0], x[..., 1], np.clip(x[..., 2], 0.0, None)
    e = (pt * np.cosh(eta)).sum(axis=1)
    px = (pt * np.cos(phi)).sum(axis=1)
    py = (pt * np.sin(phi)).sum(axis=1)
    pz = (pt * np.sinh(eta)).sum(axis=1)
    return np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))


def multiplicity(x: np.ndarray) -> np.ndarray:
    """Number of real particles among the kept ones: (n,) int."""
    return mask(x).sum(axis=1)


@lru_cache(maxsize=1)
def efp_graphs() -> tuple[tuple[tuple[int, int], ...], ...]:
    """The edge lists of JetNet's 36 EFP graphs, in energyflow's order (read once: ~5 s)."""
    import energyflow

    efpset = energyflow.EFPSet(*EFP_ARGS, **EFP_OPTIONS)
    return tuple(tuple((int(a), int(b)) for a, b in g) for g in efpset.graphs())


def _components(edges: tuple[tuple[int, int], ...]) -> list[list[tuple[int, int]]]:
    """The connected components of a multigraph given by its edges (an edgeless graph: one node)."""
    if not edges:
        return [[]]
    groups: list[tuple[set[int], list[tuple[int, int]]]] = []
    for a, b in edges:
        hits = [g for g in groups if a in g[0] or b in g[0]]
        nodes, members = {a, b}, [(a, b)]
        for g in hits:
            nodes |= g[0]
            members += g[1]
            groups.remove(g)
        groups.append((nodes, members))
    return [members for _, members in groups]


def _connected_efp(edges: list[tuple[int, int]], z: np.ndarray, theta_power, memo: dict) -> np.ndarray:
    """EFP of one connected multigraph for a batch: (B,).

    Trees are summed leaf to root with batched matrix-vector products, m_c(i) = sum_j theta_ij^k
    v_c(j), where v_c = z times the messages into c; subtrees that several graphs share are
    computed once per batch (``memo``). A graph with a cycle (5 of the 36 contain a triangle or a
    square) is the trace of matrix products around the cycle.
    """
    if not edges:
        return z.sum(1)
    mult = Counter(tuple(sorted(e)) for e in edges)
    nodes = sorted({v for e in mult for v in e})
    neighbours: dict[int, list[tuple[int, int]]] = {v: [] for v in nodes}
    for (a, b), k in mult.items():
        neighbours[a].append((b, k))
        neighbours[b].append((a, k))

    def value(v: int, parent: int | None, skip: tuple = ()) -> tuple[str, np.ndarray]:
        """(canonical form, (B, P)): z times the messages of v's subtrees, away from ``parent`` and ``skip``."""
        parts = sorted(((k,) + value(child, v) for child, k in neighbours[v] if child != parent and child not in skip),
                       key=lambda item: (item[0], item[1]))
        key = "(" + "".join(f"{k}{sub}" for k, sub, _ in parts) + ")"
        if key not in memo:
            out = z
            for k, _, below in parts:
                out = out * np.einsum("bij,bj->bi", theta_power(k), below)
            memo[key] = out
        return key, memo[key]

    if len(mult) == len(nodes) - 1:  # a tree
        return value(nodes[0], None)[1].sum(1)
    # One cycle (every graph with d <= 4 has at most one): the trace of diag(w1) T12 diag(w2) T23 ...
    # around it, where w carries the trees that hang off each cycle node.
    cycle = _cycle(nodes, neighbours)
    weights = [value(v, None, skip=tuple(cycle))[1] for v in cycle]                     # (B, P) each
    powers = [mult[tuple(sorted((a, b)))] for a, b in zip(cycle, cycle[1:] + cycle[:1])]
    product = weights[0][:, :, None] * theta_power(powers[0]) * weights[1][:, None, :]   # (B, P, P)
    for w, k in zip(weights[2:], powers[1:-1]):
        product = np.matmul(product, theta_power(k) * w[:, None, :])
    return (product * theta_power(powers[-1])).sum(axis=(1, 2))


def _cycle(nodes: list[int], neighbours: dict) -> list[int]:
    """The nodes of the one cycle of a connected graph with one cycle, in order (leaves pruned away)."""
    degree = {v: len({o for o, _ in neighbours[v]}) for v in nodes}
    alive = set(nodes)
    leaves = [v for v in nodes if degree[v] == 1]
    while leaves:
        leaf = leaves.pop()
        alive.discard(leaf)
        for other, _ in neighbours[leaf]:
            if other in alive:
                degree[other] -= 1
                if degree[other] == 1:
                    leaves.append(other)
    order = [min(alive)]
    while True:
        step = next((o for o, _ in neighbours[order[-1]] if o in alive and o not in order), None)
        if step is None:
            return order
        order.append(step)


def efps(x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """JetNet's 36 EFPs for FPD / KPD (:data:`EFP_ARGS`, :data:`EFP_OPTIONS`): (n_jets, 36) float64.

    ``x`` is (n, P, 3) in the order of :func:`particles`; negative pt_rel (a generator's) count
    as zero. As in JetNet (energyflow with ``coords="ptyphim"``), eta_rel stands in for the
    rapidity: EFP_G = sum over particles i_1..i_n of z_i1 ... z_in times the product over the
    edges (k, l) of G of theta_{i_k i_l}, with z = pt_rel and theta = Delta R (beta = 1).
    energyflow computes this jet by jet (a few ms per jet); here every tree-shaped graph is
    summed with batched matrix products over ``batch_size`` jets at once (a cycle as a trace of
    matrix products): the same numbers, which the tests compare, many times faster.
    """
    x = np.asarray(x, dtype=np.float64)
    graphs = [_components(g) for g in efp_graphs()]
    out = np.empty((len(x), len(graphs)))
    for start in range(0, len(x), batch_size):
        part = x[start:start + batch_size]
        z = np.clip(part[..., 2], 0.0, None)                                      # (B, P)
        d_eta = part[:, :, None, 0] - part[:, None, :, 0]
        d_phi = np.mod(part[:, :, None, 1] - part[:, None, :, 1] + np.pi, 2 * np.pi) - np.pi
        theta = np.sqrt(d_eta**2 + d_phi**2)                                      # (B, P, P)
        powers = {1: theta}

        def theta_power(k: int) -> np.ndarray:
            if k not in powers:
                powers[k] = theta**k
            return powers[k]

        memo: dict = {}
        for j, components in enumerate(graphs):
            value = np.ones(len(part))
            for edges in components:  # a disconnected graph's EFP is the product of its parts'
                value = value * _connected_efp(edges, z, theta_power, memo)
            out[start:start + len(part), j] = value
    return out
