"""Event displays: one generated collision, its particles and jets, and the detector that saw them.

:func:`generate_event` runs the course's chain (Pythia 8 → :func:`mlpp.data.detector.apply_detector`
→ FastJet anti-kT) on a single event and keeps everything a display needs. The plotting
functions take a Matplotlib ``ax``, return what they drew and never call ``plt.show()``::

    event = generate_event(load_card("jets5"), class_index=4, seed=11)  # one tt̄ event
    event_display(ax, event)             # the whole detector in η–φ
    event_display(ax2, event, zoom=0)    # around the hardest jet
    lego(fig.add_subplot(projection="3d"), event)

Units: GeV for momenta and energies, radians for φ; η is pseudorapidity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mlpp.data.cards import Card
from mlpp.data.dataset import JetDataset
from mlpp.data.detector import NEUTRINOS, DetectorModel, apply_detector, pid_classes_from_pdgids
from mlpp.kinematics import delta_phi, masses_from_p4s, ptetaphi_from_momenta

JET_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple")


@dataclass(frozen=True)
class Event:
    """One event after the detector, clustered into jets.

    ``particles``: dict of (n_particles,) arrays ``pt, eta, phi, e`` (GeV), ``charge``,
    ``pid_class`` (see :mod:`mlpp.data.detector`) and ``jet_index`` (position in ``jets``
    of the jet that holds the particle, -1 if none). ``jets``: (n_jets, 4) = (pT [GeV], η,
    φ, mass [GeV]) of the anti-kT jets above ``jet_pt_min``, hardest first.
    ``partons``: the hard process (Pythia status ±22 resonances, ±23 outgoing partons) as
    dict of (n_partons,) arrays ``name, pdgid, status, pt, eta, phi``. ``generated``: the
    visible final-state particles before the detector, ``pt, eta, phi, pid_class``.
    """

    class_name: str
    seed: int
    R: float
    particles: dict[str, np.ndarray]
    jets: np.ndarray
    partons: dict[str, np.ndarray]
    generated: dict[str, np.ndarray] = field(default_factory=dict)

    def __repr__(self) -> str:
        jets = ", ".join(f"{pt:.0f} GeV (m = {m:.0f})" for pt, _, _, m in self.jets[:3])
        return (f"Event({self.class_name!r}, seed {self.seed}: {len(self.particles['pt'])} particles seen, "
                f"{len(self.jets)} jets: {jets}{', ...' if len(self.jets) > 3 else ''})")


def generate_event(card: Card, class_index: int, seed: int = 1, jet_pt_min: float = 20.0,
                   max_events: int = 200, detector: DetectorModel = DetectorModel()) -> Event:
    """Generate one event of class ``class_index`` of ``card``, seen by ``detector``, with jets.

    Events are drawn (Pythia seeded by ``seed``) until the hardest jet lies in the card's
    pT window; ``jets`` keeps every anti-kT jet (the card's algorithm and R) above
    ``jet_pt_min`` GeV. Takes about a second (Pythia's initialisation).
    """
    try:
        import awkward as ak
        import fastjet
    except ImportError:
        raise ImportError("event displays need fastjet and awkward: run 'make venv'") from None
    from mlpp.data.generate import make_pythia

    pythia = make_pythia(card, class_index, seed)
    rng = np.random.default_rng(seed)
    algorithm = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm,
                 "cambridge": fastjet.cambridge_algorithm}[card.jets.algorithm]
    jet_def = fastjet.JetDefinition(algorithm, card.jets.R)
    for _ in range(max_events):
        prt = pythia.nextBatch(1).prt[0]
        ids, status = ak.to_numpy(prt.id), ak.to_numpy(prt.status)
        px, py, pz = (ak.to_numpy(getattr(prt.p, c)) for c in ("px", "py", "pz"))
        visible = (status > 0) & ~np.isin(np.abs(ids), NEUTRINOS)
        charges = np.array([pythia.particleData.charge(int(i)) for i in ids[visible]], dtype=float)
        pts, etas, phis = ptetaphi_from_momenta(px[visible], py[visible], pz[visible])
        seen = apply_detector(pts, etas, phis, ids[visible], charges, rng, detector)
        p4s = ak.zip({"px": seen["pt"] * np.cos(seen["phi"]), "py": seen["pt"] * np.sin(seen["phi"]),
                      "pz": seen["pt"] * np.sinh(seen["eta"]), "E": seen["e"]})
        cs = fastjet.ClusterSequence(p4s, jet_def)
        jets = cs.inclusive_jets(min_pt=jet_pt_min)
        jet_pts = np.hypot(ak.to_numpy(jets.px), ak.to_numpy(jets.py))
        if len(jet_pts) and card.jets.pt_min <= jet_pts.max() < card.jets.pt_max:
            break
    else:
        raise RuntimeError(f"no event with a jet in {card.jets.pt_min}-{card.jets.pt_max} GeV "
                           f"in {max_events} events of class {card.classes[class_index].name}")
    order = np.argsort(-jet_pts, kind="stable")
    jet_e, jet_pz = ak.to_numpy(jets.E)[order], ak.to_numpy(jets.pz)[order]
    jet_px, jet_py = ak.to_numpy(jets.px)[order], ak.to_numpy(jets.py)[order]
    jet_pt, jet_eta, jet_phi = ptetaphi_from_momenta(jet_px, jet_py, jet_pz)
    jet_mass = masses_from_p4s(np.stack([jet_e, jet_px, jet_py, jet_pz], axis=-1))
    jet_index = np.full(len(seen["pt"]), -1)
    members = cs.constituent_index(min_pt=jet_pt_min)
    for rank, j in enumerate(order):
        jet_index[ak.to_numpy(members[j])] = rank
    hard = (np.abs(status) == 22) | (np.abs(status) == 23)
    hpts, hetas, hphis = ptetaphi_from_momenta(px[hard], py[hard], pz[hard])
    partons = {"name": np.array([pythia.particleData.name(int(i)) for i in ids[hard]]),
               "pdgid": ids[hard], "status": status[hard], "pt": hpts, "eta": hetas, "phi": hphis}
    particles = {k: seen[k] for k in ("pt", "eta", "phi", "e", "charge", "pid_class", "n_deposits")}
    particles["jet_index"] = jet_index
    generated = {"pt": pts, "eta": etas, "phi": phis, "pid_class": pid_classes_from_pdgids(ids[visible], charges)}
    return Event(card.classes[class_index].name, seed, card.jets.R, particles,
                 np.stack([jet_pt, jet_eta, jet_phi, jet_mass], axis=1), partons, generated)


def _circle(ax, eta: float, phi: float, R: float, colour: str) -> list:
    """A jet's catchment circle, repeated at φ ± 2π where it crosses the ±π edge."""
    import matplotlib.patches as patches

    drawn = []
    for shift in (0.0, 2 * np.pi, -2 * np.pi):
        if abs(phi + shift) < np.pi + R:
            drawn.append(ax.add_patch(patches.Circle((eta, phi + shift), R, fill=False, ls="--", lw=1.5,
                                                     color=colour)))
    return drawn


def event_display(ax, event: Event, n_jets: int = 2, pt_scale: float = 3.0, show_partons: bool = True,
                  eta_max: float = 5.0, zoom: int | None = None) -> dict[str, list]:
    """Particles of ``event`` in the η–φ plane, marker area ∝ pT; the ``n_jets`` hardest jets coloured.

    Particles outside those jets are grey; dashed circles of radius R mark the jets; crosses mark
    the partons of the hard process. ``zoom=k`` shows only the surroundings (±1.5 R) of jet ``k``
    (0 = hardest), with φ unwrapped around its axis and the partons named. Returns the drawn artists as
    ``{"particles": [...], "jets": [...], "partons": [...]}``.
    """
    p, part = event.particles, event.partons
    phis, parton_phis = p["phi"], part["phi"]
    if zoom is not None:
        _, jet_eta, jet_phi, _ = event.jets[zoom]
        phis = jet_phi + delta_phi(phis, jet_phi)
        parton_phis = jet_phi + delta_phi(parton_phis, jet_phi)
    drawn: dict[str, list] = {"particles": [], "jets": [], "partons": []}
    rest = (p["jet_index"] < 0) | (p["jet_index"] >= n_jets)
    drawn["particles"].append(ax.scatter(p["eta"][rest], phis[rest], s=pt_scale * p["pt"][rest],
                                         color="0.6", alpha=0.6, lw=0, label="other particles"))
    for rank in range(min(n_jets, len(event.jets))):
        colour = JET_COLOURS[rank % len(JET_COLOURS)]
        sel = p["jet_index"] == rank
        pt, eta, phi, mass = event.jets[rank]
        drawn["particles"].append(ax.scatter(p["eta"][sel], phis[sel], s=pt_scale * p["pt"][sel],
                                             color=colour, alpha=0.7, lw=0,
                                             label=f"jet {rank + 1}: $p_T$ = {pt:.0f}, m = {mass:.0f} GeV"))
        if zoom is None:
            drawn["jets"] += _circle(ax, eta, phi, event.R, colour)
        elif rank == zoom:
            import matplotlib.patches as patches

            drawn["jets"].append(ax.add_patch(patches.Circle((eta, phi), event.R, fill=False, ls="--", lw=1.5,
                                                             color=colour)))
    if zoom is None:
        xlim, ylim = (-eta_max, eta_max), (-np.pi, np.pi)
    else:
        half = 1.5 * event.R
        xlim, ylim = (jet_eta - half, jet_eta + half), (jet_phi - half, jet_phi + half)
    if show_partons:
        keep = ((part["eta"] > xlim[0]) & (part["eta"] < xlim[1])
                & (parton_phis > ylim[0]) & (parton_phis < ylim[1]))
        drawn["partons"].append(ax.scatter(part["eta"][keep], parton_phis[keep], marker="x", s=60, color="k",
                                           lw=1.5, label="hard-process partons"))
        if zoom is not None:  # names only where there is room for them
            for name, eta, phi in zip(part["name"][keep], part["eta"][keep], parton_phis[keep]):
                drawn["partons"].append(ax.annotate(name, (eta, phi), xytext=(4, 4), textcoords="offset points",
                                                    fontsize=11))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(r"$\eta$")
    ax.set_ylabel(r"$\phi$ [rad]")
    if zoom is None:
        ax.legend(loc="upper left", fontsize=9, markerscale=0.4, framealpha=0.9)
    else:
        ax.set_aspect("equal")
    return drawn


def before_and_after(axes, event: Event, jet: int = 0, model: DetectorModel = DetectorModel(),
                     pt_scale: float = 6.0) -> dict[str, int]:
    """Jet ``jet`` of ``event`` before the detector (left axes) and after it (right axes).

    Left: the generator's visible particles within ±1.2 R of the jet axis; right: the tracks
    and calorimeter towers there, over the HCAL cell grid. Colours are the particle
    classes, marker area ∝ pT. Returns the number of particles and of candidates in the
    jet's cone, each split into charged and neutral.
    """
    from mlpp.plotting import jet_constituents

    _, jet_eta, jet_phi, _ = event.jets[jet]
    half = 1.2 * event.R
    counts = {}
    for ax, name, p in ((axes[0], "generator particles", event.generated),
                        (axes[1], "tracks and towers", event.particles)):
        d_eta, d_phi = p["eta"] - jet_eta, delta_phi(p["phi"], jet_phi)
        near = (np.abs(d_eta) < half) & (np.abs(d_phi) < half)
        jet_constituents(ax, d_eta[near], d_phi[near], p["pt"][near], classes=p["pid_class"][near], R=event.R,
                         center=(0.0, 0.0), scale=pt_scale)
        in_cone = np.hypot(d_eta, d_phi) < event.R
        counts[f"{name}: charged"] = int(np.count_nonzero(in_cone & (p["pid_class"] <= 2)))
        counts[f"{name}: neutral"] = int(np.count_nonzero(in_cone & (p["pid_class"] >= 3)))
        ax.set_title(f"{name}: {int(np.count_nonzero(in_cone))} in the cone", fontsize=13)
        ax.set(xlim=(-half, half), ylim=(-half, half), aspect="equal", xlabel=r"$\Delta\eta$",
               ylabel=r"$\Delta\phi$")
    cell_eta, cell_phi = model.cell("hcal")
    for k in range(-40, 41):  # the HCAL grid, in the jet's frame
        axes[1].axvline(k * cell_eta - jet_eta % cell_eta, color="0.85", lw=0.5, zorder=0)
        axes[1].axhline(k * cell_phi - (jet_phi + np.pi) % cell_phi, color="0.85", lw=0.5, zorder=0)
    return counts


def lego(ax, event: Event, n_jets: int = 2, bins: tuple[int, int] = (50, 40), eta_max: float = 5.0):
    """The classic lego plot: pT summed in η–φ cells, drawn as 3D bars (``ax`` must be a 3D axes).

    Cells are coloured by the jet (of the ``n_jets`` hardest) that holds most of their pT,
    grey otherwise. ``bins`` = (n_eta, n_phi). Returns the bar collection.
    """
    p = event.particles
    eta_edges = np.linspace(-eta_max, eta_max, bins[0] + 1)
    phi_edges = np.linspace(-np.pi, np.pi, bins[1] + 1)
    total, _, _ = np.histogram2d(p["eta"], p["phi"], bins=(eta_edges, phi_edges), weights=p["pt"])
    colours = np.full(total.shape, "0.6", dtype=object)
    best = np.zeros(total.shape)
    for rank in range(min(n_jets, len(event.jets))):
        sel = p["jet_index"] == rank
        in_jet, _, _ = np.histogram2d(p["eta"][sel], p["phi"][sel], bins=(eta_edges, phi_edges), weights=p["pt"][sel])
        better = in_jet > best
        colours[better] = JET_COLOURS[rank % len(JET_COLOURS)]
        best = np.maximum(best, in_jet)
    i, j = np.nonzero(total > 0)
    width_eta, width_phi = np.diff(eta_edges)[0], np.diff(phi_edges)[0]
    bars = ax.bar3d(eta_edges[i], phi_edges[j], np.zeros(len(i)), width_eta, width_phi, total[i, j],
                    color=list(colours[i, j]), shade=True)
    ax.set_xlim(-eta_max, eta_max)
    ax.set_ylim(-np.pi, np.pi)
    ax.set_xlabel(r"$\eta$", labelpad=8)
    ax.set_ylabel(r"$\phi$", labelpad=8)
    ax.set_zlabel(r"$p_T$ [GeV]", labelpad=8)
    return bars


def jet_view(ax, data: JetDataset, index: int, half_width: float = 0.9, legend: bool = True) -> list:
    """Constituents of jet ``index`` of ``data`` around its axis (Δη, Δφ), coloured by particle class.

    Marker area ∝ pT; a dashed circle of radius R (from ``data.meta``, else 0.8) marks the jet
    size; the title gives the class, the jet mass and the soft-drop mass. Returns the artists.
    """
    from mlpp.plotting import jet_constituents

    c, mask = data.constituents, data.constituents["mask"][index]
    pt, eta, phi, mass = data.jet[index]
    drawn = jet_constituents(ax, c["eta"][index, mask] - eta, delta_phi(c["phi"][index, mask], phi),
                             c["pt"][index, mask], classes=c["pid_class"][index, mask],
                             R=float(data.meta.get("R", 0.8)), center=(0.0, 0.0))
    if not legend:
        ax.get_legend().remove()
    title = f"{data.class_names[data.labels[index]]}: m = {mass:.0f} GeV"
    if "mass_mmdt" in data.feature_names:
        title += f", $m_{{SD}}$ = {data.feature('mass_mmdt')[index]:.0f} GeV"
    ax.set_title(title, fontsize=13)
    ax.set(xlim=(-half_width, half_width), ylim=(-half_width, half_width), aspect="equal",
           xlabel=r"$\Delta\eta$", ylabel=r"$\Delta\phi$")
    return drawn


def relative_resolutions(energies: np.ndarray, model: DetectorModel = DetectorModel()) -> dict[str, np.ndarray]:
    """Relative resolutions of ``model`` at ``energies`` (GeV), as :func:`apply_detector` smears.

    Returns ``{"track": σ_pT/pT (pT = energies), "ecal": σ_E/E, "hcal": σ_E/E}``, each
    shaped like ``energies``: a ⊕ b·pT for tracks, a/√E ⊕ b for the calorimeters.
    """
    energies = np.asarray(energies, dtype=float)
    return {
        "track": np.hypot(model.track_pt_resolution_const, model.track_pt_resolution_slope * energies),
        "ecal": np.hypot(model.ecal_stochastic / np.sqrt(energies), model.ecal_constant),
        "hcal": np.hypot(model.hcal_stochastic / np.sqrt(energies), model.hcal_constant),
    }


def detector_resolutions(ax, model: DetectorModel = DetectorModel(), energies: np.ndarray | None = None) -> list:
    """σ/pT of tracks and σ/E of the ECAL and HCAL against energy (log–log). Returns the lines."""
    energies = np.geomspace(1.0, 2000.0, 200) if energies is None else np.asarray(energies, dtype=float)
    res = relative_resolutions(energies, model)
    labels = {"track": r"tracker: $\sigma_{p_T}/p_T$ (charged)",
              "ecal": r"ECAL: $\sigma_E/E$ (photons, electrons)",
              "hcal": r"HCAL: $\sigma_E/E$ (neutral hadrons)"}
    colours = {"track": "tab:red", "ecal": "tab:green", "hcal": "tab:blue"}
    lines = []
    for key in ("track", "ecal", "hcal"):
        lines += ax.plot(energies, 100 * res[key], lw=2.5, color=colours[key], label=labels[key])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$p_T$ or $E$ [GeV]")
    ax.set_ylabel("relative resolution [%]")
    ax.legend(fontsize=11)
    return lines


def trigger_rates(ax, names: Sequence[str], rates_hz: Sequence[float],
                  latencies: Sequence[str] | None = None) -> list:
    """Event rate after each stage of a trigger chain, as bars on a log scale.

    ``names`` and ``rates_hz`` (Hz) per stage, first the collision rate; ``latencies`` an
    optional text per stage written above its bar. Returns the bar container and labels.
    """
    rates = np.asarray(rates_hz, dtype=float)
    x = np.arange(len(rates))
    bars = ax.bar(x, rates, color=["0.5", "tab:orange", "tab:blue", "tab:green", "tab:purple"][: len(rates)],
                  width=0.6)
    drawn = [bars]
    for i, rate in enumerate(rates):
        text = _hz(rate) + (f"\n{latencies[i]}" if latencies is not None and latencies[i] else "")
        drawn.append(ax.text(i, rate * 1.6, text, ha="center", va="bottom", fontsize=11))
    ax.set_yscale("log")
    ax.set_ylim(rates.min() / 10, rates.max() * 50)
    ax.set_xticks(x, names, fontsize=11)
    ax.set_ylabel("events per second")
    return drawn


def _hz(rate: float) -> str:
    for factor, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz"), (1.0, "Hz")):
        if rate >= factor:
            return f"{rate / factor:g} {unit}"
    return f"{rate:g} Hz"

