"""The toy tracker (mlpp.tracking): helix geometry against closed forms, the hit model's rates,
the tracks card in the data layer (determinism, workers, resuming, the file), and (slow) the
physics of the fast-tier ``tracks`` events."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mlpp import tracking
from mlpp.tracking import C_LIGHT, Tracker, layer_crossings, simulate_hits

REPO = Path(__file__).resolve().parents[1]
RADII = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0])  # mm
B = 2.0  # T


def _particles(pt, eta=0.0, phi=0.0, q=1, vx=0.0, vy=0.0, vz=0.0) -> dict[str, np.ndarray]:
    pt = np.atleast_1d(np.asarray(pt, dtype=float))
    n = len(pt)
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()  # noqa: E731
    return {"pt": pt, "eta": full(eta), "phi": full(phi), "q": full(q), "vx": full(vx), "vy": full(vy), "vz": full(vz)}


def _cross(p: dict, radii=RADII, field=B) -> dict:
    return layer_crossings(p["pt"], p["eta"], p["phi"], p["q"], p["vx"], p["vy"], p["vz"], radii, field)


def _tracker(**kw) -> Tracker:
    n = len(RADII)
    base = dict(radii=tuple(RADII), half_lengths=(1000.0,) * n, sigma_rphi=(0.0,) * n, sigma_z=(0.0,) * n, B=B)
    return Tracker(**(base | kw))


# --- geometry -------------------------------------------------------------------------------------

def test_hit_phi_and_z_follow_the_helix_from_the_origin():
    rng = np.random.default_rng(1)
    n = 200
    pt, phi0, eta = rng.uniform(0.7, 20, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(-1.5, 1.5, n)
    q, z0 = rng.choice([-1.0, 1.0], n), rng.normal(0, 50, n)
    c = _cross(_particles(pt, eta, phi0, q, vz=z0))
    assert c["crossed"].all()
    R = 1000 * pt[:, None] / (C_LIGHT * B)               # mm; R = pT / (0.3 B) in m
    expected_phi = phi0[:, None] - q[:, None] * np.arcsin(RADII / (2 * R))
    dphi = np.angle(np.exp(1j * (c["phi"] - expected_phi)))
    assert np.abs(dphi).max() < 1e-9
    assert np.allclose(np.hypot(c["x"], c["y"]), RADII, rtol=0, atol=1e-8)
    s = 2 * R * np.arcsin(RADII / (2 * R))              # transverse arc length to the layer
    assert np.allclose(c["z"], z0[:, None] + s * np.sinh(eta)[:, None], rtol=0, atol=1e-8)
    assert abs(C_LIGHT - 0.3) < 1e-3


def test_a_low_pt_particle_curls_before_the_outer_layers():
    pt = 0.1  # GeV: R = 167 mm, so it reaches at most 2R = 334 mm from the beam
    R = 1000 * pt / (C_LIGHT * B)
    c = _cross(_particles([pt], q=-1))
    assert c["crossed"][0].tolist() == (RADII < 2 * R).tolist()
    assert c["crossed"][0].sum() == 5
    hits = simulate_hits(_particles([pt], q=-1) | {"pdgid": np.array([211])}, _tracker(), np.random.default_rng(0))
    assert hits["layer"].tolist() == [0, 1, 2, 3, 4]


def test_a_very_stiff_track_is_a_straight_line():
    phi0, eta = 0.7, 0.4
    for vx, vy in [(0.0, 0.0), (1.5, -2.0)]:
        c = _cross(_particles([1e7], eta, phi0, q=1, vx=vx, vy=vy, vz=3.0))
        # the line v + t·(cos φ0, sin φ0) meets the circle of radius r at t = −v·u + sqrt((v·u)² − |v|² + r²)
        vu = vx * np.cos(phi0) + vy * np.sin(phi0)
        t = -vu + np.sqrt(vu**2 - (vx**2 + vy**2) + RADII**2)
        assert np.allclose(c["x"][0], vx + t * np.cos(phi0), atol=1e-6)
        assert np.allclose(c["y"][0], vy + t * np.sin(phi0), atol=1e-6)
        assert np.allclose(c["s"][0], t, atol=1e-6)
        assert np.allclose(c["z"][0], 3.0 + t * np.sinh(eta), atol=1e-6)


def test_positive_particles_bend_clockwise():
    c = _cross(_particles([1.0, 1.0], phi=0.0, q=[1, -1]))
    plus, minus = c["phi"]
    assert np.all(np.diff(plus) < 0) and np.all(plus < 0)      # B along +z: φ decreases for q > 0
    assert np.allclose(minus, -plus)                           # mirror image for q < 0
    assert np.allclose(c["x"][0], c["x"][1])
    with np.errstate(all="raise"):
        neutral = _cross(_particles([1.0, 1.0], q=[0, 0], vx=[0.0, 1.0]))
    assert not neutral["crossed"].any()


def test_displaced_vertex_hits_lie_on_the_particles_circle():
    rng = np.random.default_rng(2)
    n = 100
    p = _particles(rng.uniform(0.5, 5, n), rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n),
                   rng.choice([-1.0, 1.0], n), rng.normal(0, 5, n), rng.normal(0, 5, n), rng.normal(0, 50, n))
    c = _cross(p)
    R = 1000 * p["pt"] / (C_LIGHT * B)
    cx = p["vx"] + p["q"] * R * np.sin(p["phi"])           # centre: to the right of the direction for q > 0
    cy = p["vy"] - p["q"] * R * np.cos(p["phi"])
    ok = c["crossed"]
    assert ok[:, 1:].all()                                   # from within 30 mm everything reaches 72 mm
    dist = np.hypot(c["x"] - cx[:, None], c["y"] - cy[:, None])
    assert np.abs(dist - R[:, None])[ok].max() < 1e-6
    assert np.abs(np.hypot(c["x"], c["y"]) - RADII)[ok].max() < 1e-6
    # the crossing is reached moving forwards, within less than half a turn, layers in order
    assert np.all(np.diff(np.where(ok, c["s"], np.nan), axis=1)[ok[:, :-1] & ok[:, 1:]] > 0)
    # produced outside a layer: no hit there
    outside = _cross(_particles([5.0], vx=50.0))
    assert outside["crossed"][0].tolist() == (RADII > 50.0).tolist()


# --- the hit model ------------------------------------------------------------------------------

def test_efficiency_smearing_and_z_acceptance():
    rng = np.random.default_rng(3)
    n = 4000
    p = _particles(rng.uniform(2, 10, n), rng.uniform(-0.5, 0.5, n), rng.uniform(-np.pi, np.pi, n),
                   rng.choice([-1.0, 1.0], n)) | {"pdgid": np.zeros(n, int)}
    tracker = _tracker(efficiency=0.9, sigma_rphi=(0.05,) * 8, sigma_z=(2.0,) * 8)
    hits = simulate_hits(p, tracker, np.random.default_rng(4))
    crossings = n * len(RADII)
    eff = len(hits["layer"]) / crossings
    assert abs(eff - 0.9) < 4 * np.sqrt(0.9 * 0.1 / crossings), eff
    truth = _cross(p)
    i, l = hits["particle"], hits["layer"]
    rphi = RADII[l] * np.angle(np.exp(1j * (hits["phi"] - truth["phi"][i, l])))
    dz = hits["z"] - truth["z"][i, l]
    assert abs(rphi.std() / 0.05 - 1) < 0.03 and abs(dz.std() / 2.0 - 1) < 0.03
    assert np.allclose(hits["r"], RADII[l])
    # a layer shorter than the particle's z there: no hit
    short = _tracker(half_lengths=(1000.0,) * 7 + (1.0,))
    forward = simulate_hits(_particles([5.0], eta=1.0) | {"pdgid": np.zeros(1, int)}, short, np.random.default_rng(0))
    assert forward["layer"].tolist() == list(range(7))


def test_noise_rate_is_poisson_uniform_and_unlabelled():
    tracker = _tracker(noise_per_layer=3.0, half_lengths=(500.0,) * 8)
    empty = _particles(np.zeros(0)) | {"pdgid": np.zeros(0, int)}
    rng = np.random.default_rng(5)
    events = [simulate_hits(empty, tracker, rng) for _ in range(400)]
    counts = np.array([np.bincount(e["layer"], minlength=8) for e in events])  # (events, layers)
    assert abs(counts.mean() - 3.0) < 4 * np.sqrt(3.0 / counts.size)
    assert abs(counts.var() / counts.mean() - 1) < 0.1                         # Poisson: variance = mean
    phi, z = np.concatenate([e["phi"] for e in events]), np.concatenate([e["z"] for e in events])
    assert np.all(np.concatenate([e["particle"] for e in events]) == -1)
    assert np.abs(z).max() < 500 and abs(np.mean(np.abs(z)) - 250) < 10       # uniform in z
    assert abs(np.mean(np.cos(phi))) < 0.03 and abs(np.mean(phi > 0) - 0.5) < 0.02  # uniform in φ


def test_hits_are_sorted_by_layer_and_phi_not_by_particle():
    rng = np.random.default_rng(6)
    n = 50
    p = _particles(rng.uniform(1, 5, n), 0.0, rng.uniform(-np.pi, np.pi, n), 1.0) | {"pdgid": np.zeros(n, int)}
    hits = simulate_hits(p, _tracker(noise_per_layer=2.0), rng)
    key = hits["layer"].astype(float) * 10 + hits["phi"]
    assert np.all(np.diff(key) >= 0)


# --- the card and the data layer (Pythia; each chunk starts its own) --------------------------------

@pytest.fixture()
def tiny_tracks(tmp_path, monkeypatch):
    """A private copy of the tracks card ('tinytracks': 6 events in chunks of 4 and 2) and a private cache."""
    from mlpp import settings
    from mlpp.data import load_card

    raw = yaml.safe_load((REPO / "datasets" / "tracks.yml").read_text())
    raw.update(name="tinytracks", sizes={"fast": 6, "full": 12}, chunk_events=4)
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "tinytracks.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    monkeypatch.setenv("MLPP_CARDS", str(cards))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache"))
    assert settings.cards_dir() == cards
    return load_card("tinytracks")


@pytest.mark.slow
def test_tracks_build_ignores_workers_resumes_and_is_hash_checked(tiny_tracks, tmp_path, monkeypatch):
    """The data layer builds a tracks card like any other: same arrays for 1 and 2 workers, a chunk
    equal to the same chunk run alone, a resumed build equal to a clean one, a damaged file refused."""
    import importlib

    from mlpp.data import CorruptCacheError, TrackEvents, build, dataset_path, load
    from mlpp.data.dataset import read_h5
    from mlpp.tracking import generate_chunk

    build_module = importlib.import_module("mlpp.data.build")
    card = tiny_tracks
    one = read_h5(build("tinytracks", "fast", workers=1, quiet=True))
    assert isinstance(one, TrackEvents) and len(one) == 6 and one.tracker == card.tracker
    assert one.meta["events"] == 6 and dataset_path("tinytracks", "fast").suffix == ".h5"
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache2"))
    two = read_h5(build("tinytracks", "fast", workers=2, quiet=True))
    assert one.arrays.keys() == two.arrays.keys()
    for key in one.arrays:
        np.testing.assert_array_equal(one.arrays[key], two.arrays[key], err_msg=key)
    # chunk 1 (events 4 and 5) alone, in this process: the same arrays, offsets shifted
    second = generate_chunk(card, 1, 2)
    for kind in ("hit", "particle"):
        lo = one.arrays[f"{kind}_offsets"][4]
        np.testing.assert_array_equal(one.arrays[f"{kind}_offsets"][4:] - lo, second[f"{kind}_offsets"])
        for key in second:
            if key.startswith(f"{kind}_") and not key.endswith("_offsets"):
                np.testing.assert_array_equal(one.arrays[key][lo:], second[key], err_msg=key)
    assert not np.array_equal(one.particles(0)["pt"][:3], one.particles(4)["pt"][:3])  # different draws
    # interrupted after chunk 0: the kept chunk is reused, only chunk 1 runs again, the file is the same
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "resumed"))
    real, calls = build_module.run_chunk, []

    def crash_on_chunk_1(card, class_index, chunk_index, n):
        calls.append(chunk_index)
        if chunk_index == 1:
            raise KeyboardInterrupt("the session ended")
        return real(card, class_index, chunk_index, n)

    import concurrent.futures as cf
    from contextlib import contextmanager

    @contextmanager
    def in_process(workers=None, scheduler=None):
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            yield pool

    monkeypatch.setattr(build_module, "open_executor", in_process)
    monkeypatch.setattr(build_module, "run_chunk", crash_on_chunk_1)
    with pytest.raises(KeyboardInterrupt):
        build("tinytracks", "fast", quiet=True)
    calls.clear()
    monkeypatch.setattr(build_module, "run_chunk", lambda *a: calls.append(a[2]) or real(*a))
    resumed = load("tinytracks", "fast")
    assert calls == [1]
    for key in one.arrays:
        np.testing.assert_array_equal(one.arrays[key], resumed.arrays[key], err_msg=key)
    # a damaged file is refused with the command that rebuilds it
    path = dataset_path("tinytracks", "fast")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCacheError, match="mlpp data generate tinytracks"):
        load("tinytracks", "fast", generate=False)


def test_events_split_subset_and_file_round_trip(tmp_path):
    """TrackEvents from two hand-made chunks: offsets shifted, events intact, the HDF5 layout read back."""
    from mlpp.data import TrackEvents
    from mlpp.data.dataset import read_h5, write_h5
    from mlpp.tracking import PARTICLE_KEYS, flatten_events

    tracker = _tracker(noise_per_layer=1.0)
    rng = np.random.default_rng(7)

    def event(n):
        p = _particles(rng.uniform(1, 5, n), rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n), 1.0)
        p |= {"pdgid": np.full(n, 211)}
        return p, simulate_hits(p, tracker, rng)

    chunks = [[event(n) for n in (3, 0, 5)], [event(n) for n in (2, 4)]]
    parts = [flatten_events([e for e, _ in c], [h for _, h in c]) for c in chunks]
    events = TrackEvents.from_chunks(parts, tracker, {"card": "hand", "tracker": tracker.to_dict()})
    assert len(events) == 5 and events.arrays["particle_offsets"].tolist() == [0, 3, 3, 8, 10, 14]
    flat = [e for c in chunks for e in c]
    for i, (hits, particles) in enumerate(events):
        for key in PARTICLE_KEYS:
            np.testing.assert_allclose(particles[key], flat[i][0][key], rtol=1e-6)
        np.testing.assert_array_equal(hits["particle"], flat[i][1]["particle"])
    train, val, test = events.split()
    assert (len(train), len(val), len(test)) == (3, 1, 1)
    np.testing.assert_array_equal(test[0][0]["phi"], events[4][0]["phi"])
    write_h5(tmp_path / "t.h5", events)
    back = read_h5(tmp_path / "t.h5")
    assert back.tracker == tracker and back.meta["card"] == "hand"
    for key in events.arrays:
        np.testing.assert_array_equal(back.arrays[key], events.arrays[key], err_msg=key)


def test_the_card_describes_the_trackml_barrel():
    from mlpp.data import load_card

    card = load_card("tracks")
    t = card.tracker
    assert card.is_tracks and card.jets is None
    assert t.radii == (32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0) and t.B == 2.0
    assert card.chunks("fast") == [(0, 0, 50), (0, 1, 50), (0, 2, 50), (0, 3, 50)]
    assert "660" in tracking.describe(card)


def test_needed_finds_the_tracks_thread(tmp_path, monkeypatch):
    """'mlpp data generate --needed' picks the tracks card for a notebook that imports the thread."""
    import nbformat

    from mlpp.data.cli import needed_cards

    root = tmp_path / "course"
    for i, line in enumerate(["from mlpp.tasks import tracks", "from mlpp.tasks.tracks import split",
                              "import mlpp.tasks.tracks as t"]):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(line)])
        (root / "lectures" / str(i)).mkdir(parents=True)
        nbformat.write(nb, root / "lectures" / str(i) / "x.ipynb")
        monkeypatch.setenv("MLPP_ROOT", str(root))
        monkeypatch.setenv("MLPP_CARDS", str(REPO / "datasets"))
        assert needed_cards(("lectures",)) == ["tracks"], line
        (root / "lectures" / str(i) / "x.ipynb").unlink()


# --- physics of the fast-tier events (generated on first use: under a minute on a quiet machine) ------

@pytest.fixture(scope="module")
def tracks_fast():
    from mlpp.tasks import tracks

    return tracks.load("fast")


@pytest.mark.slow
def test_fast_events_hits_per_particle_and_multiplicity(tracks_fast):
    events = tracks_fast
    t = events.tracker
    assert len(events) == 200
    per_particle, in_acceptance, multiplicity, noise = [], [], [], []
    for hits, particles in events:
        n = len(particles["pt"])
        multiplicity.append(n)
        assert hits["particle"].max() < n
        per_particle.append(np.bincount(hits["particle"][hits["particle"] >= 0], minlength=n))
        in_acceptance.append(tracking.reaches_all_layers(particles, t))
        noise.append(np.sum(hits["particle"] < 0))
        # at most one hit per particle and layer
        true = hits["particle"] >= 0
        pairs = hits["particle"][true].astype(np.int64) * t.n_layers + hits["layer"][true]
        assert len(np.unique(pairs)) == len(pairs)
    per_particle, in_acceptance = np.concatenate(per_particle), np.concatenate(in_acceptance)
    mean_hits = per_particle[in_acceptance].mean()
    print(f"charged particles per event (pT > 1 GeV, |eta| < 1.5): mean {np.mean(multiplicity):.1f}; "
          f"{in_acceptance.mean():.0%} reach all {t.n_layers} layers, with {mean_hits:.2f} hits each "
          f"(expected {t.n_layers * t.efficiency:.2f}); noise hits per event {np.mean(noise):.1f}")
    expected = t.n_layers * t.efficiency
    error = np.sqrt(t.n_layers * t.efficiency * (1 - t.efficiency) / in_acceptance.sum())
    assert abs(mean_hits - expected) < 5 * error
    assert abs(np.mean(noise) - t.n_layers * t.noise_per_layer) < 5 * np.sqrt(t.n_layers * t.noise_per_layer / 200)
    assert 20 < np.mean(multiplicity) < 80           # tt̄ with the underlying event, |eta| < 1.5, pT > 1 GeV
    assert 0.5 < in_acceptance.mean() <= 1.0
    p = events.arrays
    assert np.all(p["particle_pt"] > 1.0) and np.all(np.abs(p["particle_eta"]) < 1.5)
    assert set(np.unique(p["particle_q"])) <= {-1, 1}
    vz = p["particle_vz"]
    assert 35 < np.std(vz) < 65                      # the luminous region: sigma_z = 50 mm


@pytest.mark.slow
def test_split_is_fixed_and_disjoint(tracks_fast):
    from mlpp.tasks import tracks

    train, val, test = tracks.split(tracks_fast)
    assert (len(train), len(val), len(test)) == (120, 40, 40)
    hits, _ = test[0]
    assert np.array_equal(hits["z"], tracks_fast[160][0]["z"])
