"""mlpp.distillation: the teacher's inputs, its symmetries, and the training loop's early stopping."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlpp import distillation  # noqa: E402
from mlpp.tasks import jets5 as jets5_thread  # noqa: E402


@pytest.fixture(scope="module")
def inputs(jets5):
    return distillation.teacher_inputs(jets5)


def test_inputs_follow_the_jets5_split(inputs, jets5):
    parts, arrays = inputs
    train, val, test = jets5_thread.split(jets5)
    for name, part in zip(("train", "val", "test"), (train, val, test)):
        p = parts[name]
        n = len(part.labels)
        assert p["particles"].shape == (n, distillation.N_PARTICLES, 7)
        assert p["mask"].shape == (n, distillation.N_PARTICLES) and p["features"].shape == (n, 16)
        assert np.array_equal(p["labels"].numpy(), part.labels)
        # padding is zero, and jets keep their real particles up to N_PARTICLES
        padded = p["mask"] == 0
        assert float(p["particles"][padded].abs().max()) == 0.0
        counts = np.minimum(np.asarray(part.constituents["mask"]).sum(axis=1), distillation.N_PARTICLES)
        assert np.array_equal(p["mask"].sum(dim=1).numpy().astype(int), counts)
    assert np.allclose(parts["test"]["features"].numpy(), arrays.x_test)
    # standardised with the training jets' particles: mean ~0 and spread ~1 over real training particles
    real = parts["train"]["particles"][parts["train"]["mask"] == 1].numpy()
    assert np.allclose(real.mean(axis=0), 0, atol=1e-3) and np.allclose(real.std(axis=0), 1, atol=1e-2)


def test_teacher_ignores_order_and_padding():
    torch.manual_seed(0)
    model = distillation.make_teacher(n_particles=10)
    x = torch.randn(4, 10, 7)
    mask = torch.ones(4, 10)
    mask[:, 6:] = 0
    x = x * mask.unsqueeze(-1)
    feats = torch.randn(4, 16)
    out = model(x, mask, feats)
    assert out.shape == (4, 5)
    perm = torch.cat([torch.randperm(6), torch.arange(6, 10)])
    assert torch.allclose(model(x[:, perm], mask[:, perm], feats), out, atol=1e-6)
    garbage = x.clone()
    garbage[:, 6:] = 100.0  # what sits in padded slots must not matter
    assert torch.allclose(model(garbage, mask, feats), out, atol=1e-6)
    assert not torch.allclose(model(x, mask, feats + 1.0), out), "the features must reach the output"


def test_fit_restores_the_best_epoch_and_stops_early():
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = (x[:, 0] > 0).long()
    model = distillation.mlp((3, 8, 2))
    val_losses = []
    calls = {"n": 0}

    def val_loss(m):
        # a validation loss that is best at the third epoch and worse after it
        calls["n"] += 1
        value = [3.0, 2.0, 1.0, 5.0, 6.0, 7.0, 8.0, 9.0][calls["n"] - 1]
        val_losses.append((value, {k: v.clone() for k, v in m.state_dict().items()}))
        return torch.tensor(value)

    loss = torch.nn.functional.cross_entropy
    model, best = distillation.fit(model, lambda m, i: loss(m(x[i]), y[i]), 256, val_loss, epochs=8, seed=0,
                                   batch_size=64, patience=2)
    assert best == 3
    assert calls["n"] == 5, "stops `patience` epochs after the best one"
    for k, v in model.state_dict().items():
        assert torch.equal(v, val_losses[2][1][k]), "the best epoch's weights are restored"
    with pytest.raises(ValueError, match="epochs"):
        distillation.fit(model, lambda m, i: loss(m(x[i]), y[i]), 256, val_loss, epochs=0)


def test_mlp_layers():
    m = distillation.mlp((16, 8, 5))
    assert [type(layer).__name__ for layer in m] == ["Linear", "ReLU", "Linear"]
    assert sum(p.numel() for p in m.parameters()) == 16 * 8 + 8 + 8 * 5 + 5


def test_folds_are_balanced_and_seeded():
    fold = distillation.fold_of(101, 3, seed=5)
    assert sorted(np.bincount(fold)) == [33, 34, 34]
    assert np.array_equal(fold, distillation.fold_of(101, 3, seed=5))
    assert not np.array_equal(fold, distillation.fold_of(101, 3, seed=6))
    with pytest.raises(ValueError, match="folds"):
        distillation.fold_of(10, 1)


def test_out_of_fold_logits_come_from_teachers_that_did_not_see_the_jet(monkeypatch):
    # Small random inputs; record which jets each teacher was trained on and which it predicted.
    torch.manual_seed(0)
    n = 40

    def part(m):
        return {"particles": torch.randn(m, 5, 7), "mask": torch.ones(m, 5), "features": torch.randn(m, 16),
                "labels": torch.randint(0, 5, (m,))}

    inputs = {"train": part(n), "val": part(10), "test": part(10)}
    inputs["train"]["features"][:, 0] = torch.arange(n, dtype=torch.float32)  # an id per training jet
    seen, predicted = [], []
    real_train, real_logits = distillation.train_teacher, distillation.teacher_logits

    def train_teacher(parts, epochs, seed=0, **options):
        seen.append(set(parts["train"]["features"][:, 0].int().tolist()))
        assert len(parts["val"]["labels"]) == 10, "early stopping uses the validation jets"
        return real_train(parts, epochs, seed=seed, **options)

    def teacher_logits(model, p):
        if len(p["labels"]) != 10:  # not the validation loss of early stopping
            predicted.append(set(p["features"][:, 0].int().tolist()))
        return real_logits(model, p)

    monkeypatch.setattr(distillation, "train_teacher", train_teacher)
    monkeypatch.setattr(distillation, "teacher_logits", teacher_logits)
    z = distillation.out_of_fold_logits(inputs, folds=3, epochs=1)
    assert z.shape == (n, 5) and torch.isfinite(z).all()
    assert len(seen) == 3 and len(predicted) == 3
    for trained_on, held in zip(seen, predicted):
        assert not trained_on & held, "a teacher predicts only jets it was not trained on"
        assert trained_on | held == set(range(n))
    assert set().union(*predicted) == set(range(n)), "every training jet gets a logit"


def test_keras_student_has_the_torch_students_outputs():
    pytest.importorskip("keras")
    torch.manual_seed(1)
    student = distillation.mlp((16, 12, 8, 5))
    x = torch.randn(64, 16)
    keras_model = distillation.keras_student(student)
    with torch.no_grad():
        expected = torch.softmax(student(x), dim=1).numpy()
    got = keras_model.predict(x.numpy(), verbose=0)
    assert [layer.name for layer in keras_model.layers] == ["fc1", "fc2", "output"]
    assert np.allclose(got, expected, atol=1e-5)
