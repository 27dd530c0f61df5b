"""Offline tests of the public-dataset loaders (mlpp.public).

Each test writes a few jets in the exact public file format into a temporary cache
(``$MLPP_PUBLIC``), pins the loader to that file's checksum and loads it through the
real code path: the cache check with pooch's hash, or pooch.retrieve with a stand-in
downloader. The network is blocked for the whole module.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest

from mlpp.public import (PublicDataCorrupt, PublicDataUnavailable, _fetch, cache_dir, hls4ml_jets,
                         qg_jets, toptagging)


# --------------------------------------------------------------------------- helpers

def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def assert_one_line(err: BaseException, *needles: str) -> None:
    text = str(err)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails, as on a machine without network."""
    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "network blocked by test_public_loaders")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "public"
    folder.mkdir()
    monkeypatch.setenv("MLPP_PUBLIC", str(folder))
    return folder


def serve(payload: bytes, calls: list | None = None):
    """A pooch downloader that 'downloads' ``payload`` (a stand-in for the network)."""
    def download(url, output_file, pooch_obj, check_only=False):
        if calls is not None:
            calls.append(url)
        Path(output_file).write_bytes(payload)
    return download


# ------------------------------------------------------------- top tagging (HDF5)

def py2_pickle(names: list[str]) -> bytes:
    """A list of str pickled by Python 2 (protocol 0, 'S' strings), as older pandas wrote it."""
    items = "".join(f"S'{name}'\np{i + 1}\na" for i, name in enumerate(names))
    return f"(lp0\n{items}.".encode()


def write_top_h5(path: Path, constituents: np.ndarray, truth_p4s: np.ndarray, labels: np.ndarray,
                 ttv: int = 1, flavour: str = "py3", shuffle: bool = False) -> None:
    """Write jets in the reference files' layout: pandas to_hdf(key='table', format='table').

    ``shuffle`` permutes the float columns (names and values together), which the loader
    must undo from the stored names.
    """
    n, k, _ = constituents.shape
    float_names = [f"{c}_{i}" for i in range(k) for c in ("E", "PX", "PY", "PZ")]
    float_names += ["truthE", "truthPX", "truthPY", "truthPZ"]
    floats = np.concatenate([constituents.reshape(n, -1), truth_p4s], axis=1)
    if shuffle:
        order = np.random.default_rng(7).permutation(len(float_names))
        float_names, floats = [float_names[i] for i in order], floats[:, order]
    int_names = ["ttv", "is_signal_new"]
    dtype = np.dtype([("index", "<i8"), ("values_block_0", "<f4", (len(float_names),)),
                      ("values_block_1", "<i8", (2,))])
    rows = np.zeros(n, dtype=dtype)
    rows["index"] = np.arange(n)
    rows["values_block_0"] = floats
    rows["values_block_1"] = np.stack([np.full(n, ttv), labels], axis=1)
    dump = (lambda names: pickle.dumps(names, protocol=0)) if flavour == "py3" else py2_pickle
    with h5py.File(path, "w") as handle:
        handle.attrs["PYTABLES_FORMAT_VERSION"] = np.bytes_(b"2.1")
        group = handle.create_group("table")
        group.attrs["CLASS"] = np.bytes_(b"GROUP")
        group.attrs["pandas_type"] = np.bytes_(b"frame_table")
        group.attrs["table_type"] = np.bytes_(b"appendable_frame")
        group.attrs["values_cols"] = np.bytes_(dump(["values_block_0", "values_block_1"]))
        table = group.create_dataset("table", data=rows, maxshape=(None,), chunks=True)
        table.attrs["CLASS"] = np.bytes_(b"TABLE")
        table.attrs["NROWS"] = np.int64(n)
        for i, field in enumerate(dtype.names):
            table.attrs[f"FIELD_{i}_NAME"] = np.bytes_(field.encode())
        table.attrs["values_block_0_kind"] = np.bytes_(dump(float_names))
        table.attrs["values_block_0_dtype"] = np.bytes_(b"float32")
        table.attrs["values_block_1_kind"] = np.bytes_(dump(int_names))
        table.attrs["values_block_1_dtype"] = np.bytes_(b"int64")


def make_top_jets(n: int = 6, k: int = 5, seed: int = 0):
    """Massless constituents (E = |p|) with padding, top four-momenta for the signal jets."""
    rng = np.random.default_rng(seed)
    p3s = rng.normal(0.0, 50.0, size=(n, k, 3))
    p4s = np.concatenate([np.linalg.norm(p3s, axis=-1, keepdims=True), p3s], axis=-1)
    multiplicities = rng.integers(1, k + 1, size=n)
    p4s[np.arange(k)[None, :] >= multiplicities[:, None]] = 0.0  # zero padding
    labels = np.arange(n) % 2
    truth = np.where(labels[:, None] == 1, rng.normal(300.0, 20.0, size=(n, 4)), 0.0)
    return p4s.astype(np.float32), truth.astype(np.float32), labels


@pytest.fixture
def top_file(cache, monkeypatch):
    """test.h5 in the cache, pinned to its md5; returns (path, constituents, truth, labels)."""
    constituents, truth, labels = make_top_jets()
    path = cache / "test.h5"
    write_top_h5(path, constituents, truth, labels)
    monkeypatch.setitem(toptagging.FILES, "test", ("test.h5", f"md5:{md5_of(path)}"))
    return path, constituents, truth, labels


@pytest.mark.parametrize("n_jets", [None, 0, 4, 100])
def test_top_round_trip(top_file, n_jets):
    _, constituents, truth, labels = top_file
    jets = toptagging.load("test", n_jets=n_jets)
    n = len(labels) if n_jets is None else min(n_jets, len(labels))
    assert jets.constituents.shape == (n, 5, 4)
    assert jets.constituents.dtype == np.float32
    assert jets.labels.shape == (n,) and jets.labels.dtype == np.int64
    assert jets.truth_p4s.shape == (n, 4)
    assert jets.n_jets == n and jets.split == "test"
    np.testing.assert_array_equal(jets.constituents, constituents[:n])
    np.testing.assert_array_equal(jets.truth_p4s, truth[:n])
    np.testing.assert_array_equal(jets.labels, labels[:n])


def test_top_constituents_are_massless_and_padded(top_file):
    jets = toptagging.load("test")
    e, p3 = jets.constituents[..., 0], jets.constituents[..., 1:]
    m2 = e.astype(np.float64) ** 2 - np.sum(p3.astype(np.float64) ** 2, axis=-1)
    assert np.all(np.abs(m2) <= 1e-4 * np.maximum(e.astype(np.float64) ** 2, 1.0))
    assert np.any(e == 0.0), "the fixture has zero-padded constituents"
    assert np.all(jets.truth_p4s[jets.labels == 0] == 0.0)


@pytest.mark.parametrize("keep", [0, 2, 5, 9])
def test_top_keeps_leading_constituents(top_file, keep):
    _, constituents, _, _ = top_file
    jets = toptagging.load("test", n_constituents=keep)
    assert jets.constituents.shape == (len(constituents), min(keep, 5), 4)
    np.testing.assert_array_equal(jets.constituents, constituents[:, : min(keep, 5)])


@pytest.mark.parametrize("flavour, shuffle", [("py2", False), ("py3", True), ("py2", True)])
def test_top_columns_are_found_by_name(tmp_path, flavour, shuffle):
    """Python 2 pickles of the names (older pandas) and any column order read the same."""
    constituents, truth, labels = make_top_jets(n=3, k=2, seed=1)
    path = tmp_path / "layout.h5"
    write_top_h5(path, constituents, truth, labels, flavour=flavour, shuffle=shuffle)
    jets = toptagging.read(path)
    np.testing.assert_array_equal(jets.constituents, constituents)
    np.testing.assert_array_equal(jets.truth_p4s, truth)
    np.testing.assert_array_equal(jets.labels, labels)


@pytest.mark.parametrize("rows_per_read", [1, 4, 100_000])
def test_top_reads_in_row_chunks(top_file, monkeypatch, rows_per_read):
    _, constituents, truth, labels = top_file
    monkeypatch.setattr(toptagging, "ROWS_PER_READ", rows_per_read)
    jets = toptagging.load("test", n_jets=5)
    np.testing.assert_array_equal(jets.constituents, constituents[:5])
    np.testing.assert_array_equal(jets.truth_p4s, truth[:5])
    np.testing.assert_array_equal(jets.labels, labels[:5])


def test_top_column_names_are_unpickled_without_globals(tmp_path):
    constituents, truth, labels = make_top_jets(n=2, k=1)
    path = tmp_path / "evil.h5"
    write_top_h5(path, constituents, truth, labels)
    with h5py.File(path, "a") as handle:  # a pickle that would call a function on load
        handle["table/table"].attrs["values_block_1_kind"] = np.bytes_(pickle.dumps(print, protocol=0))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        toptagging.read(path)


def test_top_reads_a_file_written_by_pandas(tmp_path):
    pytest.importorskip("tables")
    import pandas as pd

    constituents, truth, labels = make_top_jets(n=4, k=3, seed=2)
    columns = {f"{c}_{i}": constituents[:, i, j]
               for i in range(3) for j, c in enumerate(toptagging.P4_COLUMNS)}
    columns.update({name: truth[:, j] for j, name in enumerate(toptagging.TRUTH_COLUMNS)})
    columns.update({"ttv": np.zeros(4, dtype=np.int64), "is_signal_new": labels.astype(np.int64)})
    path = tmp_path / "pandas.h5"
    pd.DataFrame(columns).to_hdf(path, key="table", format="table", mode="w")
    jets = toptagging.read(path)
    np.testing.assert_array_equal(jets.constituents, constituents)
    np.testing.assert_array_equal(jets.labels, labels)


def test_top_corrupted_file_names_the_file(top_file):
    path = top_file[0]
    flip_byte(path, offset=len(path.read_bytes()) // 2)
    with pytest.raises(PublicDataCorrupt) as err:
        toptagging.load("test")
    assert_one_line(err.value, str(path), "delete", "md5")


def test_top_without_network_names_the_generated_equivalent(cache):
    with pytest.raises(PublicDataUnavailable) as err:
        toptagging.load("val", n_jets=10)
    assert_one_line(err.value, "Top Quark Tagging", "10.5281/zenodo.2603256", 'mlpp.data.load("top")')
    assert not (cache / "val.h5").exists()


def test_top_download_is_checked_by_pooch(cache, tmp_path, monkeypatch):
    constituents, truth, labels = make_top_jets(n=3, k=2)
    source = tmp_path / "upstream.h5"
    write_top_h5(source, constituents, truth, labels)
    monkeypatch.setitem(toptagging.FILES, "train", ("train.h5", f"md5:{md5_of(source)}"))
    calls: list[str] = []
    monkeypatch.setattr(_fetch, "_downloader", lambda: serve(source.read_bytes(), calls))
    jets = toptagging.load("train")
    assert calls == ["https://zenodo.org/records/2603256/files/train.h5?download=1"]
    assert (cache / "train.h5").read_bytes() == source.read_bytes()
    np.testing.assert_array_equal(jets.constituents, constituents)
    toptagging.load("train")  # cached: no second download
    assert len(calls) == 1


def test_top_corrupted_download_is_refused(cache, tmp_path, monkeypatch):
    constituents, truth, labels = make_top_jets(n=3, k=2)
    source = tmp_path / "upstream.h5"
    write_top_h5(source, constituents, truth, labels)
    monkeypatch.setitem(toptagging.FILES, "train", ("train.h5", f"md5:{md5_of(source)}"))
    monkeypatch.setattr(_fetch, "_downloader", lambda: serve(source.read_bytes()[:-1] + b"x"))
    with pytest.raises(PublicDataCorrupt) as err:
        toptagging.load("train")
    assert_one_line(err.value, "train.h5", "delete", "md5")
    assert not (cache / "train.h5").exists()


def test_top_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        toptagging.load("validation")


def test_top_pins_the_published_md5s():
    assert {split: fname for split, (fname, _) in toptagging.FILES.items()} == {
        "train": "train.h5", "val": "val.h5", "test": "test.h5"}
    for _, known_hash in toptagging.FILES.values():
        alg, value = _fetch.split_hash(known_hash)
        assert alg == "md5" and len(value) == 32 and int(value, 16) >= 0


# ------------------------------------------------------------ hls4ml jets (ARFF)

FEATURES = ("zlogz", "c1_b0_mmdt", "c1_b1_mmdt", "c1_b2_mmdt", "c2_b1_mmdt", "c2_b2_mmdt",
            "d2_b1_mmdt", "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt",
            "m2_b2_mmdt", "n2_b1_mmdt", "n2_b2_mmdt", "mass_mmdt", "multiplicity")


OPENML_TEST_URL = "https://api.openml.org/data/v1/download/1/hls4ml_lhc_jets_hlf.arff"


def write_arff(path: Path, features: np.ndarray, classes: list[str]) -> None:
    """An ARFF file like OpenML's: 16 numeric attributes, then the nominal 'class'."""
    lines = ["% hls4ml LHC jets, high-level features (test copy)", "@RELATION hls4ml_lhc_jets_hlf", ""]
    lines += [f"@ATTRIBUTE {name} NUMERIC" for name in FEATURES]
    lines += ["@ATTRIBUTE class {'g','q','t','w','z'}", "", "@DATA"]
    for row, cls in zip(features, classes):
        lines.append(",".join(repr(float(v)) for v in row) + f",'{cls}'")
        if len(lines) % 4 == 0:
            lines.append("% a comment between rows")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def hls_data():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(7, 16)).astype(np.float32)
    features[:, -2] = rng.uniform(0.0, 200.0, size=7).astype(np.float32)  # mass_mmdt in GeV
    features[:, -1] = rng.integers(5, 80, size=7)  # multiplicity
    classes = ["t", "g", "z", "q", "w", "g", "t"]
    return features, classes


@pytest.fixture
def hls_file(cache, hls_data, monkeypatch):
    path = cache / hls4ml_jets.ARFF_FNAME
    write_arff(path, *hls_data)
    monkeypatch.setattr(hls4ml_jets, "ARFF_URL", OPENML_TEST_URL)
    monkeypatch.setattr(hls4ml_jets, "ARFF_MD5", md5_of(path))
    return path


@pytest.mark.parametrize("n_jets", [None, 0, 3, 50])
def test_hls4ml_round_trip(hls_file, hls_data, n_jets):
    features, classes = hls_data
    jets = hls4ml_jets.load(n_jets=n_jets)
    n = len(classes) if n_jets is None else min(n_jets, len(classes))
    assert jets.features.shape == (n, 16) and jets.features.dtype == np.float32
    assert jets.labels.shape == (n,) and jets.labels.dtype == np.int64
    assert jets.feature_names == FEATURES
    assert jets.classes == ("g", "q", "t", "w", "z")
    np.testing.assert_array_equal(jets.features, features[:n])
    assert [jets.classes[i] for i in jets.labels] == classes[:n]


def test_hls4ml_parser_agrees_with_scipy(hls_file):
    from scipy.io import arff

    data, meta = arff.loadarff(hls_file)
    jets = hls4ml_jets.read(hls_file)
    assert tuple(meta.names()[:-1]) == jets.feature_names
    expected = np.stack([data[name] for name in jets.feature_names], axis=1).astype(np.float32)
    np.testing.assert_array_equal(jets.features, expected)
    assert [jets.classes[i] for i in jets.labels] == [v.decode() for v in data["class"]]


def test_hls4ml_refuses_unpinned_download_by_default(cache, monkeypatch):
    monkeypatch.setattr(hls4ml_jets, "ARFF_URL", None)
    monkeypatch.setattr(hls4ml_jets, "ARFF_MD5", None)
    with pytest.raises(PublicDataUnavailable) as err:
        hls4ml_jets.load()
    assert_one_line(err.value, "verify=False", "10.5281/zenodo.3602260", 'mlpp.data.load("jets5")')


def write_description(cache: Path, md5: str) -> None:
    description = {"data_set_description": {
        "id": "42468", "name": "hls4ml_lhc_jets_hlf", "version": "1", "format": "ARFF",
        "file_id": "1", "url": OPENML_TEST_URL,
        "md5_checksum": md5}}
    (cache / hls4ml_jets.DESCRIPTION_FNAME).write_text(json.dumps(description))


def test_hls4ml_unverified_path_checks_openmls_md5(hls_file, cache, hls_data, monkeypatch):
    monkeypatch.setattr(hls4ml_jets, "ARFF_URL", None)
    monkeypatch.setattr(hls4ml_jets, "ARFF_MD5", None)
    write_description(cache, md5_of(hls_file))
    jets = hls4ml_jets.load(verify=False)
    np.testing.assert_array_equal(jets.features, hls_data[0])
    write_description(cache, "0" * 32)  # OpenML's md5 no longer matches the cached file
    with pytest.raises(PublicDataCorrupt) as err:
        hls4ml_jets.load(verify=False)
    assert_one_line(err.value, str(hls_file), "delete")


def test_hls4ml_corrupted_file_names_the_file(hls_file):
    flip_byte(hls_file, offset=200)
    with pytest.raises(PublicDataCorrupt) as err:
        hls4ml_jets.load()
    assert_one_line(err.value, str(hls_file), "delete")


def test_hls4ml_without_network_names_the_generated_equivalent(cache, monkeypatch):
    monkeypatch.setattr(hls4ml_jets, "ARFF_URL", OPENML_TEST_URL)
    monkeypatch.setattr(hls4ml_jets, "ARFF_MD5", "0" * 32)
    with pytest.raises(PublicDataUnavailable) as err:
        hls4ml_jets.load()
    assert_one_line(err.value, "hls4ml", "10.5281/zenodo.3602260", 'mlpp.data.load("jets5")')
    monkeypatch.setattr(hls4ml_jets, "ARFF_URL", None)
    with pytest.raises(PublicDataUnavailable) as err:  # nor can OpenML's description be had
        hls4ml_jets.load(verify=False)
    assert_one_line(err.value, hls4ml_jets.DESCRIPTION_URL, 'mlpp.data.load("jets5")')


# -------------------------------------------------------------- quark-gluon jets

def make_qg_file(path: Path, n: int, n_max: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An energyflow-style npz: X (n, n_max, 4) as (pt, y, phi, pid), zero-padded; y in {0, 1}."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, n_max, 4))
    for i, m in enumerate(rng.integers(1, n_max + 1, size=n)):
        x[i, :m] = np.stack([np.sort(rng.exponential(20.0, m))[::-1], rng.normal(0, 0.2, m),
                             rng.normal(0, 0.2, m), rng.choice([22.0, 211.0, -211.0, 130.0], m)], axis=1)
    y = (np.arange(n) % 2).astype(np.float64)
    np.savez_compressed(path, X=x, y=y)
    return x, y


@pytest.fixture
def qg_files(cache, monkeypatch):
    """Two cached files of 5 jets with different padding, pinned to their sha256."""
    first = make_qg_file(cache / "QG_jets.npz", n=5, n_max=4, seed=4)
    second = make_qg_file(cache / "QG_jets_1.npz", n=5, n_max=6, seed=5)
    pinned = tuple((name, sha256_of(cache / name)) for name in ("QG_jets.npz", "QG_jets_1.npz"))
    monkeypatch.setattr(qg_jets, "FILES", pinned)
    monkeypatch.setattr(qg_jets, "JETS_PER_FILE", 5)
    return first, second


@pytest.mark.parametrize("n_jets", [3, 5, 8, None])
def test_qg_round_trip_pads_across_files(qg_files, n_jets):
    (x0, y0), (x1, y1) = qg_files
    jets = qg_jets.load(n_jets=n_jets)
    n = 10 if n_jets is None else n_jets
    n_max = 4 if n <= 5 else 6
    assert jets.particles.shape == (n, n_max, 4)
    assert jets.labels.shape == (n,) and jets.labels.dtype == np.int64
    expected = np.zeros((10, 6, 4))
    expected[:5, :4], expected[5:] = x0, x1
    np.testing.assert_array_equal(jets.particles, expected[:n, :n_max])
    np.testing.assert_array_equal(jets.labels, np.concatenate([y0, y1])[:n].astype(np.int64))


def test_qg_reads_only_the_files_it_needs(qg_files, cache):
    (cache / "QG_jets_1.npz").unlink()  # a missing second file would need the network
    assert qg_jets.load(n_jets=4).n_jets == 4
    with pytest.raises(PublicDataUnavailable) as err:
        qg_jets.load(n_jets=6)
    assert_one_line(err.value, "quark-gluon", "10.5281/zenodo.3164691", 'mlpp.data.load("qg")')


def test_qg_corrupted_file_names_the_file(qg_files, cache):
    path = cache / "QG_jets.npz"
    flip_byte(path)
    with pytest.raises(PublicDataCorrupt) as err:
        qg_jets.load(n_jets=2)
    assert_one_line(err.value, str(path), "delete", "sha256")


def test_qg_without_network_names_the_generated_equivalent(cache):
    with pytest.raises(PublicDataUnavailable) as err:
        qg_jets.load(n_jets=10)
    assert_one_line(err.value, "10.5281/zenodo.3164691", 'mlpp.data.load("qg")')


def test_qg_pinned_hashes_agree_with_energyflow():
    qg = pytest.importorskip("energyflow.datasets.qg_jets")
    urls = qg.URLS["pythia"]["nobc"]["zenodo"]
    names = [url.split("/")[-1].split("?")[0] for url in urls]
    assert list(qg_jets.FILES) == list(zip(names, qg.HASHES["pythia"]["nobc"]["sha256"]))


# ----------------------------------------------------------------------- shared

def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPP_PUBLIC", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("MLPP_PUBLIC")
    assert cache_dir() == Path.home() / ".cache" / "mlpp" / "public"


@pytest.mark.parametrize("known_hash, expected", [
    ("md5:ABC", ("md5", "abc")), ("sha256:0f", ("sha256", "0f")), ("0f", ("sha256", "0f"))])
def test_split_hash(known_hash, expected):
    assert _fetch.split_hash(known_hash) == expected


def test_unpinned_fetch_needs_explicit_consent(cache):
    with pytest.raises(PublicDataUnavailable, match="verify=False"):
        _fetch.fetch("https://example.org/x", "x.bin", None, toptagging.DATASET)
