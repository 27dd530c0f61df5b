"""The hls4ml LHC jet dataset, high-level features (OpenML dataset 42468).

Duarte et al., arXiv:1804.06913; particle-level data doi:10.5281/zenodo.3602260; the
high-level-feature table is OpenML dataset 42468, ``hls4ml_lhc_jets_hlf``: 830,000 jets
of about 1 TeV, 16 substructure features and a class in {g, q, t, w, z}. OpenML serves
it as an ARFF text file, which :func:`read` parses itself (no scikit-learn, no network
beyond the one file).

Checksum: OpenML publishes the file's id and ``md5_checksum`` in the description JSON at
:data:`DESCRIPTION_URL`. They were not in the public code and documentation this module
was written from, so :data:`ARFF_URL` and :data:`ARFF_MD5` are still empty and
:func:`load` refuses to download unless called with ``verify=False``; then it checks the
ARFF against the md5 that the description JSON gives. Pin both constants (copy ``url``
and ``md5_checksum`` from the JSON) to make the default path verified.

The generated equivalent the course ships is ``mlpp.data.load("jets5")``.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._fetch import PublicDataset, fetch

if TYPE_CHECKING:
    import numpy as np

DATASET = PublicDataset(
    name="hls4ml LHC jet dataset (high-level features, OpenML 42468)",
    doi="10.5281/zenodo.3602260",
    generated='mlpp.data.load("jets5")',
)
OPENML_ID = 42468
DESCRIPTION_URL = f"https://api.openml.org/api/v1/json/data/{OPENML_ID}"
DESCRIPTION_FNAME = f"openml_{OPENML_ID}.json"
ARFF_FNAME = "hls4ml_lhc_jets_hlf.arff"
# Not pinned yet (see the module docstring): the ARFF's download URL
# (https://api.openml.org/data/v1/download/<file_id>/hls4ml_lhc_jets_hlf.arff) and its md5.
ARFF_URL: str | None = None
ARFF_MD5: str | None = None
NUMERIC_TYPES = ("numeric", "real", "integer")
_ATTRIBUTE = re.compile(r"@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Hls4mlJets:
    """The high-level-feature jets as plain arrays.

    features: ``(n_jets, 16)`` float32, in the order of ``feature_names``; ``mass_mmdt``
        in GeV, ``multiplicity`` a count, the other substructure ratios dimensionless.
    labels: ``(n_jets,)`` int64, indices into ``classes``.
    classes: the class names sorted alphabetically, ``("g", "q", "t", "w", "z")``: the
        order of scikit-learn's LabelEncoder in the hls4ml tutorial.
    """

    features: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def n_jets(self) -> int:
        """Number of jets."""
        return len(self.labels)


def path(verify: bool = True) -> Path:
    """Local path of the ARFF file, downloaded if missing.

    With the checksum unpinned, ``verify=True`` refuses (one-line
    :class:`~mlpp.public.PublicDataUnavailable`); ``verify=False`` takes the URL and md5
    from OpenML's description JSON.
    """
    if ARFF_URL and ARFF_MD5:
        return fetch(ARFF_URL, ARFF_FNAME, f"md5:{ARFF_MD5}", DATASET)
    if verify:
        raise DATASET.unavailable(
            f"mlpp pins no md5 for {ARFF_FNAME} and will not download it unverified",
            advice=f"pass verify=False to check it against the md5 that {DESCRIPTION_URL} publishes",
        )
    description = _description()
    md5 = description.get("md5_checksum")
    return fetch(description["url"], ARFF_FNAME, f"md5:{md5}" if md5 else None, DATASET, verify=False)


def load(n_jets: int | None = None, *, verify: bool = True) -> Hls4mlJets:
    """The first ``n_jets`` jets (all 830,000 if None); ``verify`` as in :func:`path`."""
    return read(path(verify=verify), n_jets=n_jets)


def read(file: str | Path, n_jets: int | None = None) -> Hls4mlJets:
    """Parse a dense ARFF file with numeric features and one nominal class attribute.

    A small parser for this dataset's layout: values must not contain commas, and
    missing values (``?``) are not supported.
    """
    import numpy as np

    names: list[str] = []
    nominal: dict[str, list[str]] = {}
    with open(file, encoding="utf-8") as handle:
        while True:
            line = handle.readline()
            if not line:
                raise ValueError(f"{file} has no @data section")
            text = line.strip()
            if not text or text.startswith("%") or text.lower().startswith("@relation"):
                continue
            if text.lower().startswith("@data"):
                break
            match = _ATTRIBUTE.match(text)
            if match is None:
                raise ValueError(f"{file}: cannot parse header line {text[:60]!r}")
            name, kind = match.group(1).strip("'\""), match.group(2).strip()
            if kind.startswith("{"):
                nominal[name] = [v.strip().strip("'\"") for v in kind.strip("{}").split(",")]
            elif kind.lower() not in NUMERIC_TYPES:
                raise ValueError(f"{file}: attribute {name!r} has unsupported type {kind!r}")
            names.append(name)
        if len(nominal) != 1:
            raise ValueError(f"{file}: expected one nominal class attribute, found {sorted(nominal)}")
        label = next(iter(nominal))
        classes = tuple(sorted(nominal[label]))
        index = {name: float(i) for i, name in enumerate(classes)}
        label_col = names.index(label)

        def class_index(value: str | bytes) -> float:
            text = value.decode() if isinstance(value, bytes) else value  # numpy < 2 passes bytes
            try:
                return index[text.strip().strip("'\"")]
            except KeyError:
                raise ValueError(f"{file}: class {text!r} is not among {classes}") from None

        rows = np.empty((0, len(names)))
        if n_jets is None or n_jets > 0:
            with warnings.catch_warnings():
                # Blank and comment lines do not count towards max_rows, which is what is wanted.
                warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
                warnings.filterwarnings("ignore", message="Input line .* contained no data")
                rows = np.loadtxt(handle, delimiter=",", comments="%", ndmin=2, dtype=np.float64,
                                  converters={label_col: class_index},
                                  max_rows=None if n_jets is None else int(n_jets))
        if rows.size == 0:
            rows = np.empty((0, len(names)))
    feature_cols = [i for i in range(len(names)) if i != label_col]
    return Hls4mlJets(
        features=rows[:, feature_cols].astype(np.float32),
        labels=rows[:, label_col].astype(np.int64),
        feature_names=tuple(names[i] for i in feature_cols),
        classes=classes,
    )


def _description() -> dict:
    """OpenML's description of the dataset (cached; metadata, so no checksum)."""
    import json

    file = fetch(DESCRIPTION_URL, DESCRIPTION_FNAME, None, DATASET, verify=False)
    try:
        return json.loads(Path(file).read_text())["data_set_description"]
    except (ValueError, KeyError):
        raise DATASET.unavailable(f"{file} is not an OpenML dataset description",
                                  advice=f"delete {file} and retry") from None
