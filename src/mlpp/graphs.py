"""Jets as graphs: k-nearest-neighbour indices with padding handled, drawing a jet's graph,
and a small torch training loop (for the graph networks of Lecture 5 and the particle
networks after it).

Layout. A batch of jets is a padded tensor ``(B, P, C)`` with a boolean ``mask`` ``(B, P)``,
true for real particles (padding anywhere). A kNN graph is stored as neighbour indices
``idx`` ``(B, P, k)`` into the particle axis, with ``valid`` ``(B, P, k)`` true where the
neighbour is a real particle (false for jets with fewer than ``k + 1`` particles, and on
padded rows).

>>> import torch
>>> from mlpp import graphs
>>> idx, valid = graphs.knn_indices(points, mask, k=7)             # (B, P, 7) each
>>> history = graphs.fit_classifier(model, (x_tr, m_tr), y_tr, (x_va, m_va), y_va, epochs=5)
>>> scores = graphs.predict(model, (x_te, m_te))                    # (n,) numpy, in [0, 1]

Heavy imports (torch, matplotlib) happen inside the functions. Nothing here changes its inputs.
"""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["knn_indices", "pairwise_distances", "draw_knn_graph", "fit_classifier", "predict", "shared_neighbours"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("torch is not installed; the course pins it in pyproject.toml: run 'make venv'") from None
    return torch


def pairwise_distances(points: "torch.Tensor") -> "torch.Tensor":
    """Squared Euclidean distances between all pairs of points: ``(B, P, D)`` → ``(B, P, P)``.

    Computed from differences (not ``|a|² + |b|² − 2a·b``), so it is exactly 0 on the
    diagonal, symmetric, and never negative.
    """
    diff = points.unsqueeze(2) - points.unsqueeze(1)  # (B, P, P, D)
    return (diff * diff).sum(dim=-1)


def knn_indices(points: "torch.Tensor", mask: "torch.Tensor | None" = None, k: int = 7
                ) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The ``k`` nearest neighbours of every point, itself excluded, among the real points.

    ``points``: ``(B, P, D)`` coordinates (e.g. Δη, Δφ, or learned features); ``mask``:
    ``(B, P)`` bool, true for real points (default: all real). Padded points are never the
    neighbour of anything while a real one is left. Returns
    ``idx`` ``(B, P, k)`` int64 and ``valid`` ``(B, P, k)`` bool (neighbour and point both
    real). Needs ``k < P``. Uses ``torch.topk`` (no torch-cluster or pyg-lib needed); no
    gradient flows through the choice of neighbours. Exact ties (only among padding, in
    practice) are broken in an unspecified order.
    """
    torch = _torch()
    B, P, _ = points.shape
    if not 0 < k < P:
        raise ValueError(f"need 0 < k < P, got k={k} with P={P} points")
    if mask is None:
        mask = torch.ones(B, P, dtype=torch.bool, device=points.device)
    mask = mask.to(torch.bool)
    with torch.no_grad():
        d = pairwise_distances(points.detach().float())  # (B, P, P)
        d = d.masked_fill(~mask.unsqueeze(1), float("inf"))  # padded candidates: infinitely far
        eye = torch.eye(P, dtype=torch.bool, device=points.device)
        d = d.masked_fill(eye, float("inf"))  # never your own neighbour
        idx = d.topk(k, dim=-1, largest=False).indices  # (B, P, k), nearest first
        valid = torch.gather(mask.unsqueeze(1).expand(B, P, P), 2, idx) & mask.unsqueeze(-1)
    return idx, valid


def shared_neighbours(idx_a: "torch.Tensor | np.ndarray", idx_b: "torch.Tensor | np.ndarray",
                      valid: "torch.Tensor | np.ndarray | None" = None) -> float:
    """Fraction of (point, neighbour) pairs of graph ``a`` that are also edges of graph ``b``.

    ``idx_a``, ``idx_b``: ``(B, P, k)`` neighbour indices (e.g. before and after an EdgeConv
    block); ``valid``: ``(B, P, k)`` bool, the edges of ``a`` to count (default all).
    """
    a, b = np.asarray(idx_a), np.asarray(idx_b)
    same = (a[..., :, None] == b[..., None, :]).any(axis=-1)  # (B, P, k)
    ok = np.ones_like(same) if valid is None else np.asarray(valid, dtype=bool)
    return float(same[ok].mean()) if ok.any() else float("nan")


def draw_knn_graph(ax, xs: np.ndarray, ys: np.ndarray, idx: np.ndarray, valid: np.ndarray | None = None,
                   pts: np.ndarray | None = None, scale: float = 2.0, color: str = "C0", edge_color: str = "gray",
                   highlight: int | None = None):
    """One jet's kNN graph in a plane: points at ``(xs, ys)``, an edge from each point to each neighbour.

    ``xs``, ``ys``: ``(P,)`` positions where the points are drawn (e.g. Δη, Δφ of the real
    particles); ``idx``: ``(P, k)`` neighbour indices into them; ``valid``: ``(P, k)`` bool,
    which edges to draw; ``pts``: ``(P,)`` GeV, marker area ∝ pT. ``highlight``: a point whose
    edges are drawn in red. Returns ``(edges, points)``, the LineCollection and the scatter.
    """
    from matplotlib.collections import LineCollection

    xs, ys, idx = np.asarray(xs, float), np.asarray(ys, float), np.asarray(idx)
    ok = np.ones(idx.shape, bool) if valid is None else np.asarray(valid, bool)
    i, slot = np.nonzero(ok)
    j = idx[i, slot]
    segments = np.stack([np.stack([xs[i], ys[i]], -1), np.stack([xs[j], ys[j]], -1)], axis=1)  # (E, 2, 2)
    colours = [edge_color] * len(i) if highlight is None else ["red" if a == highlight else edge_color for a in i]
    widths = [0.6] * len(i) if highlight is None else [2.0 if a == highlight else 0.6 for a in i]
    edges = ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths, alpha=0.6, zorder=1))
    sizes = 20.0 if pts is None else scale * np.asarray(pts, float)
    points = ax.scatter(xs, ys, s=sizes, color=color, zorder=2, alpha=0.8)
    ax.autoscale_view()
    return edges, points


# --- training ---------------------------------------------------------------------------------

def _as_tensors(inputs: Sequence) -> list:
    torch = _torch()
    return [torch.as_tensor(np.asarray(a)) for a in inputs]


def predict(model, inputs: Sequence, batch_size: int = 1024) -> np.ndarray:
    """Scores of a binary classifier: ``sigmoid(model(*inputs))`` in evaluation mode, ``(n,)`` numpy.

    ``inputs``: the model's arguments as arrays with a leading jet axis (e.g. ``(x, mask)``);
    the model returns one logit per jet, ``(n,)`` or ``(n, 1)``.
    """
    torch = _torch()
    tensors = _as_tensors(inputs)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(tensors[0]), batch_size):
            out.append(torch.sigmoid(model(*(t[start:start + batch_size] for t in tensors)).reshape(-1)))
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def fit_classifier(model, train_inputs: Sequence, y_train: np.ndarray, val_inputs: Sequence, y_val: np.ndarray,
                   epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
                   patience: int | None = None, seed: int | None = 0, progress: bool = False,
                   verbose: bool = True) -> dict[str, list[float]]:
    """Train a binary classifier (one logit per jet) with Adam and binary cross-entropy.

    ``train_inputs``, ``val_inputs``: the model's arguments, arrays with a leading jet axis;
    ``y_*``: ``(n,)`` labels 0/1. The learning rate follows a cosine schedule to 0 over
    ``epochs``. After every epoch the validation loss is measured; the weights with the lowest
    one are restored at the end, and with ``patience`` training stops after that many epochs
    without improvement. ``seed`` fixes the batch order. ``progress`` shows a tqdm bar per epoch;
    ``verbose`` prints one line per epoch. Returns a Keras-style history: lists ``loss``,
    ``val_loss``, ``accuracy``, ``val_accuracy``, ``seconds`` (wall time per epoch), and
    ``best_epoch`` (1-based, as a one-element list).
    """
    torch = _torch()
    xs, vs = _as_tensors(train_inputs), _as_tensors(val_inputs)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.float32)
    y_v = np.asarray(y_val).astype(int)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n_batches = max(1, int(np.ceil(len(y) / batch_size)))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * n_batches)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    history: dict[str, list[float]] = {k: [] for k in ("loss", "val_loss", "accuracy", "val_accuracy", "seconds")}
    best, best_state, since_best = float("inf"), None, 0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=generator)
        batches = range(n_batches)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        total, correct = 0.0, 0.0
        for b in batches:
            sel = order[b * batch_size:(b + 1) * batch_size]
            logits = model(*(t[sel] for t in xs)).reshape(-1)
            loss = loss_fn(logits, y[sel])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(sel)
            correct += float(((logits > 0).float() == y[sel]).sum())
        p_val = np.clip(predict(model, vs), 1e-7, 1 - 1e-7)
        val_loss = float(-np.mean(y_v * np.log(p_val) + (1 - y_v) * np.log(1 - p_val)))
        history["loss"].append(total / len(y))
        history["accuracy"].append(correct / len(y))
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(float(np.mean((p_val > 0.5) == y_v)))
        history["seconds"].append(time.perf_counter() - start)
        if verbose:
            print(f"epoch {epoch + 1:2d}/{epochs}: loss {history['loss'][-1]:.4f}, val_loss {val_loss:.4f}, "
                  f"val_accuracy {history['val_accuracy'][-1]:.4f} ({history['seconds'][-1]:.1f} s)")
        if val_loss < best:
            best, best_state, since_best = val_loss, copy.deepcopy(model.state_dict()), 0
            history["best_epoch"] = [epoch + 1]
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
