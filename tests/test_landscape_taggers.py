"""The taggers the landscape page trains on `top` jets (lecture 4's models)."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp import landscape_taggers, metrics


def test_set_inputs_are_centred_energy_fractions(top):
    x = landscape_taggers.set_inputs(top.subset(slice(0, 50)), n_particles=20)
    assert x.shape == (50, 20, 3)
    z = x[..., 0]
    assert np.all(z >= 0) and np.all(z.sum(axis=1) <= 1 + 1e-12)
    # the pT-weighted centroid of all particles is at (0, 0); kept ones carry most of the pT
    full = landscape_taggers.set_inputs(top.subset(slice(0, 50)))
    assert np.allclose((full[..., :1] * full[..., 1:3]).sum(axis=1), 0.0, atol=1e-9)
    assert np.all(x[z == 0] == 0)


def test_expert_bdt_separates_top_from_qcd(top):
    train, test = top.subset(slice(0, 2000)), top.subset(slice(2000, 3000))
    result = landscape_taggers.expert_bdt(train, test)
    assert result.name == "BDT on 5 expert variables" and result.n_params > 200
    assert metrics.auc(test.labels, result.scores) > 0.85


def test_an_unknown_set_network_is_refused(top):
    with pytest.raises(ValueError, match="EFN"):
        landscape_taggers.energy_flow_network("LoLa", top, top, top, epochs=1)
