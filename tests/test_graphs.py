"""mlpp.graphs: kNN indices with padding, shared-neighbour fractions, graph drawing, the torch training loop."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlpp import graphs  # noqa: E402


def brute_force_knn(points: np.ndarray, mask: np.ndarray, k: int) -> list[list[set[int]]]:
    """Per jet and real point: the set of its k nearest real points (itself excluded)."""
    out = []
    for pts, m in zip(points, mask):
        real = np.flatnonzero(m)
        jet = []
        for i in range(len(pts)):
            others = [j for j in real if j != i]
            d = [np.sum((pts[i] - pts[j]) ** 2) for j in others]
            jet.append({others[n] for n in np.argsort(d, kind="stable")[:k]})
        out.append(jet)
    return out


@pytest.fixture
def cloud():
    rng = np.random.default_rng(1)
    counts = np.array([20, 13, 6, 1, 0])
    mask = np.arange(20)[None, :] < counts[:, None]
    points = rng.normal(size=(5, 20, 3))
    points = np.where(mask[..., None], points, rng.normal(0, 1e-3, points.shape))  # padding near the real points
    return torch.tensor(points), torch.tensor(mask)


@pytest.mark.parametrize("k", [1, 4, 7])
def test_knn_matches_brute_force_and_skips_padding(cloud, k):
    points, mask = cloud
    idx, valid = graphs.knn_indices(points, mask, k)
    assert idx.shape == valid.shape == (5, 20, k) and idx.dtype == torch.int64
    expected = brute_force_knn(points.numpy(), mask.numpy(), k)
    for b in range(5):
        for i in np.flatnonzero(mask[b].numpy()):
            chosen = set(idx[b, i][valid[b, i]].tolist())
            assert chosen == expected[b][i]
            assert i not in chosen  # never its own neighbour
            n_real = int(mask[b].sum())
            assert int(valid[b, i].sum()) == min(k, n_real - 1)  # padding only when too few real points
        assert not valid[b, ~mask[b]].any()  # padded rows have no valid neighbours


def test_knn_is_permutation_equivariant(cloud):
    points, mask = cloud
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    idx, valid = graphs.knn_indices(points, mask, 5)
    idx_p, valid_p = graphs.knn_indices(points[:, perm], mask[:, perm], 5)
    # map the permuted graph back to the original numbering and compare neighbour sets
    for b in range(5):
        for new_i, old_i in enumerate(perm.tolist()):
            if mask[b, old_i]:
                back = {perm[j].item() for j in idx_p[b, new_i][valid_p[b, new_i]].tolist()}
                assert back == set(idx[b, old_i][valid[b, old_i]].tolist())


def test_knn_does_not_change_inputs_and_checks_k(cloud):
    points, mask = cloud
    copy = points.clone()
    graphs.knn_indices(points, mask, 3)
    assert torch.equal(points, copy)
    with pytest.raises(ValueError):
        graphs.knn_indices(points, mask, 20)
    idx, valid = graphs.knn_indices(points[:, :4], None, 3)  # no mask: all real
    assert valid.all() and idx.shape == (5, 4, 3)


def test_pairwise_distances_are_exact_on_the_diagonal():
    points = torch.randn(2, 7, 4)
    d = graphs.pairwise_distances(points)
    assert torch.all(torch.diagonal(d, dim1=1, dim2=2) == 0)
    assert torch.allclose(d, d.transpose(1, 2)) and torch.all(d >= 0)
    assert torch.allclose(d[0, 1, 2], ((points[0, 1] - points[0, 2]) ** 2).sum())


def test_shared_neighbours():
    a = np.array([[[1, 2], [0, 2], [0, 1]]])
    assert graphs.shared_neighbours(a, a) == 1.0
    b = np.array([[[2, 1], [2, 0], [2, 0]]])  # same sets except particle 2: {2, 0} vs {0, 1}
    assert graphs.shared_neighbours(a, b) == pytest.approx(5 / 6)
    valid = np.array([[[True, True], [True, True], [False, False]]])
    assert graphs.shared_neighbours(a, b, valid) == 1.0


def test_draw_knn_graph_draws_one_segment_per_valid_edge():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    idx = np.array([[1, 2], [0, 2], [0, 1]])
    valid = np.array([[True, True], [True, False], [False, False]])
    fig, ax = plt.subplots()
    edges, points = graphs.draw_knn_graph(ax, xs, ys, idx, valid, pts=np.array([1.0, 2.0, 3.0]), highlight=0)
    segments = edges.get_segments()
    assert len(segments) == 3
    assert np.allclose(segments[0], [[0, 0], [1, 0]]) and np.allclose(segments[2], [[1, 0], [0, 0]])
    assert len(points.get_offsets()) == 3
    plt.close(fig)


class _Logistic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)


def test_fit_classifier_learns_and_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    torch.manual_seed(0)
    model = _Logistic()
    history = graphs.fit_classifier(model, (x[:500],), y[:500], (x[500:],), y[500:], epochs=6, batch_size=50,
                                    lr=0.05, verbose=False)
    assert set(history) >= {"loss", "val_loss", "accuracy", "val_accuracy", "seconds", "best_epoch"}
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][history["best_epoch"][0] - 1] > 0.9
    scores = graphs.predict(model, (x[500:],))
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    restored = -np.mean(y[500:] * np.log(p) + (1 - y[500:]) * np.log(1 - p))
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-4)
    assert scores.shape == (100,) and np.all((scores >= 0) & (scores <= 1))
    assert not model.training


def test_fit_classifier_stops_early_and_is_seeded():
    x = np.random.default_rng(1).normal(size=(200, 2)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 2, 200)  # nothing to learn: validation loss stalls
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _Logistic()
        history = graphs.fit_classifier(model, (x,), y, (x[:50],), y[:50], epochs=30, lr=0.5, patience=2,
                                        verbose=False)
        runs.append(history["loss"])
    assert len(runs[0]) < 30
    assert runs[0] == runs[1]
