"""The teacher of Lecture 10 and its exercise, and the small training loop both use.

Lecture 10 distils a large network into small ones on the ``jets5`` jets. What it teaches (the
softened softmax, the distillation loss, the students) is written in the notebook; what the
lecture and its exercise share lives here:

* :func:`teacher_inputs`: per split, the 30 hardest particles of each jet with Lecture 3's seven
  features (:mod:`mlpp.sequences`, standardised with the training jets' particles), their mask,
  and the 16 standardised features of :mod:`mlpp.tasks.jets5`;
* :func:`make_teacher`: a Deep Set (arXiv:1703.06114, Lecture 4) on the particles whose pooled
  sum is joined by the 16 features before the last network, so that it knows at least what a
  student on the features knows;
* :func:`fit`: Adam on a loss of batch indices, keeping the weights of the epoch with the lowest
  validation loss (early stopping);
* :func:`out_of_fold_logits`: the teacher's logits on its own training jets, each from a teacher
  that did not see that jet, so that what a teacher memorised does not reach the students;
* :func:`keras_student`: a torch student as Lecture 11's Keras tagger, for the hls4ml chain.

>>> from mlpp import distillation
>>> inputs, arrays = distillation.teacher_inputs()           # {"train": {...}, "val": ..., "test": ...}
>>> teacher, epochs = distillation.train_teacher(inputs, epochs=30)
>>> z = distillation.teacher_logits(teacher, inputs["test"])  # (n_test, 5)
>>> z_train = distillation.out_of_fold_logits(inputs, folds=2, epochs=30)  # (n_train, 5)

torch is imported inside the functions, after the caller has set its threads
(:func:`mlpp.settings.limit_threads`). Nothing here changes its inputs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mlpp import sequences
from mlpp.tasks import jets5
from mlpp.training import set_seeds

if TYPE_CHECKING:
    import torch

#: Particles per jet that the teacher sees (the hardest, in decreasing pT).
N_PARTICLES = 30
#: Widths of the teacher's per-particle network Φ and of the network F after the sum.
PHI_SIZES: tuple[int, ...] = (64, 64, 128)
F_SIZES: tuple[int, ...] = (128, 64)


def teacher_inputs(jets=None, tier: str | None = None, n_particles: int = N_PARTICLES):
    """The teacher's and the students' inputs for the ``jets5`` split.

    Returns ``(inputs, arrays)``: ``inputs[part]`` for ``part`` in train, val, test is a dict of
    tensors ``particles`` (n, n_particles, 7) float32, ``mask`` (n, n_particles) float32 (1 for real
    particles), ``features`` (n, 16) float32 and ``labels`` (n,) int64; ``arrays`` is
    :func:`mlpp.tasks.jets5.arrays` of the same jets (the same standardised features as numpy).
    """
    import torch

    jets = jets5.load(tier) if jets is None else jets
    arrays = jets5.arrays(jets)
    sets = [sequences.sequences_from_dataset(part, n_particles) for part in jets5.split(jets)]
    scaler = sequences.fit_scaler(*sets[0])  # training jets' particles only
    inputs = {}
    for name, (x, mask), feats, labels in zip(("train", "val", "test"), sets,
                                              (arrays.x_train, arrays.x_val, arrays.x_test),
                                              (arrays.y_train, arrays.y_val, arrays.y_test)):
        inputs[name] = {"particles": torch.tensor(sequences.scale_particles(x, mask, scaler)),
                        "mask": torch.tensor(mask, dtype=torch.float32),
                        "features": torch.tensor(feats, dtype=torch.float32),
                        "labels": torch.tensor(np.asarray(labels), dtype=torch.long)}
    return inputs, arrays


def mlp(sizes: tuple[int, ...]):
    """``torch.nn.Sequential`` of Linear layers of the given widths with ReLU between them (none after the last)."""
    from torch import nn

    layers: list = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def make_teacher(n_particle_features: int = 7, n_features: int = 16, n_classes: int = 5,
                 n_particles: int = N_PARTICLES):
    """A Deep Set on the particles with the jet's features joined after the sum.

    ``model(particles, mask, features)``: (batch, n, 7), (batch, n), (batch, 16) -> (batch, n_classes)
    logits. Invariant under permutations of the particles; padded particles do not contribute.
    """
    import torch
    from torch import nn

    class Teacher(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.phi = nn.Sequential(mlp((n_particle_features, *PHI_SIZES)), nn.ReLU())
            self.f = mlp((PHI_SIZES[-1] + n_features, *F_SIZES, n_classes))

        def forward(self, particles, mask, features):
            per_particle = self.phi(particles) * mask.unsqueeze(-1)  # (batch, n, 128); padding -> 0
            pooled = per_particle.sum(dim=1) / n_particles  # (batch, 128): a sum, scaled to order one
            return self.f(torch.cat([pooled, features], dim=1))

    return Teacher()


def fit(model, batch_loss: Callable, n_train: int, val_loss: Callable, epochs: int, seed: int = 0,
        batch_size: int = 256, lr: float = 3e-3, patience: int = 10):
    """Train ``model`` with Adam on ``batch_loss(model, indices)`` over shuffled batches of ``range(n_train)``.

    After each epoch ``val_loss(model)`` is computed without gradients; the weights of the epoch with
    the lowest value are restored at the end, and training stops ``patience`` epochs after it.
    Returns ``(model, best_epoch)`` (1-based).
    """
    import torch

    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    set_seeds(seed, frameworks=["torch"])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, best_epoch = np.inf, None, 0
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(n_train).split(batch_size):
            optimiser.zero_grad()
            batch_loss(model, idx).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            loss = float(val_loss(model))
        if best_state is None or loss < best:
            best, best_epoch = loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return model, best_epoch + 1


def teacher_logits(model, part: dict) -> "torch.Tensor":
    """The teacher's logits (n, classes) for one part of :func:`teacher_inputs`, without gradients."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(part["particles"], part["mask"], part["features"])


def train_teacher(inputs: dict, epochs: int, seed: int = 0, **fit_options):
    """:func:`make_teacher` trained with the cross-entropy on ``inputs["train"]``, early-stopped on ``inputs["val"]``.

    Returns ``(model, best_epoch)``.
    """
    import torch.nn.functional as F

    tr, va = inputs["train"], inputs["val"]
    set_seeds(seed, frameworks=["torch"])
    model = make_teacher(n_particle_features=tr["particles"].shape[-1], n_features=tr["features"].shape[-1],
                         n_particles=tr["particles"].shape[1])
    return fit(model,
               lambda m, i: F.cross_entropy(m(tr["particles"][i], tr["mask"][i], tr["features"][i]), tr["labels"][i]),
               len(tr["labels"]),
               lambda m: F.cross_entropy(teacher_logits(m, va), va["labels"]),
               epochs, seed=seed, **fit_options)



def fold_of(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """(n,) int: a seeded assignment of ``n`` rows to ``folds`` folds of (almost) equal size."""
    if folds < 2:
        raise ValueError(f"folds must be at least 2, not {folds}")
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def out_of_fold_logits(inputs: dict, folds: int, epochs: int, seed: int = 0, **fit_options) -> "torch.Tensor":
    """The teacher's logits (n_train, classes) on the training jets, each from a teacher that did not see it.

    The training jets are split into ``folds`` folds (:func:`fold_of`); for each fold a teacher is
    trained on the other folds (early stopping on ``inputs["val"]``) and predicts the fold. A
    teacher's logits on its own training jets are more confident than on new jets, and a student
    that learned them would learn that over-confidence.
    """
    import torch

    train = inputs["train"]
    n = len(train["labels"])
    fold = fold_of(n, folds, seed)
    out = None
    for k in range(folds):
        rest, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        part = {name: {key: value[rest] for key, value in train.items()} if name == "train" else value
                for name, value in inputs.items()}
        model, _ = train_teacher(part, epochs, seed=seed + k, **fit_options)
        logits = teacher_logits(model, {key: value[held] for key, value in train.items()})
        if out is None:
            out = torch.empty((n, logits.shape[1]), dtype=logits.dtype)
        out[held] = logits
    return out


def keras_student(model):
    """The torch MLP ``model`` (Linear layers with ReLU between them, :func:`mlp`) as Lecture 11's Keras tagger.

    Same widths and weights, in :func:`mlpp.hls.models.build_mlp` (its ``output`` layer adds a softmax,
    which does not change the predicted class), so that the hls4ml chain of :mod:`mlpp.hls` applies.
    """
    from torch import nn

    from mlpp.hls.models import build_mlp

    linear = [layer for layer in model.modules() if isinstance(layer, nn.Linear)]
    keras_model = build_mlp(hidden=tuple(layer.out_features for layer in linear[:-1]), n_inputs=linear[0].in_features,
                            n_classes=linear[-1].out_features, name="student")
    weights = []
    for layer in linear:
        weights += [layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()]
    keras_model.set_weights(weights)
    return keras_model
