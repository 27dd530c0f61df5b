"""Loaders for the public datasets that the course's generated datasets stand in for.

Each module downloads its files once into :func:`cache_dir` (``$MLPP_PUBLIC`` or
``~/.cache/mlpp/public``), checks them against pinned checksums and returns plain numpy
arrays:

- :mod:`mlpp.public.toptagging`: Top Quark Tagging Reference Dataset (doi:10.5281/zenodo.2603256),
  generated equivalent ``mlpp.data.load("top")``.
- :mod:`mlpp.public.hls4ml_jets`: hls4ml LHC jets, high-level features (OpenML 42468,
  doi:10.5281/zenodo.3602260), generated equivalent ``mlpp.data.load("jets5")``.
- :mod:`mlpp.public.qg_jets`: EnergyFlow's Pythia quark-gluon jets (doi:10.5281/zenodo.3164691),
  generated equivalent ``mlpp.data.load("qg")``.

Without network a loader raises :class:`PublicDataUnavailable`; a file that does not
match its checksum raises :class:`PublicDataCorrupt`. Both messages are one line.

Example::

    from mlpp.public import toptagging
    jets = toptagging.load("test", n_jets=10_000)   # jets.constituents: (10000, 200, 4)
"""
from __future__ import annotations

from . import hls4ml_jets, qg_jets, toptagging
from ._fetch import PublicDataCorrupt, PublicDataUnavailable, cache_dir

__all__ = [
    "PublicDataCorrupt",
    "PublicDataUnavailable",
    "cache_dir",
    "hls4ml_jets",
    "qg_jets",
    "toptagging",
]
