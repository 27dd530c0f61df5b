"""Plots of jet images and of what convolutional networks learn from them.

Jet images (``mlpp.data.images``) are arrays ``(npix, npix)`` of pT per pixel in GeV (or a
fraction of the jet pT after normalisation), **axis 0 along η′ and axis 1 along φ′**, on the
window ``[-half_width, half_width]`` in both. The functions here draw η′ horizontally and φ′
vertically, so that after the ``rotate`` preprocessing step the principal axis of the jet is
vertical on the page. Each plot function takes an ``ax``, draws, and returns what it drew.

>>> averages = average_images(images, labels)          # (n_classes, npix, npix)
>>> jet_image(ax, averages[1], half_width=1.0)          # log colour scale
>>> signed_image(ax, averages[1] - averages[0], 1.0)    # difference, symmetric colours
>>> conv_filters(axes, model.layers[0].get_weights()[0])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pixel_edges(npix: int, half_width: float) -> np.ndarray:
    """Bin edges ``(npix + 1,)`` of the image grid in η′ (and φ′), the ones ``jet_images`` uses."""
    if npix < 1 or half_width <= 0:
        raise ValueError(f"need npix >= 1 and half_width > 0, got {npix} and {half_width}")
    return np.linspace(-half_width, half_width, npix + 1)


def pixel_centres(npix: int, half_width: float) -> np.ndarray:
    """Pixel centres ``(npix,)`` in η′ (and φ′)."""
    edges = pixel_edges(npix, half_width)
    return 0.5 * (edges[1:] + edges[:-1])


def average_images(images: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Mean image of each class: ``(n_classes, npix, npix)`` from ``images (n_jets, npix, npix)``.

    ``labels`` are class indices ``(n_jets,)``; ``n_classes`` defaults to ``labels.max() + 1``.
    A class without jets raises ``ValueError`` (its average is undefined). The inputs are
    not changed; the result is float64.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(int)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"need images (n, npix, npix) and labels (n,), got {images.shape} and {labels.shape}")
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    counts = np.bincount(labels, minlength=n_classes)[:n_classes]
    if np.any(counts == 0):
        raise ValueError(f"no jets of class(es) {np.flatnonzero(counts == 0).tolist()}")
    sums = np.zeros((n_classes,) + images.shape[1:])
    np.add.at(sums, labels, images.astype(np.float64))
    return sums / counts[:, None, None]


def _draw(ax, image: np.ndarray, extent, norm, cmap: str, colorbar: bool, label: str | None):
    shown = ax.imshow(np.ma.asarray(image).T, origin="lower", extent=extent, norm=norm, cmap=cmap,
                      interpolation="nearest", aspect="equal")
    if colorbar:
        bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        if label:
            bar.set_label(label)
    return shown


def jet_image(ax, image: np.ndarray, half_width: float = 1.0, log: bool = True, dynamic_range: float = 1e4,
              vmax: float | None = None, cmap: str = "viridis", colorbar: bool = True,
              label: str | None = r"$p_T$ per pixel"):
    """One jet image (or an average image) ``(npix, npix)``: η′ across, φ′ up.

    With ``log`` the colours span ``[vmax / dynamic_range, vmax]`` on a log scale
    (``vmax`` defaults to the brightest pixel) and empty pixels stay blank; give the same
    ``vmax`` to panels that should share a scale. Returns the ``AxesImage``.
    """
    from matplotlib.colors import LogNorm, Normalize

    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"need one image (npix, npix), got shape {image.shape}")
    top = float(vmax) if vmax is not None else float(image.max())
    top = top if top > 0 else 1.0
    if log:
        norm = LogNorm(vmin=top / dynamic_range, vmax=top)
        image = np.ma.masked_less_equal(image, 0.0)
    else:
        norm = Normalize(vmin=0.0, vmax=top)
    shown = _draw(ax, image, (-half_width, half_width) * 2, norm, cmap, colorbar, label)
    ax.set_xlabel(r"$\eta'$")
    ax.set_ylabel(r"$\phi'$")
    return shown


def signed_image(ax, image: np.ndarray, half_width: float | None = 1.0, cmap: str = "RdBu_r",
                 colorbar: bool = True, label: str | None = None, limit: float | None = None):
    """An image with both signs (a difference of averages, linear weights, a filter).

    Colours are symmetric around zero (white), ``[-limit, limit]`` with ``limit`` the
    largest ``|value|`` unless given. ``half_width=None`` draws in pixel units (for
    convolution kernels). Returns the ``AxesImage``.
    """
    from matplotlib.colors import Normalize

    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"need one image (npix, npix), got shape {image.shape}")
    limit = float(limit) if limit is not None else float(np.abs(image).max())
    limit = limit if limit > 0 else 1.0
    norm = Normalize(vmin=-limit, vmax=limit)
    if half_width is None:
        extent = (-0.5, image.shape[0] - 0.5, -0.5, image.shape[1] - 0.5)
        shown = _draw(ax, image, extent, norm, cmap, colorbar, label)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        shown = _draw(ax, image, (-half_width, half_width) * 2, norm, cmap, colorbar, label)
        ax.set_xlabel(r"$\eta'$")
        ax.set_ylabel(r"$\phi'$")
    return shown


def conv_filters(axes: Sequence, kernel: np.ndarray, channel: int = 0, cmap: str = "RdBu_r"):
    """The filters of a 2D convolution, one per axis, on one shared symmetric colour scale.

    ``kernel`` is a Keras ``Conv2D`` weight ``(k_eta, k_phi, n_in, n_filters)`` (or
    ``(k_eta, k_phi, n_filters)``); ``channel`` picks the input channel. Drawn like the images
    (η′ across, φ′ up) in pixel units, titled by filter index. Returns the ``AxesImage`` list.
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim == 3:
        kernel = kernel[:, :, None, :]
    if kernel.ndim != 4:
        raise ValueError(f"need a kernel (k, k, n_in, n_filters), got shape {kernel.shape}")
    axes = list(np.ravel(axes))
    n_filters = kernel.shape[-1]
    if len(axes) < n_filters:
        raise ValueError(f"{n_filters} filters but only {len(axes)} axes")
    weights = kernel[:, :, channel, :]
    limit = float(np.abs(weights).max())
    drawn = []
    for index, ax in enumerate(axes[:n_filters]):
        drawn.append(signed_image(ax, weights[:, :, index], half_width=None, cmap=cmap, colorbar=False, limit=limit))
        ax.set_title(f"filter {index}", fontsize=11)
    for ax in axes[n_filters:]:
        ax.set_axis_off()
    return drawn
