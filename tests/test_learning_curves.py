"""benchmarks/learning_curves.py runs a lecture per (training jets, seed), keeps every finished
run when one fails, resumes where it stopped, and mlpp.learning_curves refuses other test jets."""
from __future__ import annotations

import json
import os

import nbformat
import numpy as np
import pytest


# A stand-in lecture: the mass, with a seed-dependent smearing, as the "tagger" (the real
# lectures take minutes). It uses the same thread, seed and recording as the lectures do.
LECTURE = """
import os
import numpy as np
from mlpp import evaluation, landscape, settings
from mlpp.tasks import top

SEED = settings.seed(0)
train, val, test = top.split()
if SEED == int(os.environ.get("FAIL_ON_SEED", "-1")):
    raise RuntimeError("a crash in the middle of the grid")
rng = np.random.default_rng(SEED + len(train))
mass = test.jet[:, 3] + rng.normal(0, 30, len(test))
scores = 1 / (1 + np.exp(-(mass - 120) / 20))
landscape.record(evaluation.TaggerResult("smeared mass", test.labels, scores, 1, float(len(train))), test, "02")
"""


@pytest.fixture()
def script(tmp_path, monkeypatch, top, benchmark_script):
    """The benchmark module with its lecture replaced by the stand-in, and a private score store."""
    from mlpp import settings

    cache = tmp_path / "cache"
    cache.mkdir()
    real = settings.cache_dir()
    for name in ("top-fast.h5", "top_qcd-fast.h5", "manifest.json"):
        os.symlink(real / name, cache / name)
    monkeypatch.setenv("MLPP_DATA", str(cache))
    notebook = tmp_path / "stand_in.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LECTURE)]), notebook)
    module = benchmark_script("learning_curves")
    monkeypatch.setattr(module, "LECTURES", {"02": str(notebook)})
    return module


@pytest.mark.slow
def test_a_grid_is_measured_kept_through_a_crash_and_resumed(script, tmp_path, monkeypatch, capsys):
    from mlpp import learning_curves
    from mlpp.tasks import top

    out = tmp_path / "curves.json"
    grid = ["--tier", "fast", "--lectures", "02", "--sizes", "300", "1000", "--seeds", "0", "1", "--output", str(out)]
    monkeypatch.setenv("FAIL_ON_SEED", "1")
    with pytest.raises(RuntimeError, match="seed 1"):
        script.main(grid)
    kept = json.loads(out.read_text())
    assert [(p["n_train"], p["seed"]) for p in kept["points"]] == [(300, 0)]  # the run before the crash

    monkeypatch.delenv("FAIL_ON_SEED")
    assert script.main(grid) == 0
    stored = json.loads(out.read_text())
    assert sorted((p["n_train"], p["seed"]) for p in stored["points"]) == [(300, 0), (300, 1), (1000, 0), (1000, 1)]
    assert stored["points"][0] == kept["points"][0]  # not measured again
    for point in stored["points"]:
        assert point["train_seconds"] == point["n_train"]  # each run saw its own training size
        assert 0.5 < point["auc"] < 1 and point["rejection_05"] > 1
    assert "0 to go" not in capsys.readouterr().out
    assert script.main(grid + ["--list"]) == 0
    assert "4 runs measured, 0 to go" in capsys.readouterr().out

    fingerprint = top.fingerprint(top.split(tier="fast")[2])
    curves, line = learning_curves.load(fingerprint, "fast", path=out)
    assert curves is not None and "4 points" in line
    sizes, mean, std, count = curves.summary("smeared mass", "auc")
    assert sizes.tolist() == [300, 1000] and count.tolist() == [2, 2] and np.all(std > 0)
    assert learning_curves.load("0" * 16, "fast", path=out)[0] is None
    assert "other test jets" in learning_curves.load("0" * 16, "fast", path=out)[1]
    assert "no learning curves" in learning_curves.load(fingerprint, "fast", path=tmp_path / "none.json")[1]


@pytest.mark.slow
def test_the_point_with_every_jet_and_seed_0_is_the_lectures_own_run(script, tmp_path, monkeypatch):
    from mlpp.tasks import top

    full = len(top.split(tier="fast")[0])
    out = tmp_path / "curves.json"
    grid = ["--tier", "fast", "--lectures", "02", "--sizes", str(full), "--seeds", "0", "--output", str(out)]
    calls = []
    real_run = script.run_point

    def run_point(*args, **kwargs):
        calls.append(kwargs.get("main_run"))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(script, "run_point", run_point)
    monkeypatch.setenv("MLPP_SEED", "7")  # a stray seed in the caller's shell must not leak into the lecture's own run
    assert script.main(grid) == 0
    assert calls == [True]  # no recorded run yet: the lecture ran as itself
    first = json.loads(out.read_text())["points"]
    assert [(p["n_train"], p["seed"], p["train_seconds"]) for p in first] == [(full, 0, full)]
    assert first[0]["notebook_seconds"] > 0

    out.unlink()
    assert script.main(grid) == 0
    assert calls == [True]  # recorded by the lecture's own run: taken, not trained again
    again = json.loads(out.read_text())["points"]
    assert again[0]["notebook_seconds"] is None and again[0]["auc"] == first[0]["auc"]


def _curves(rows):
    from mlpp.learning_curves import Curves

    return Curves("full", "f" * 16, rows)


def _row(tagger, n, seed, r05):
    return {"tagger": tagger, "lecture": "02", "n_train": n, "seed": seed, "auc": 0.98, "rejection_03": 2 * r05,
            "rejection_05": r05}


def test_growth_and_crossing_of_two_power_laws():
    from mlpp.learning_curves import crossing, find_tagger, growth

    # rejection = c N^b: the particle network (b = 0.6) catches the MLP (b = 0.1) where
    # 0.5 N^0.6 = 100 N^0.1, i.e. N = 200^2 = 40 000, beyond the largest measured set (10 000)
    rows = []
    for n in (1_000, 3_000, 10_000):
        for seed in (0, 1):
            rows.append(_row("ParticleNet-Lite, 40 particles", n, seed, 0.5 * n**0.6 * (1 + 0.01 * seed)))
            rows.append(_row("MLP on 27 features", n, seed, 100 * n**0.1 * (1 + 0.01 * seed)))
    curves = _curves(rows)
    particle, expert = find_tagger(curves, "ParticleNet-Lite"), find_tagger(curves, "MLP on 27")
    assert (particle, expert) == ("ParticleNet-Lite, 40 particles", "MLP on 27 features")
    assert growth(curves, particle) == pytest.approx(10**0.6, rel=1e-6)
    assert crossing(curves, particle, expert) == pytest.approx(40_000, rel=0.02)
    assert crossing(curves, expert, particle) is None                      # the slower one never catches up
    flat = _curves([_row("a", n, 0, 10.0) for n in (1_000, 10_000)] + [_row("b", n, 0, 5.0) for n in (1_000, 10_000)])
    assert crossing(flat, "b", "a") is None                                # parallel lines
    assert find_tagger(curves, "CNN") is None


def test_spread_over_seeds_at_one_training_size():
    rows = [_row("a", 1_000, s, 10.0 + s) for s in (0, 1, 2)] + [_row("b", 1_000, 0, 50.0), _row("a", 3_000, 0, 99.0)]
    spread = _curves(rows).at(1_000)
    assert list(spread.index) == ["b", "a"]  # best rejection at 0.3 first
    assert spread.loc["a", "seeds"] == 3 and spread.loc["b", "seeds"] == 1
    assert spread.loc["a", "1/eB @ eS=0.5 mean"] == pytest.approx(11.0)
    assert spread.loc["a", "1/eB @ eS=0.5 sd"] == pytest.approx(1.0)   # sample sd of 10, 11, 12
    assert spread.loc["a", "1/eB @ eS=0.3 mean"] == pytest.approx(22.0)
    assert np.isnan(spread.loc["b", "AUC sd"])                          # one seed: no spread
    assert _curves(rows).at(5_000).empty
