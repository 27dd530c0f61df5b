"""Numerical profiling: the values a network's layers hold, against the fixed-point types chosen.

hls4ml's own ``hls4ml.model.profiling.numerical`` draws this plot but needs seaborn, which the
course does not install; :func:`plot_profile` draws the same information with matplotlib: for each
layer a box of ``|value|`` on a log2 axis (weights, or the layer's outputs on a sample of inputs),
and a grey bar from the type's step ``2**-F`` to its largest value ``2**(I-1)``. Values right of
the bar overflow; values left of it round to zero or to a single step.
"""
from __future__ import annotations

import numpy as np

from mlpp.hls.fixed_point import parse_type


def dense_values(model, x: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """For each Dense layer of a Keras Dense/ReLU network: its non-zero weights and biases, and
    its outputs before the activation on the inputs ``x`` (n, n_in). ``{name: {"weights", "outputs"}}``."""
    values, h = {}, np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        if not hasattr(layer, "kernel"):
            continue
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights()[:2])
        z = h @ kernel + bias
        params = np.concatenate([kernel.ravel(), bias])
        values[layer.name] = {"weights": params[params != 0], "outputs": z.ravel()}
        activation = getattr(layer.activation, "__name__", "linear")
        h = np.maximum(z, 0) if activation == "relu" else z
    return values


def plot_profile(ax, values: dict[str, np.ndarray], types: dict[str, str] | None = None, title: str = ""):
    """Horizontal boxes of log2|value| per layer, with the range of each layer's type behind them.

    ``values``: ``{layer: array}``; ``types``: ``{layer: "ap_fixed<W,I>"}`` (optional). Returns the
    boxplot's artists. The whiskers span the 0.1 % to 99.9 % quantiles; zeros are left out.
    """
    names = list(values)
    positions = np.arange(len(names))[::-1]
    if types:
        for pos, name in zip(positions, names):
            if name in types:
                kind = parse_type(types[name])
                low, high = -kind.fractional, kind.integer - (1 if kind.signed else 0)
                ax.barh(pos, high - low, left=low, height=0.7, color="0.85", zorder=0)
                ax.text(high + 0.2, pos + 0.25, str(kind).replace("ap_fixed", ""), fontsize=8, color="0.35")
    data = [np.log2(np.abs(v[v != 0])) if np.any(v != 0) else np.array([0.0]) for v in values.values()]
    boxes = ax.boxplot(data, positions=positions, vert=False, whis=(0.1, 99.9), showfliers=False, widths=0.45)
    ax.set_yticks(positions, names)
    ax.set_xlabel(r"$\log_2 |x|$")
    if title:
        ax.set_title(title)
    return boxes
