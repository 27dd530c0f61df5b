"""The course's top-tagging landscape: every tagger of the lectures on the same `top` test jets.

Lectures that train a top tagger *record* its test scores; the landscape page *loads* them
and sets them beside the published table (Kasieczka et al., arXiv:1902.09914, Table 1, seed
000; ParticleNet from arXiv:1902.08570, seed 003). The scores are kept with a fingerprint of
the test jets, so a result computed on other jets (another tier, a changed split, a
regenerated dataset) is refused rather than compared::

    train, val, test = top.split()                             # mlpp.tasks.top: the shared split
    landscape.record(evaluation.TaggerResult("GRU", test.labels, scores, n_params, seconds),
                     test, lecture="03")                       # in a lecture
    results, missing = landscape.load(test, {"03": "lectures/03_particle_sequences.ipynb"})

Files: ``cache_dir()/scores/<fingerprint>/<tagger>.npz``, written atomically and
sha256-checked like the datasets.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mlpp import settings
from mlpp.data.cache import verify, write_npz
from mlpp.data.dataset import JetDataset
from mlpp.evaluation import TaggerResult
from mlpp.tasks import top

# The published top-tagging landscape on the reference dataset (1.2M training, 400k test
# jets: 200k QCD): AUC, accuracy, 1/eB at eS = 0.3 (single training), parameters.
PUBLISHED = [
    # name, AUC, accuracy, 1/eB @ 0.3, parameters, source
    ("LDA on images", 0.955, 0.892, 151, 184_000, "arXiv:1902.09914"),
    ("CNN", 0.981, 0.930, 914, 610_000, "arXiv:1902.09914"),
    ("ResNeXt", 0.984, 0.936, 1122, 1_460_000, "arXiv:1902.09914"),
    ("TopoDNN", 0.972, 0.916, 295, 59_000, "arXiv:1902.09914"),
    ("Energy Flow Polynomials", 0.980, 0.932, 384, 1_000, "arXiv:1902.09914"),
    ("Energy Flow Network", 0.979, 0.927, 633, 82_000, "arXiv:1902.09914"),
    ("Particle Flow Network", 0.982, 0.932, 891, 82_000, "arXiv:1902.09914"),
    ("LoLa", 0.980, 0.929, 722, 127_000, "arXiv:1902.09914"),
    ("LBN", 0.981, 0.931, 836, 705_000, "arXiv:1902.09914"),
    ("P-CNN", 0.980, 0.930, 732, 348_000, "arXiv:1902.09914"),
    ("TreeNiN", 0.982, 0.933, 1025, 34_000, "arXiv:1902.09914"),
    ("Multi-body N-subjettiness 8", 0.981, 0.929, 867, 58_000, "arXiv:1902.09914"),
    ("ParticleNet-Lite", 0.984, 0.937, 1262, 26_000, "arXiv:1902.08570"),
    ("ParticleNet", 0.986, 0.940, 1615, 366_000, "arXiv:1902.08570"),
]

# 1/eB at eS = 0.5, published only in the ParticleNet paper (arXiv:1902.08570, Table 2), for its own
# trainings of five taggers on the reference dataset (their 1/eB at 0.3 there: ResNeXt 1147, P-CNN 759,
# PFN 888, ParticleNet-Lite 1262, ParticleNet 1615); the landscape paper's table has no such column.
PUBLISHED_REJECTION_05 = {"ResNeXt": 302, "P-CNN": 201, "Particle Flow Network": 247, "ParticleNet-Lite": 325,
                          "ParticleNet": 397}
PUBLISHED_REJECTION_05_SOURCE = "arXiv:1902.08570"

# The published tagger closest to each of the course's (matched by the start of our name):
# the same representation and a similar network, not the same model.
COUNTERPARTS = [
    ("MLP on", "Multi-body N-subjettiness 8"),   # a dense network on substructure observables
    ("CNN on", "CNN"),                            # a CNN on preprocessed jet images
    ("1D CNN", "P-CNN"),                          # a 1D CNN along the pT-ordered particles
    ("Energy Flow Network", "Energy Flow Network"),
    ("Particle Flow Network", "Particle Flow Network"),
    ("ParticleNet-Lite", "ParticleNet-Lite"),
]


def scores_dir(test: JetDataset) -> Path:
    """Where the scores on ``test`` are kept: ``scores/<fingerprint>``, and for a run with another
    seed or training size (:func:`mlpp.settings.run_variant`) a subfolder of its own, so that a
    learning-curve run never replaces the lecture's own result."""
    folder = settings.cache_dir() / "scores" / top.fingerprint(test)
    variant = settings.run_variant()
    return folder if variant is None else folder / "variants" / variant


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def record(result: TaggerResult, test: JetDataset, lecture: str) -> Path:
    """Keep ``result``'s scores on ``test`` for the landscape page; returns the file written."""
    labels = np.asarray(result.labels)
    if labels.shape != test.labels.shape or not np.array_equal(labels, test.labels):
        raise ValueError(f"{result.name}: the result's labels are not those of the test jets given")
    path = scores_dir(test) / f"{_slug(result.name)}.npz"
    info = {"name": result.name, "lecture": str(lecture), "n_params": result.n_params,
            "train_seconds": result.train_seconds, "tier": test.meta.get("tier"),
            "kind": result.kind}  # a cut on one variable keeps its empty accuracy on the page
    write_npz(path, {"scores": np.asarray(result.scores, dtype=np.float64), "info": np.asarray(json.dumps(info))},
              meta={"tagger": result.name, "lecture": str(lecture)})
    return path


def load(test: JetDataset, lectures: dict[str, str] | None = None) -> tuple[list[TaggerResult], list[str]]:
    """The recorded results on ``test``, ordered by lecture, and what is missing.

    ``lectures`` maps the lectures expected to have recorded taggers (``"05"``) to their
    notebooks; each one without a file on these test jets gives a line in the second list
    that says which notebook to run, and in which tier.
    """
    folder = scores_dir(test)
    results = []
    for path in sorted(folder.glob("*.npz")) if folder.exists() else []:
        verify(path, f"re-run the lecture that wrote it, or delete {path}")
        with np.load(path) as stored:
            scores = stored["scores"]
            info = json.loads(str(stored["info"]))
        try:
            results.append(TaggerResult(info["name"], test.labels, scores, info["n_params"], info["train_seconds"],
                                        extra={"lecture": info["lecture"]}, kind=info.get("kind", "probability")))
        except ValueError as err:  # e.g. logits recorded before the scores had to be probabilities
            raise ValueError(f"{path}: {err}; re-run lecture {info['lecture']} to record it again") from None
    results.sort(key=lambda r: (r.extra["lecture"], r.name))
    found = {r.extra["lecture"] for r in results}
    tier = test.meta.get("tier", settings.tier())
    missing = [f"lecture {lecture}: no tagger recorded on these test jets; run {notebook} with MLPP_TIER={tier}"
               for lecture, notebook in (lectures or {}).items() if lecture not in found]
    return results, missing


def table(results: list[TaggerResult]):
    """The course's landscape table: one row per tagger, best AUC first, with its lecture."""
    from mlpp.evaluation import comparison_table

    for result in results:
        result.extra.setdefault("lecture", "")
    return comparison_table(results).sort_values("AUC", ascending=False, kind="stable")


def published_table():
    """The published rows (reference dataset) as a pandas DataFrame.

    ``1/eB @ eS=0.5`` is filled only where a paper gives it (:data:`PUBLISHED_REJECTION_05`), and
    ``source @ 0.5`` names that paper."""
    import pandas as pd

    table = pd.DataFrame(PUBLISHED, columns=["tagger", "AUC", "accuracy", "1/eB @ eS=0.3", "parameters",
                                             "source"]).set_index("tagger")
    table.insert(3, "1/eB @ eS=0.5", pd.Series(PUBLISHED_REJECTION_05, dtype="Int64"))
    table["source @ 0.5"] = [PUBLISHED_REJECTION_05_SOURCE if name in PUBLISHED_REJECTION_05 else ""
                             for name in table.index]
    return table


SIDE_BY_SIDE_COLUMNS = ["published counterpart", "AUC", "AUC published", "1/eB @ 0.3", "1/eB @ 0.3 published",
                        "ratio", "rank", "rank published", "1/eB @ 0.5", "1/eB @ 0.5 published", "rank @ 0.5",
                        "rank published @ 0.5"]


def side_by_side(table, published=None):
    """Each of our taggers that has a published counterpart, beside it (``table`` from :func:`table`).

    Columns: the counterpart, both AUCs and both rejections at eS = 0.3, their ratio, and the
    rank of the tagger by that rejection among these rows, ours and published; then the same at
    eS = 0.5, ranked among the rows whose counterpart has a published value there (``<NA>``
    elsewhere). Sorted by our rejection at 0.3, best first.
    """
    import pandas as pd

    published = published_table() if published is None else published
    rows = []
    for ours in table.index:
        match = next((theirs for prefix, theirs in COUNTERPARTS if ours.startswith(prefix)), None)
        if match is None:
            continue
        r_ours, r_theirs = table.loc[ours, "1/eB @ eS=0.3"], published.loc[match, "1/eB @ eS=0.3"]
        rows.append({"tagger": ours, "published counterpart": match,
                     "AUC": table.loc[ours, "AUC"], "AUC published": published.loc[match, "AUC"],
                     "1/eB @ 0.3": r_ours, "1/eB @ 0.3 published": r_theirs, "ratio": round(r_ours / r_theirs, 2),
                     "1/eB @ 0.5": table.loc[ours, "1/eB @ eS=0.5"],
                     "1/eB @ 0.5 published": published.loc[match, "1/eB @ eS=0.5"]})
    columns = ["tagger", *SIDE_BY_SIDE_COLUMNS[:6], "1/eB @ 0.5", "1/eB @ 0.5 published"]
    pairs = pd.DataFrame(rows, columns=columns).set_index("tagger")
    pairs["1/eB @ 0.5 published"] = pairs["1/eB @ 0.5 published"].astype("Int64")
    pairs = pairs.sort_values("1/eB @ 0.3", ascending=False, kind="stable")
    pairs["rank"] = pairs["1/eB @ 0.3"].rank(ascending=False, method="min").astype(int)
    pairs["rank published"] = pairs["1/eB @ 0.3 published"].rank(ascending=False, method="min").astype(int)
    known = pairs["1/eB @ 0.5 published"].notna()
    pairs["rank @ 0.5"] = pairs["1/eB @ 0.5"].where(known).rank(ascending=False, method="min").astype("Int64")
    pairs["rank published @ 0.5"] = (pairs["1/eB @ 0.5 published"].where(known).astype(float)
                                     .rank(ascending=False, method="min").astype("Int64"))
    return pairs[SIDE_BY_SIDE_COLUMNS]
