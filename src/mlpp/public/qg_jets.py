"""EnergyFlow's Pythia quark and gluon jets (Komiske, Metodiev, Thaler).

Energy Flow Networks, arXiv:1810.05165; data doi:10.5281/zenodo.3164691. Pythia 8.226
Z(->nu nu) + g and Z + (uds) jets at sqrt(s) = 14 TeV, anti-kT R = 0.4, pT in
[500, 550] GeV, |y| < 1.7, no detector simulation: 2M jets in 20 files of 100k
(``QG_jets.npz``, ``QG_jets_1.npz``, …, ``QG_jets_19.npz``), each holding ``X``
``(100000, n_max, 4)`` zero-padded particles ``(pt, y, phi, pid)`` and ``y`` (1 quark,
0 gluon). The files are read with numpy only; energyflow is not needed at run time.

The generated equivalent the course ships is ``mlpp.data.load("qg")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._fetch import PublicDataset, fetch

if TYPE_CHECKING:
    import numpy as np

DATASET = PublicDataset(
    name="EnergyFlow Pythia quark-gluon jets",
    doi="10.5281/zenodo.3164691",
    generated='mlpp.data.load("qg")',
)
URL = "https://zenodo.org/records/3164691/files/{fname}?download=1"
JETS_PER_FILE = 100_000
# (file name, sha256), copied from energyflow 1.4.0:
# energyflow.datasets.qg_jets.HASHES["pythia"]["nobc"]["sha256"] in the order of its Zenodo URLs.
FILES: tuple[tuple[str, str], ...] = (
    ("QG_jets.npz", "3f27a02eab06e8b83ccc9d25638021e6e24c9361341730961f9d560dee12c257"),
    ("QG_jets_1.npz", "648e49cd59b5353e0064e7b1a3388d9c2f4a454d3ca67afaa8d0344c836ecb35"),
    ("QG_jets_2.npz", "09f7b16fa7edb312c0f652bb8504de45f082c4193df65204d693155017272fe9"),
    ("QG_jets_3.npz", "7dc9a50bb38e9f6fc1f11db18f9bd04f72823c944851746b848dee0bba808537"),
    ("QG_jets_4.npz", "3e6217aad8e0502f5ce3b6371c61396dfc48a6cf4f26ee377cc7b991b1d2b543"),
    ("QG_jets_5.npz", "b5b7d742b2599bcbe1d7a639895bca64c28da513dc3620b0e5bbb5801f8c88fd"),
    ("QG_jets_6.npz", "7d31bc48c15983401e0dbe8fd5ee938c3809d9ee3c909f4adab6daf8b73c14f1"),
    ("QG_jets_7.npz", "cec0d7b2afa9d955543c597f9b7f3b3767812a68b2401ec870caf3a2ceb98401"),
    ("QG_jets_8.npz", "e984620f57abe06fc5d0b063f9f84ba54bd3e8c295d2b2419a7b1c6175079ed4"),
    ("QG_jets_9.npz", "6e3b69196995d6eb3b8e7af874e2b9f93d904624f7a7a73b8ff39f151e3bd189"),
    ("QG_jets_10.npz", "fa3d386f230b806058ff17e5bd77326ff4bf01d72aa5eb3325c1df2a8825927c"),
    ("QG_jets_11.npz", "acd49ab7bea8f72ecf699a9a898bccacc8730474259d68406656a5a43d407fb0"),
    ("QG_jets_12.npz", "2edd55b8bc30c686a0637855e1ba068586eb97041e8114d5540d96db2a7a2e17"),
    ("QG_jets_13.npz", "7276a8a0e573f9795a47f9d5addc10d2af903c2a0ffa5c848a720ccae93daa90"),
    ("QG_jets_14.npz", "2068ecfa912e94cd3ce7273b7c77af0bbd5ec57940997e7483b56f03434a6869"),
    ("QG_jets_15.npz", "41a732ce6321dd593214225b03fb87329607ccae768c705e3896ffecc28bfcca"),
    ("QG_jets_16.npz", "9d68caeb18f3ccf127b9032f52e63ee011c4381293a3a503f894e5c0741ae215"),
    ("QG_jets_17.npz", "086053ca611bb04d97fa0b6509b4ffb6955421b067c7b277498f0e5188879331"),
    ("QG_jets_18.npz", "cdc595f5fedef7db9411a9f93f2786f110073b4d17a523700f625846588b1e44"),
    ("QG_jets_19.npz", "d07781139320ae134ce4824bc0cefa43fd5003cd97cdf3aed90d4fb12fad8a1d"),
)


@dataclass(frozen=True)
class QGJets:
    """Quark and gluon jets as plain arrays.

    particles: ``(n_jets, n_max, 4)`` as stored (float64), ``(pt, y, phi, pid)`` per
        particle: pt in GeV, rapidity y, azimuth phi in radians (within pi of the jet),
        PDG id; zero rows pad each jet to ``n_max``, the longest jet among the files read.
    labels: ``(n_jets,)`` int64, 1 for a quark jet, 0 for a gluon jet.
    """

    particles: np.ndarray
    labels: np.ndarray

    @property
    def n_jets(self) -> int:
        """Number of jets."""
        return len(self.labels)


def paths(max_files: int = 1) -> list[Path]:
    """Local paths of the first ``max_files`` files (1 to 20), downloaded if missing."""
    if not 1 <= max_files <= len(FILES):
        raise ValueError(f"max_files must be between 1 and {len(FILES)}, got {max_files}")
    return [fetch(URL.format(fname=fname), fname, f"sha256:{sha256}", DATASET)
            for fname, sha256 in FILES[:max_files]]


def load(n_jets: int | None = JETS_PER_FILE) -> QGJets:
    """The first ``n_jets`` jets (all 2M if None), downloading only the files they need
    (100k jets per file)."""
    import math

    max_files = len(FILES) if n_jets is None else min(len(FILES), max(1, math.ceil(n_jets / JETS_PER_FILE)))
    return read(paths(max_files), n_jets=n_jets)


def read(files: list[str | Path] | tuple[str | Path, ...], n_jets: int | None = None) -> QGJets:
    """Read ``.npz`` files with ``X`` and ``y`` in order, stopping after ``n_jets`` jets."""
    import numpy as np

    particles, labels, total = [], [], 0
    for file in files:
        if n_jets is not None and total >= n_jets:
            break
        with np.load(file, allow_pickle=False) as data:
            take = len(data["y"]) if n_jets is None else min(len(data["y"]), int(n_jets) - total)
            particles.append(np.asarray(data["X"][:take]))
            labels.append(np.asarray(data["y"][:take]).astype(np.int64))
        total += take
    if not particles:
        return QGJets(particles=np.zeros((0, 0, 4)), labels=np.zeros(0, dtype=np.int64))
    n_max = max(x.shape[1] for x in particles)
    padded = np.zeros((total, n_max, particles[0].shape[2]), dtype=particles[0].dtype)
    start = 0
    for x in particles:
        padded[start: start + len(x), : x.shape[1]] = x
        start += len(x)
    return QGJets(particles=padded, labels=np.concatenate(labels))
