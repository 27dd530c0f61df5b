"""Jet-image plots: averages are per-class means, pixels are drawn where jet_images put them,
colour scales are shared and symmetric where they should be, and nothing changes its inputs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backend_bases import MouseEvent  # noqa: E402

from mlpp import image_plots  # noqa: E402
from mlpp.data.images import jet_images  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _value_under(ax, shown, x, y):
    """The value the drawn image shows at data coordinates (x, y)."""
    ax.figure.canvas.draw()
    px, py = ax.transData.transform((x, y))
    return shown.get_cursor_data(MouseEvent("motion_notify_event", ax.figure.canvas, px, py))


@pytest.mark.parametrize("npix, half_width", [(25, 1.0), (40, 1.0), (33, 0.8)])
def test_grid_matches_jet_images(npix, half_width):
    """A massless particle put at each pixel centre lands in that pixel of jet_images."""
    centres = image_plots.pixel_centres(npix, half_width)
    assert np.allclose(np.diff(image_plots.pixel_edges(npix, half_width)), 2 * half_width / npix)
    assert np.allclose(centres, -centres[::-1])  # symmetric about the jet axis
    i, j = np.meshgrid(np.arange(npix), np.arange(npix), indexing="ij")
    etas, phis = centres[i.ravel()][None], centres[j.ravel()][None]
    pts = np.arange(1, npix * npix + 1, dtype=float)[None]
    image = jet_images(pts, etas, phis, np.ones_like(pts, bool), npix, half_width, steps=())[0]
    assert np.array_equal(image, pts.reshape(npix, npix).astype(np.float32))


@pytest.mark.parametrize("log", [True, False])
@pytest.mark.parametrize("npix", [5, 24])
def test_pixels_are_drawn_at_their_eta_phi(log, npix):
    """η′ runs across and φ′ up: the colour at (η_i, φ_j) is pixel [i, j] (the 'rotate' step's vertical axis)."""
    half_width = 1.0
    rng = np.random.default_rng(npix)
    image = rng.uniform(1.0, 2.0, size=(npix, npix))
    fig, ax = plt.subplots()
    shown = image_plots.jet_image(ax, image, half_width, log=log)
    centres = image_plots.pixel_centres(npix, half_width)
    for i, j in [(0, 0), (npix - 1, 0), (0, npix - 1), (1, npix - 2), (npix // 2, 1)]:
        assert _value_under(ax, shown, centres[i], centres[j]) == pytest.approx(image[i, j])
    assert shown.get_extent() == [-half_width, half_width, -half_width, half_width]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_images_are_class_means_and_order_free(seed):
    rng = np.random.default_rng(seed)
    images = rng.exponential(size=(300, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=300)
    before = images.copy(), labels.copy()
    averages = image_plots.average_images(images, labels)
    assert averages.shape == (3, 6, 6)
    for k in range(3):
        assert np.allclose(averages[k], images[labels == k].mean(axis=0), rtol=1e-6)
    perm = rng.permutation(300)
    assert np.allclose(image_plots.average_images(images[perm], labels[perm]), averages)
    # Linear: the total of the average image is the average total (e.g. the mean jet pT).
    assert np.allclose(averages.sum(axis=(1, 2)), [images[labels == k].sum(axis=(1, 2)).mean() for k in range(3)],
                       rtol=1e-6)
    assert np.array_equal(images, before[0]) and np.array_equal(labels, before[1])


def test_average_images_rejects_empty_class_and_bad_shapes():
    images = np.ones((4, 3, 3))
    with pytest.raises(ValueError, match="no jets"):
        image_plots.average_images(images, np.array([0, 0, 2, 2]))
    with pytest.raises(ValueError):
        image_plots.average_images(images, np.array([0, 1, 1]))
    with pytest.raises(ValueError):
        image_plots.average_images(images[0], np.array([0, 1, 1]))


def test_log_image_blanks_empty_pixels_and_shares_scales():
    image = np.zeros((10, 10))
    image[4, 5] = 3.0
    image[0, 0] = 1e-3
    fig, (ax1, ax2) = plt.subplots(1, 2)
    shown = image_plots.jet_image(ax1, image, dynamic_range=100.0)
    assert shown.norm.vmax == pytest.approx(3.0) and shown.norm.vmin == pytest.approx(0.03)
    assert np.ma.getmaskarray(shown.get_array()).sum() == 98  # the empty pixels stay blank
    shared = image_plots.jet_image(ax2, image, vmax=10.0, colorbar=False)
    assert shared.norm.vmax == 10.0
    image_plots.jet_image(ax2, np.zeros((4, 4)), colorbar=False)  # an empty image draws without error


@pytest.mark.parametrize("half_width", [1.0, None])
def test_signed_image_is_symmetric_about_zero(half_width):
    image = np.array([[0.5, -2.0], [1.0, 0.0]])
    fig, ax = plt.subplots()
    shown = image_plots.signed_image(ax, image, half_width)
    assert shown.norm.vmin == pytest.approx(-2.0) and shown.norm.vmax == pytest.approx(2.0)
    assert shown.norm(0.0) == pytest.approx(0.5)  # zero is the middle colour
    assert np.array_equal(image, [[0.5, -2.0], [1.0, 0.0]])


@pytest.mark.parametrize("shape", [(4, 4, 1, 8), (3, 3, 2, 5), (4, 4, 6)])
def test_conv_filters_one_panel_per_filter_on_one_scale(shape):
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=shape)
    n_filters = shape[-1]
    fig, axes = plt.subplots(2, 4)
    drawn = image_plots.conv_filters(axes, kernel)
    assert len(drawn) == n_filters
    limit = np.abs(kernel[..., 0, :] if kernel.ndim == 4 else kernel).max()
    for k, shown in enumerate(drawn):
        assert shown.norm.vmax == pytest.approx(limit) and shown.norm.vmin == pytest.approx(-limit)
        weights = kernel[:, :, 0, k] if kernel.ndim == 4 else kernel[:, :, k]
        assert np.allclose(shown.get_array(), weights.T)  # drawn like the images: axis 0 across
    assert sum(ax.axison for ax in axes.ravel()) == n_filters


def test_conv_filters_needs_enough_axes():
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="axes"):
        image_plots.conv_filters(axes, np.zeros((4, 4, 1, 3)))
    with pytest.raises(ValueError, match="kernel"):
        image_plots.conv_filters(axes, np.zeros((4, 4)))
