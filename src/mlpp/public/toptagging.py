"""The Top Quark Tagging Reference Dataset (Kasieczka, Plehn, Thompson, Russel).

Landscape paper: arXiv:1902.09914; data: doi:10.5281/zenodo.2603256. 14 TeV hadronic
tops (signal) and QCD dijets (background), Pythia8 + Delphes (ATLAS card), anti-kT
R = 0.8 jets with pT in [550, 650] GeV and |eta| < 2; the leading 200 constituents by
pT, zero-padded. 1.2M train, 400k validation and 400k test jets.

The files are pandas ``to_hdf(key="table", format="table")`` stores (PyTables). They are
read here with h5py, with no PyTables: the group ``/table`` holds the compound dataset
``/table/table`` with fields ``index`` (int64), ``values_block_0`` (floats, one entry
per float column: E_0, PX_0, PY_0, PZ_0, …, PZ_199, truthE, truthPX, truthPY, truthPZ)
and ``values_block_1`` (int64: ttv, is_signal_new). The column names of each block are
in the attribute ``values_block_<i>_kind``, a protocol-0 pickle of a list of strings,
which is read with an unpickler that refuses every global (no code can run).

The generated equivalent the course ships is ``mlpp.data.load("top")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._fetch import PublicDataset, fetch

if TYPE_CHECKING:
    import numpy as np

DATASET = PublicDataset(
    name="Top Quark Tagging Reference Dataset",
    doi="10.5281/zenodo.2603256",
    generated='mlpp.data.load("top")',
)
URL = "https://zenodo.org/records/2603256/files/{fname}?download=1"
# Zenodo publishes md5 checksums only, so md5 is what is pinned. The same md5s (and sizes
# train 1,038,496,555 / val 347,378,076 / test 347,849,376 bytes) appear in several
# independent public download scripts for record 2603256.
FILES: dict[str, tuple[str, str]] = {
    "train": ("train.h5", "md5:45663819f47c13724f67eb0fd80bfa5c"),
    "val": ("val.h5", "md5:dca4b7248027618f041f9baa86d360fc"),
    "test": ("test.h5", "md5:13163479dee30a5fe546e4536cc3d04d"),
}
SPLITS = tuple(FILES)
P4_COLUMNS = ("E", "PX", "PY", "PZ")
TRUTH_COLUMNS = ("truthE", "truthPX", "truthPY", "truthPZ")
LABEL_COLUMN = "is_signal_new"
ROWS_PER_READ = 100_000


@dataclass(frozen=True)
class TopTaggingJets:
    """One split of the top-tagging dataset as plain arrays.

    constituents: ``(n_jets, n_constituents, 4)`` float32, ``(E, px, py, pz)`` in GeV,
        leading constituents by pT first, zero rows as padding (200 in the real files).
    labels: ``(n_jets,)`` int64, 1 for a top jet, 0 for a QCD jet (``is_signal_new``).
    truth_p4s: ``(n_jets, 4)`` float32, ``(E, px, py, pz)`` of the matched top in GeV,
        zeros for QCD jets.
    """

    constituents: np.ndarray
    labels: np.ndarray
    truth_p4s: np.ndarray
    split: str

    @property
    def n_jets(self) -> int:
        """Number of jets."""
        return len(self.labels)


def path(split: str = "train") -> Path:
    """Local path of the split's file (``train``, ``val`` or ``test``), downloaded if missing."""
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    fname, known_hash = FILES[split]
    return fetch(URL.format(fname=fname), fname, known_hash, DATASET)


def load(split: str = "train", n_jets: int | None = None,
         n_constituents: int | None = None) -> TopTaggingJets:
    """The first ``n_jets`` jets (all if None) of one split, keeping the leading
    ``n_constituents`` constituents (all, i.e. 200, if None).

    The full training split is 1.2M jets, about 3.9 GB as float32 in memory: pass
    ``n_jets`` to read only the first rows.
    """
    return read(path(split), split=split, n_jets=n_jets, n_constituents=n_constituents)


def read(file: str | Path, split: str = "train", n_jets: int | None = None,
         n_constituents: int | None = None) -> TopTaggingJets:
    """Read a file in the reference dataset's layout (see the module docstring)."""
    import h5py
    import numpy as np

    with h5py.File(file, "r") as handle:
        table = handle["table/table"]
        stop = len(table) if n_jets is None else max(0, min(int(n_jets), len(table)))
        columns = _column_positions(table)  # name -> (block field, position in block)
        n_max = _count_constituents(columns)
        keep = n_max if n_constituents is None else max(0, min(int(n_constituents), n_max))
        p4_names = [f"{c}_{i}" for i in range(keep) for c in P4_COLUMNS]
        missing = [n for n in p4_names + list(TRUTH_COLUMNS) + [LABEL_COLUMN] if n not in columns]
        if missing:
            raise ValueError(f"{file} does not have the top-tagging layout: no column {missing[0]!r}")
        constituents = np.empty((stop, 4 * keep), dtype=np.float32)
        truth_p4s = np.empty((stop, 4), dtype=np.float32)
        labels = np.empty(stop, dtype=np.int64)
        # Read in row chunks so the peak memory stays near the size of the result.
        for lo in range(0, stop, ROWS_PER_READ):
            hi = min(lo + ROWS_PER_READ, stop)
            fields = {columns[n][0] for n in p4_names + list(TRUTH_COLUMNS) + [LABEL_COLUMN]}
            blocks = {field: table.fields(field)[lo:hi] for field in fields}
            _gather(blocks, columns, p4_names, constituents[lo:hi])
            _gather(blocks, columns, list(TRUTH_COLUMNS), truth_p4s[lo:hi])
            field, k = columns[LABEL_COLUMN]
            labels[lo:hi] = blocks[field][:, k]
    return TopTaggingJets(constituents=constituents.reshape(stop, keep, 4), labels=labels,
                          truth_p4s=truth_p4s, split=split)


def _gather(blocks: dict, columns: dict[str, tuple[str, int]], names: list[str], out: np.ndarray) -> None:
    """Fill ``out`` (rows, len(names)) with the named columns of the row blocks."""
    import numpy as np

    for field in {columns[n][0] for n in names}:
        js = [j for j, n in enumerate(names) if columns[n][0] == field]
        ks = np.array([columns[names[j]][1] for j in js])
        if len(js) == len(names) and np.array_equal(ks, np.arange(ks[0], ks[0] + len(ks))):
            out[:] = blocks[field][:, ks[0]: ks[0] + len(ks)]  # the usual contiguous layout
        else:
            out[:, js] = blocks[field][:, ks]


def _column_positions(table) -> dict[str, tuple[str, int]]:
    """Column name -> (``values_block_<i>``, index in that block) from the table's attributes."""
    positions: dict[str, tuple[str, int]] = {}
    for field in table.dtype.names:
        if not field.startswith("values_block_"):
            continue
        for k, name in enumerate(_unpickle_names(table.attrs[f"{field}_kind"])):
            positions[name] = (field, k)
    return positions


def _unpickle_names(raw) -> list[str]:
    """The list of column names stored (pickled, protocol 0) in a PyTables attribute."""
    import io
    import pickle

    import numpy as np

    class NoGlobals(pickle.Unpickler):
        def find_class(self, module: str, name: str):  # a list of strings needs no globals
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")

    if isinstance(raw, np.ndarray) and raw.size == 1:
        raw = raw.reshape(-1)[0]
    if isinstance(raw, (list, tuple, np.ndarray)):  # stored natively rather than pickled
        values = list(np.ravel(raw))
    else:
        data = raw.tobytes() if hasattr(raw, "tobytes") else bytes(raw)
        values = NoGlobals(io.BytesIO(data), encoding="latin1").load()
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _count_constituents(columns: dict[str, tuple[str, int]]) -> int:
    """How many constituents the file stores (200 in the reference files)."""
    n = 0
    while f"E_{n}" in columns:
        n += 1
    return n
