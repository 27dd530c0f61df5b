"""The generator: cards, determinism, and the physics the lectures rely on."""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import yaml

from mlpp.data import CardError, load_card
from mlpp.data.cards import available
from mlpp.data.dataset import read_h5
from mlpp.data.generate import chunk_seed, generate_chunk

build_module = importlib.import_module("mlpp.data.build")  # mlpp.data.build is also the function's name


def _peak(values: np.ndarray, lo: float, hi: float, width: float = 5.0) -> float:
    counts, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    return float(edges[np.argmax(counts)] + width / 2)


# --- cards --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["jets5", "top", "qg"])
def test_course_cards_load(name):
    card = load_card(name)
    assert card.n_per_class("fast") < card.n_per_class("full")
    assert sorted(c.label for c in card.classes) == list(range(len(card.classes)))
    assert card.public.get("doi", "").startswith("10.5281/zenodo.")


def test_chunks_cover_the_sizes_and_ignore_workers():
    card = load_card("top")
    units = card.chunks("fast")
    assert sum(n for *_, n in units) == card.n_per_class("fast") * len(card.classes)
    assert len({(ci, k) for ci, k, _ in units}) == len(units)


def test_chunk_seeds_differ_and_are_valid():
    seeds = {chunk_seed(1, ci, k) for ci in range(5) for k in range(200)}
    assert len(seeds) == 1000
    assert all(1 <= s <= 900_000_000 for s in seeds)



class _Pythia:
    """Pythia's nextBatch, counted: the loop's batch sizes and its guard need no real events."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def nextBatch(self, n: int) -> list[int]:
        self.asked.append(n)
        return list(range(n))


def test_event_batches_stop_when_enough_rows_are_kept():
    from mlpp.data.generate import EventBatches

    kept: list[int] = []
    batches = EventBatches(_Pythia(), 50, lambda: len(kept), "card toy", "check the window")
    firsts = []
    for first, batch in batches:
        firsts.append(first)
        kept.extend(batch[::4])  # one row in four events
    assert len(kept) >= 50 and len(batches.pythia.asked) >= 2 and batches.events == sum(batches.pythia.asked)
    assert firsts == [0] + list(np.cumsum(batches.pythia.asked)[:-1])  # each batch's first event index
    # after the first batch the efficiency seen so far sizes the next one: it does not overshoot much
    assert len(kept) < 50 * 1.3 + 10


def test_event_batches_refuse_a_card_that_keeps_almost_nothing():
    from mlpp.data.generate import MAX_EVENTS_PER_JET, EventBatches

    batches = EventBatches(_Pythia(), 20, lambda: 0, "card toy, class qcd (jets)", "check the pT window")
    with pytest.raises(RuntimeError, match=r"card toy, class qcd \(jets\): only 0 kept of \d+ events; check the pT window"):
        for _ in batches:
            pass
    assert MAX_EVENTS_PER_JET * 20 < batches.events <= MAX_EVENTS_PER_JET * 20 + max(batches.pythia.asked)

@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.pop("seed"), "missing key 'seed'"),
    (lambda raw: raw["classes"][0].update(truth={"rule": "magic"}), "truth.rule"),
    (lambda raw: raw["jets"].update(abs_rapidity_max=1.0), "exactly one of"),
    (lambda raw: raw["sizes"].pop("full"), "no entry for tier"),
    (lambda raw: raw["classes"][1].update(label=5), "labels must be"),
])
def test_bad_cards_are_explained(tiny_cards, edit, message):
    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    edit(raw)
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CardError, match=message):
        load_card("broken")


def test_unknown_card_lists_the_known_ones(tiny_cards):
    with pytest.raises(CardError, match="known cards: qg, tiny"):
        load_card("nope")
    assert available() == ["qg", "tiny"]


def test_pythia_setting_typo_is_reported(tiny_cards):
    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    raw["classes"][0]["settings"] = ["HardQCD:al = on"]
    (tiny_cards / "typo.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="Pythia rejected the setting 'HardQCD:al = on'"):
        generate_chunk(load_card("typo"), 0, 0, 5)


# --- determinism --------------------------------------------------------------------

@pytest.mark.slow
def test_same_chunk_twice_gives_identical_arrays(tiny_cards):
    card = load_card("tiny")
    first, second = (generate_chunk(card, 1, 3, 15) for _ in range(2))
    for key in ("pt", "eta", "phi", "e", "charge", "pid_class", "mask", "jet_p4", "label"):
        np.testing.assert_array_equal(first[key], second[key])
    other = generate_chunk(card, 1, 4, 15)
    assert not np.array_equal(first["pt"], other["pt"])


@pytest.mark.slow
def test_build_does_not_depend_on_the_number_of_workers(tiny_cards, tmp_path, monkeypatch):
    from mlpp.data import build

    one = read_h5(build("tiny", "fast", workers=1, quiet=True))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache2"))
    two = read_h5(build("tiny", "fast", workers=2, quiet=True))
    assert len(one) == 80
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(one.features, two.features)
    for key in one.constituents:
        np.testing.assert_array_equal(one.constituents[key], two.constituents[key])


# --- physics of the fast-tier samples ------------------------------------------------

def test_jets5_mass_peaks(jets5):
    mmdt = jets5.feature("mass_mmdt")
    names = jets5.class_names
    assert 70 <= _peak(mmdt[jets5.labels == names.index("W")], 40, 140) <= 90
    assert 82 <= _peak(mmdt[jets5.labels == names.index("Z")], 40, 140) <= 100
    assert 160 <= _peak(mmdt[jets5.labels == names.index("t")], 100, 260) <= 185
    # QCD: no peak, the groomed mass falls in every 50 GeV bin; quark jets are lighter than gluon jets.
    for qcd in ("g", "q"):
        counts, _ = np.histogram(mmdt[jets5.labels == names.index(qcd)], bins=np.arange(0, 301, 50))
        assert np.all(np.diff(counts) < 0), counts
    q, g = (np.median(mmdt[jets5.labels == names.index(c)]) for c in ("q", "g"))
    assert q < 0.7 * g


def test_top_card_mass_and_tau32(top):
    is_top = top.labels == 1
    assert 160 <= _peak(top.feature("mass_mmdt")[is_top], 100, 260) <= 185
    assert 150 <= np.median(top.jet[is_top, 3]) <= 200
    tau32 = top.feature("tau32_b1")
    assert np.median(tau32[is_top]) < np.median(tau32[~is_top]) - 0.1


def test_jets_respect_the_card(top, jets5):
    for data, name in ((top, "top"), (jets5, "jets5")):
        spec = load_card(name).jets
        pts, etas = data.jet[:, 0], data.jet[:, 1]
        assert pts.min() >= spec.pt_min and pts.max() < spec.pt_max
        assert np.abs(etas).max() < spec.abs_eta_max
        assert data.mask.sum(1).max() <= spec.max_constituents
        # pT-ordered constituents, padding only at the end
        c = data.constituents
        assert np.all(np.diff(np.where(c["mask"], c["pt"], 0), axis=1) <= 1e-4)
        assert np.all(np.diff(c["mask"].astype(int), axis=1) <= 0)


def test_constituents_lie_inside_the_jet(top):
    from mlpp.kinematics import delta_r

    c = top.constituents
    dr = delta_r(c["eta"], c["phi"], top.jet[:, 1:2], top.jet[:, 2:3])
    assert np.quantile(dr[c["mask"]], 0.999) < 0.8 * 1.05


def test_detector_classes_are_sensible(top):
    c = top.constituents
    cls, charge, mask = c["pid_class"], c["charge"], c["mask"]
    assert set(np.unique(cls[mask])) <= {0, 1, 2, 3, 4}
    assert np.all(cls[~mask] == -1)
    assert np.all(charge[mask & (cls >= 3)] == 0)
    assert np.all(np.abs(charge[mask & (cls <= 2)]) == 1)
    # about two thirds of the particles in a jet are charged, a quarter photons
    assert 0.45 < np.mean(cls[mask] <= 2) < 0.75


@pytest.mark.slow
def test_dask_cluster_gives_the_same_dataset(tiny_cards, tmp_path, monkeypatch):
    """--scheduler ADDRESS runs the same chunks on a Dask cluster (here a local one on loopback)."""
    from dask.distributed import LocalCluster

    from mlpp.data import build

    local = read_h5(build("tiny", "fast", workers=1, quiet=True))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "dask-cache"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        on_dask = read_h5(build("tiny", "fast", scheduler=cluster.scheduler_address, quiet=True))
    np.testing.assert_array_equal(local.features, on_dask.features)
    np.testing.assert_array_equal(local.constituents["pt"], on_dask.constituents["pt"])


def test_only_pool_workers_are_limited_to_one_thread(monkeypatch):
    """The worker pool runs one thread per process; the process that starts it keeps its own."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    build_module._limit_worker_threads()
    assert "OMP_NUM_THREADS" not in os.environ
    with build_module.open_executor(workers=1) as pool:
        pool.submit(build_module._limit_worker_threads).result()
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result() == "1"


@pytest.mark.slow
def test_an_interrupted_build_resumes_with_the_chunks_it_still_needs(tiny_cards, tmp_path, monkeypatch, capsys):
    """Chunks finished before a crash are kept (verified) and not generated again; the result is unchanged."""
    import concurrent.futures as cf
    from contextlib import contextmanager

    from mlpp.data.build import build, dataset_path

    clean = read_h5(build("tiny", "fast", workers=1, quiet=True))
    assert not list((tmp_path / "cache").glob(".*.parts")), "the chunks of a finished build are removed"

    @contextmanager
    def in_process(workers=None, scheduler=None):  # threads see the patched run_chunk; one at a time, in order
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            yield pool

    real_run_chunk, calls = build_module.run_chunk, []

    def crashing_on_the_last_chunk(card, class_index, chunk_index, n_jets):
        calls.append((class_index, chunk_index))
        if (class_index, chunk_index) == (1, 1):
            raise KeyboardInterrupt("the session ended")
        return real_run_chunk(card, class_index, chunk_index, n_jets)

    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "resumed"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(build_module, "open_executor", in_process)
    monkeypatch.setattr(build_module, "run_chunk", crashing_on_the_last_chunk)
    with pytest.raises(KeyboardInterrupt):
        build("tiny", "fast", quiet=True)
    assert not dataset_path("tiny", "fast").exists()
    parts = dataset_path("tiny", "fast").with_name(".tiny-fast.h5.parts")
    assert len(list(parts.glob("*.npz"))) == 3

    # One kept chunk is damaged: it must be generated again, not trusted.
    damaged = sorted(parts.glob("*.npz"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-100])
    calls.clear()
    monkeypatch.setattr(build_module, "run_chunk",
                        lambda *args: calls.append(args[1:3]) or real_run_chunk(*args))
    resumed = read_h5(build("tiny", "fast"))
    assert sorted(calls) == [(0, 0), (1, 1)]
    assert "OMP_NUM_THREADS" not in os.environ, "chunks run in-process must not single-thread the caller"
    assert "resuming an interrupted build, 2 of 4 chunks kept" in capsys.readouterr().err
    assert not parts.exists()
    np.testing.assert_array_equal(clean.labels, resumed.labels)
    np.testing.assert_array_equal(clean.features, resumed.features)
    for key in clean.constituents:
        np.testing.assert_array_equal(clean.constituents[key], resumed.constituents[key])


def test_sigterm_stops_the_workers_and_keeps_the_finished_chunks(tiny_cards, tmp_path):
    """`kill` on `mlpp data generate` ends its worker processes at once, and a rerun resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil
    import yaml

    # Chunks of a few seconds each (qg: about 30 jets per CPU-second), so that a worker left
    # running would still be alive when the test looks.
    raw = yaml.safe_load((tiny_cards / "qg.yml").read_text())
    raw.update(name="slow", sizes={"fast": 300, "full": 600}, chunk_jets=300)
    (tiny_cards / "slow.yml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "MLPP_CARDS": str(tiny_cards), "MLPP_DATA": str(tmp_path / "cache")}
    command = [sys.executable, "-c", "import sys; from mlpp.cli import main; sys.exit(main())",
               "data", "generate", "slow", "--tier", "full", "--workers", "2", "--quiet"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "cache" / ".slow-full.h5.parts"
    deadline = time.monotonic() + 120
    # A chunk counts once the parts manifest lists it: its file appears a moment earlier (written,
    # then hashed into the manifest), and a chunk stopped in between is generated again, as it should be.
    while not _listed_chunks(parts) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "the build runs its chunks in worker processes"
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, err = proc.communicate(timeout=60)
    # Not after the running chunks end (seconds each here, minutes in the full tier).
    assert time.monotonic() - signalled < 3, "the build waited for its running chunks instead of stopping them"
    assert proc.returncode == 130
    assert "interrupted while generating slow" in err and "run the same command again to resume" in err
    _, alive = psutil.wait_procs(workers, timeout=1)
    running = [p for p in alive if _still_running(p)]  # a dead child nobody reaped yet is a zombie
    assert not running, f"workers still running their chunks after SIGTERM: {[p.pid for p in running]}"
    kept = _listed_chunks(parts)
    assert 1 <= len(kept) < 4
    rerun = subprocess.run(command[:-1], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming an interrupted build, {len(kept)} of 4 chunks kept" in rerun.stderr


def _listed_chunks(parts: Path) -> list[Path]:
    """The chunk files of an interrupted build that its parts manifest lists (what a rerun keeps)."""
    from mlpp.data import cache

    try:
        listed = cache.read_manifest(parts)
    except cache.CorruptCacheError:  # read while being replaced: nothing to count yet
        return []
    return [p for p in parts.glob("*.npz") if p.name in listed]


def _still_running(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- event cards ----------------------------------------------------------------------------

@pytest.fixture()
def tiny_event_card(tiny_cards):
    """A 'tinyev' copy of the dijet event card: 4 events per class, 2 per chunk."""
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "datasets" / "dijet.yml").read_text())
    raw.update(name="tinyev", sizes={"fast": 4, "full": 8}, chunk_jets=2)
    raw["classes"][1]["sizes"] = {"fast": 4, "full": 8}
    (tiny_cards / "tinyev.yml").write_text(yaml.safe_dump(raw))
    return load_card("tinyev")


@pytest.mark.slow
def test_event_card_build_is_deterministic_and_ignores_the_number_of_workers(tiny_event_card, tmp_path, monkeypatch):
    from mlpp.data import EventDataset, build

    one = read_h5(build("tinyev", "fast", workers=1, quiet=True))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache2"))
    two = read_h5(build("tinyev", "fast", workers=2, quiet=True))
    assert isinstance(one, EventDataset) and len(one) == 8 and sorted(one.labels.tolist()) == [0] * 4 + [1] * 4
    for field in ("labels", "jets", "features"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    spec = tiny_event_card.jets
    assert one.jets.shape == (8, 2, 4) and one.features.shape == (8, 2, 6)
    assert np.all(one.jets[:, 0, 0] >= spec.pt_min) and np.all(one.jets[:, 0, 0] >= one.jets[:, 1, 0])
    assert one.meta["events_per_class"][0] >= 4 and one.meta["events_per_class"][1] >= 4


def test_event_jet_features_are_the_jet_features_of_the_same_jets(top):
    """Event cards' τ and multiplicity use the definitions of jet cards (same code, same numbers)."""
    from mlpp.data.features import EVENT_JET_FEATURES, event_jet_features

    jets = top.subset(slice(0, 50))
    c = jets.constituents
    mine = event_jet_features(c["pt"], c["eta"], c["phi"], c["e"], c["mask"], 0.8)
    assert mine.shape == (50, len(EVENT_JET_FEATURES))
    for i, name in enumerate(EVENT_JET_FEATURES):
        np.testing.assert_allclose(mine[:, i], jets.feature(name), rtol=1e-5, err_msg=name)


# --- paired cards (mode: paired) -------------------------------------------------------------

@pytest.fixture()
def tiny_paired_card(tiny_cards):
    """A 'tinyz' copy of the zjet paired card: 3 events per variant, in chunks of 2 and 1."""
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "datasets" / "zjet.yml").read_text())
    raw.update(name="tinyz", sizes={"fast": 3, "full": 6}, chunk_jets=2)
    (tiny_cards / "tinyz.yml").write_text(yaml.safe_dump(raw))
    return load_card("tinyz")


@pytest.mark.slow
def test_paired_card_build_is_deterministic_and_ignores_the_number_of_workers(tiny_paired_card, tmp_path, monkeypatch):
    from mlpp.data import PairedDataset, build
    from mlpp.data.paired import EVENT_ID_STRIDE

    one = read_h5(build("tinyz", "fast", workers=1, quiet=True))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache2"))
    two = read_h5(build("tinyz", "fast", workers=2, quiet=True))
    assert isinstance(one, PairedDataset) and len(one) == 6 and sorted(one.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    for field in ("labels", "event", "boson_pt", "dr", "matched"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    for level in ("particle", "detector"):
        for field in ("jets", "observables", "passed"):
            np.testing.assert_array_equal(getattr(one, field)[level], getattr(two, field)[level])
    assert one.jets["particle"].shape == (6, 4) and one.observables["detector"].shape == (6, 6)
    assert np.all(one.boson_pt > 200.0) and np.all(one.passed["particle"] | one.passed["detector"])
    # event numbers: chunk 1 of each variant holds its third event
    assert sorted((one.event // EVENT_ID_STRIDE).tolist()) == [0, 0, 0, 0, 1, 1]
    assert one.meta["boson"] == 23 and one.meta["events_per_class"][0] >= 3
