"""The taggers the landscape page trains itself: those the lectures teach on other datasets.

Lecture 4 teaches a BDT on expert variables and the Energy Flow and Particle Flow Networks
(arXiv:1810.05165) on quark/gluon jets; the top-tagging landscape (arXiv:1902.09914) has EFN
and PFN rows, so the landscape page trains the same models on the `top` jets. The models are
the lecture's (energyflow's ``EFN``/``PFN`` with Φ = (100, 100, 256), F = (100, 100, 100)),
not written here again: this module only feeds them `top` jets and times them.

TensorFlow, tf-keras and energyflow are imported on first use, after the caller has set
its thread count (``settings.limit_threads``).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mlpp import representations as reps
from mlpp.data.dataset import JetDataset
from mlpp.evaluation import TaggerResult

# Lecture 4's expert variables (its BDT row): masses and shapes, the ratios among them Sudakov safe.
EXPERT_VARIABLES = ("mass", "tau21_b1", "tau32_b1", "n2_b1", "c1_b1")
SET_SIZES = {"Phi_sizes": (100, 100, 256), "F_sizes": (100, 100, 100)}


def expert_bdt(train: JetDataset, test: JetDataset, variables: Sequence[str] = EXPERT_VARIABLES,
               seed: int = 0) -> TaggerResult:
    """Lecture 4's gradient-boosted trees (200 trees of depth 3) on expert jet variables."""
    from sklearn.ensemble import GradientBoostingClassifier

    x_train, x_test = (np.stack([d.feature(v) for v in variables], axis=1) for d in (train, test))
    bdt = GradientBoostingClassifier(n_estimators=200, max_depth=3, random_state=seed)
    start = time.perf_counter()
    bdt.fit(x_train, train.labels)
    seconds = time.perf_counter() - start
    n_nodes = sum(tree.tree_.node_count for tree in bdt.estimators_.ravel())
    return TaggerResult(f"BDT on {len(variables)} expert variables", test.labels, bdt.predict_proba(x_test)[:, 1],
                        n_params=n_nodes, train_seconds=seconds)


def set_inputs(dataset: JetDataset, n_particles: int | None = None) -> np.ndarray:
    """(n_jets, n_particles, 3) = (z, y, φ) centred on the jet, the EFN paper's inputs; padding is zero.

    ``n_particles`` keeps the hardest ones (the particles are stored pT-ordered).
    """
    x = reps.center_and_normalize(reps.ptyphipids_from_dataset(dataset)[..., :3])
    return x if n_particles is None else x[:, :n_particles]


def _model_inputs(kind: str, x: np.ndarray):
    return [x[..., 0], x[..., 1:3]] if kind == "EFN" else x


def energy_flow_network(kind: str, train: JetDataset, val: JetDataset, test: JetDataset, epochs: int,
                        n_particles: int | None = None, batch_size: int = 128, seed: int = 0) -> TaggerResult:
    """Train energyflow's ``EFN`` or ``PFN`` (kind) with early stopping; score ``test``.

    The score is the network's top-quark probability. Training time is wall-clock seconds of
    ``fit`` (validation included), as in the lectures' tables.
    """
    if kind not in ("EFN", "PFN"):
        raise ValueError(f"kind must be 'EFN' or 'PFN', not {kind!r}")
    from mlpp.training import set_seeds

    import tf_keras
    from energyflow.archs import EFN, PFN

    set_seeds(seed, ["tensorflow"])
    arch, dim = (EFN, 2) if kind == "EFN" else (PFN, 3)
    model = arch(input_dim=dim, summary=False, **SET_SIZES)
    x_train, x_val, x_test = (set_inputs(d, n_particles) for d in (train, val, test))
    y_train, y_val = (tf_keras.utils.to_categorical(d.labels, 2) for d in (train, val))
    stop = tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    start = time.perf_counter()
    model.fit(_model_inputs(kind, x_train), y_train, epochs=epochs, batch_size=batch_size, verbose=0,
              validation_data=(_model_inputs(kind, x_val), y_val), callbacks=[stop])
    seconds = time.perf_counter() - start
    scores = model.predict(_model_inputs(kind, x_test), batch_size=1000, verbose=0)[:, 1]
    name = {"EFN": "Energy Flow Network", "PFN": "Particle Flow Network"}[kind]
    return TaggerResult(name, test.labels, scores, n_params=int(model.model.count_params()), train_seconds=seconds)
