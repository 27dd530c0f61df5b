"""Event-display helpers: the resolutions they plot are the ones the detector applies, and one
generated event is self-consistent (its jets are the sums of their particles)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlpp import display, kinematics  # noqa: E402
from mlpp.data.cards import load_card  # noqa: E402
from mlpp.data.detector import CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, DetectorModel, apply_detector  # noqa: E402


@pytest.mark.parametrize("energy", [20.0, 100.0, 500.0])  # well above thresholds: no truncation
@pytest.mark.parametrize("pdgid, charge, code, key", [(211, 1.0, CHARGED_HADRON, "track"),
                                                      (22, 0.0, PHOTON, "ecal"),
                                                      (130, 0.0, NEUTRAL_HADRON, "hcal")])
def test_plotted_resolutions_are_the_applied_ones(energy, pdgid, charge, code, key):
    """The spread apply_detector gives particles at η = 0 is what relative_resolutions says (to 4 %)."""
    n = 20_000
    rng = np.random.default_rng(0)
    # one particle per event, so that no two share a calorimeter tower
    seen = apply_detector(np.full(n, energy), np.zeros(n), np.zeros(n), np.full(n, pdgid), np.full(n, charge), rng,
                          event=np.arange(n))
    measured = seen["pt"][seen["pid_class"] == code] / energy
    expected = display.relative_resolutions(energy)[key]
    assert len(measured) > 0.9 * n
    assert measured.std() == pytest.approx(expected, rel=0.04)
    assert measured.mean() == pytest.approx(1.0, abs=3 * expected / np.sqrt(len(measured)) + 1e-3)


def test_resolutions_shapes_and_limits():
    energies = np.geomspace(1.0, 1e4, 50)
    res = display.relative_resolutions(energies, DetectorModel())
    assert set(res) == {"track", "ecal", "hcal"}
    assert all(r.shape == energies.shape for r in res.values())
    # Calorimeters improve with energy towards their constant term, the tracker degrades.
    assert np.all(np.diff(res["ecal"]) < 0) and np.all(np.diff(res["hcal"]) < 0)
    assert np.all(np.diff(res["track"]) > 0)
    assert res["hcal"][-1] == pytest.approx(DetectorModel().hcal_constant, rel=0.05)


@pytest.mark.slow
def test_generated_event_is_consistent_and_draws():
    """Each jet of a generated event is the four-vector sum of the particles assigned to it."""
    card = load_card("jets5")
    event = display.generate_event(card, class_index=card.class_names.index("W"), seed=2)
    p = event.particles
    assert len({len(v) for v in p.values()}) == 1
    assert np.all(np.diff(event.jets[:, 0]) <= 0)  # hardest first
    assert card.jets.pt_min <= event.jets[0, 0] < card.jets.pt_max
    assert p["jet_index"].min() >= -1 and p["jet_index"].max() < len(event.jets)
    for rank, (pt, eta, phi, mass) in enumerate(event.jets[:2]):
        sel = p["jet_index"] == rank
        summed = kinematics.ptetaphim_from_p4s(kinematics.jet_p4s(p["pt"][sel], p["eta"][sel], p["phi"][sel], p["e"][sel]))
        assert summed[0] == pytest.approx(pt, rel=1e-6)
        assert summed[3] == pytest.approx(mass, rel=1e-4, abs=1e-3)
        assert kinematics.delta_phi(summed[2], phi) == pytest.approx(0.0, abs=1e-6)
    assert {"W+", "W-"} <= set(event.partons["name"])

    fig = plt.figure()
    ax = fig.add_subplot(1, 3, 1)
    drawn = display.event_display(ax, event)
    assert len(drawn["particles"]) == 3 and len(drawn["jets"]) >= 2 and drawn["partons"]
    zoomed = display.event_display(fig.add_subplot(1, 3, 2), event, zoom=0)
    assert len(zoomed["jets"]) == 1 and len(zoomed["partons"]) > 1  # the cross and the names
    bars = display.lego(fig.add_subplot(1, 3, 3, projection="3d"), event)
    assert bars is not None
    plt.close(fig)


def test_jet_circle_is_repeated_across_the_phi_edge():
    """A jet at φ = 3.0 is drawn a second time at 3.0 − 2π, so the display shows both halves."""
    particles = {"pt": np.array([100.0, 50.0]), "eta": np.array([0.0, 0.1]), "phi": np.array([3.0, -3.1]),
                 "e": np.array([100.0, 50.25]), "charge": np.array([1, 0]), "pid_class": np.array([0, 3]),
                 "jet_index": np.array([0, 0])}
    partons = {"name": np.array(["u"]), "pdgid": np.array([2]), "status": np.array([23]), "pt": np.array([150.0]),
               "eta": np.array([0.0]), "phi": np.array([3.1])}
    event = display.Event("q", 0, 0.8, particles, np.array([[150.0, 0.03, 3.1, 10.0]]), partons)
    fig, ax = plt.subplots()
    drawn = display.event_display(ax, event, n_jets=1)
    assert len(drawn["jets"]) == 2
    centres = sorted(circle.center[1] for circle in drawn["jets"])
    assert centres == pytest.approx([3.1 - 2 * np.pi, 3.1])
    plt.close(fig)


def test_trigger_rates_draws_one_bar_per_stage():
    fig, ax = plt.subplots()
    drawn = display.trigger_rates(ax, ["crossings", "L1", "HLT"], [40e6, 1e5, 1e3], ["25 ns", "4 µs", None])
    assert len(drawn[0]) == 3 and len(drawn) == 4
    assert [t.get_text().split("\n")[0] for t in drawn[1:]] == ["40 MHz", "100 kHz", "1 kHz"]
    assert ax.get_yscale() == "log"
    plt.close(fig)
