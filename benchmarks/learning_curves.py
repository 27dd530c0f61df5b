#!/usr/bin/env python
"""Learning curves of the top taggers: re-run lectures with fewer training jets and other seeds.

For every (lecture, training jets, seed) not yet measured, this executes the lecture notebook
(``jupyter nbconvert --execute``, into a scratch folder) with ``MLPP_TIER``,
``MLPP_TRAIN_JETS`` and ``MLPP_SEED`` set. The lecture trains its taggers on that many of the
course's training jets (a nested random subset, :func:`mlpp.tasks.top.split`) and records their
test scores in a variant folder of the landscape's score store; this script computes AUC and
1/εB at εS = 0.3 and 0.5 from them and adds one row per tagger to
``benchmarks/results/learning_curves-<tier>.json`` (written atomically after every run, with
the test jets' fingerprint). The point with every training jet and seed 0 is the lecture's own
run: it is taken from the scores the lecture recorded (``make book``) if there are any, and
otherwise the lecture runs as itself, so that one training serves this file and the landscape
page. An interrupted run loses at most the notebook in progress:
run the same command again and it goes on. The landscape page loads the file.

    python benchmarks/learning_curves.py --tier full                      # the default grid
    python benchmarks/learning_curves.py --tier full --lectures 02 --sizes 10000 30000 --seeds 0 1 2
    python benchmarks/learning_curves.py --tier full --list               # what is measured, what is missing

Cost (2 cores, full tier): Lecture 02 (MLP, mass + tau32, CNN) takes about 12 min at 100 000
training jets, Lecture 05 (ParticleNet-Lite, deep set) about 19 min; the default grid of three
sizes and three seeds is a few hours. Commit the results file when it is done.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 0  # every lecture's `settings.seed(0)`: its own run is the point (all training jets, seed 0)
LECTURES = {"02": "lectures/02_jet_images.ipynb", "03": "lectures/03_particle_sequences.ipynb",
            "05": "lectures/05_graphs_particlenet.ipynb", "06": "lectures/06_attention_lorentz.ipynb"}


def _test_jets(tier: str):
    from mlpp.tasks import top

    # each run sets its own size and seed: none from the caller's shell may reach the test split or folders
    os.environ.pop("MLPP_TRAIN_JETS", None)
    os.environ.pop("MLPP_SEED", None)
    return top.split(tier=tier)[2]


def _rows_from_scores(folder: Path, lecture: str, n_train: int, seed: int, test, seconds: float) -> list[dict]:
    from mlpp.data.cache import verify
    from mlpp.metrics import auc, rejection_at

    rows = []
    labels = test.labels.astype(int)
    n_bkg = int(np.sum(labels == 0))
    for path in sorted(folder.glob("*.npz")):
        verify(path, f"delete {path} and run again")
        with np.load(path) as stored:
            scores, info = stored["scores"], json.loads(str(stored["info"]))
        if info["lecture"] != lecture:
            continue
        r03, r05 = rejection_at(labels, scores, 0.3), rejection_at(labels, scores, 0.5)
        rows.append({"tagger": info["name"], "lecture": lecture, "n_train": n_train, "seed": seed,
                     "auc": auc(labels, scores), "rejection_03": r03, "rejection_05": r05,
                     "bkg_jets_03": int(round(n_bkg / r03)) if np.isfinite(r03) else 0,
                     "bkg_jets_05": int(round(n_bkg / r05)) if np.isfinite(r05) else 0,
                     "train_seconds": info.get("train_seconds"), "notebook_seconds": round(seconds, 1) if np.isfinite(seconds) else None})
    return rows


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def is_lecture_run(n_train: int, seed: int, full_train: int) -> bool:
    """True for the point that is the lecture's own run: every training jet and its default seed."""
    return n_train == full_train and seed == DEFAULT_SEED


def run_point(lecture: str, n_train: int, seed: int, tier: str, timeout: int, *, main_run: bool = False) -> float:
    """Execute one lecture with that training size and seed; returns its wall seconds.

    With ``main_run`` the lecture runs as itself (no ``MLPP_TRAIN_JETS``/``MLPP_SEED``): its
    scores are then the landscape's own, and one training serves both pages."""
    env = dict(os.environ, MLPP_TIER=tier)
    env.pop("MLPP_TRAIN_JETS", None), env.pop("MLPP_SEED", None)
    if not main_run:
        env.update(MLPP_TRAIN_JETS=str(n_train), MLPP_SEED=str(seed))
    jupyter = Path(sys.executable).with_name("jupyter")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlpp-curves-") as scratch:
        result = subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute",
                                 f"--ExecutePreprocessor.timeout={timeout}", "--output-dir", scratch,
                                 str(REPO / LECTURES[lecture])], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"lecture {lecture} failed with {n_train} training jets, seed {seed}:\n"
                           + result.stderr[-3000:])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--tier", default="full", help="data tier (default: full)")
    parser.add_argument("--lectures", nargs="+", default=["02", "05"], choices=sorted(LECTURES),
                        help="lectures to re-run (default: 02 05)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 30_000, 100_000],
                        help="training jets (default: 10000 30000 100000)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per notebook cell (default: 3600)")
    parser.add_argument("--output", type=Path, default=None, help="results file (default: the tier's committed one)")
    parser.add_argument("--list", action="store_true", help="only say what is measured and what is missing")
    args = parser.parse_args(argv)

    from mlpp import landscape, learning_curves, settings
    from mlpp.tasks import top

    tier = settings.tier(args.tier)
    path = args.output or learning_curves.results_path(tier)
    test = _test_jets(tier)
    fingerprint = top.fingerprint(test)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("fingerprint") not in (None, fingerprint):
        print(f"{path} holds results on other test jets ({stored['fingerprint']}); starting afresh for {fingerprint}")
        stored = {}
    payload = {"tier": tier, "fingerprint": fingerprint, "test_jets": len(test),
               "qcd_test_jets": int(np.sum(test.labels == 0)), "points": stored.get("points", [])}
    done = {(r["lecture"], r["n_train"], r["seed"]) for r in payload["points"]}
    todo = [(lec, n, s) for lec in args.lectures for n in args.sizes for s in args.seeds if (lec, n, s) not in done]
    print(f"{tier} tier, test jets {fingerprint}: {len(done)} runs measured, {len(todo)} to go")
    if args.list:
        for lec, n, s in todo:
            print(f"  missing: lecture {lec}, {n} training jets, seed {s}")
        return 0
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(items, **_):
            return items
    full_train = len(top.split(tier=tier)[0])
    main_folder = landscape.scores_dir(test)
    for lecture, n_train, seed in tqdm(todo, desc="lecture runs", unit="run"):
        main_run = is_lecture_run(n_train, seed, full_train)
        if main_run and _rows_from_scores(main_folder, lecture, n_train, seed, test, float("nan")):
            # the lecture's own full-tier run (make book, notebook_budget.py) is this point: no second training
            seconds, folder = float("nan"), main_folder
            print(f"lecture {lecture}, {n_train} jets, seed {seed}: taken from the lecture's own recorded run")
        else:
            seconds = run_point(lecture, n_train, seed, tier, args.timeout, main_run=main_run)
            if main_run:
                folder = main_folder
            else:
                os.environ.update(MLPP_TRAIN_JETS=str(n_train), MLPP_SEED=str(seed))
                try:
                    folder = landscape.scores_dir(test)
                finally:
                    os.environ.pop("MLPP_TRAIN_JETS")
                    os.environ.pop("MLPP_SEED")
        rows = _rows_from_scores(folder, lecture, n_train, seed, test, seconds)
        if not rows:
            raise RuntimeError(f"lecture {lecture} recorded no tagger in {folder}")
        payload["points"] += rows
        _write(path, payload)
        took = f"in {seconds / 60:.1f} min" if np.isfinite(seconds) else "(the lecture's own run)"
        print(f"lecture {lecture}, {n_train} jets, seed {seed}: {len(rows)} taggers {took}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
