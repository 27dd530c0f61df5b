"""The ``top`` thread: hadronic top jets against QCD jets (Lectures 2–6 and the landscape page).

Every top tagger of the course is trained on the same jets and tested on the same jets, so
that their numbers can stand in one table: the ``top`` card split 50/10/40 into training,
validation and test jets, with the test set extended by the ``top_qcd`` sample (QCD jets of
the same generator with another seed, never used in training), because the best taggers
reject one QCD jet in a thousand or more. The test jets' fingerprint ties recorded scores
to exactly these jets::

    from mlpp.tasks import top
    train, val, test = top.split()               # JetDatasets; test includes top_qcd
    landscape.record(result, test, lecture="05")

``load_smeared`` gives the same physics through a worse detector (the ``top_smeared`` card), for
dataset-shift tests: taggers trained on ``top`` are evaluated on it, never trained.
"""
from __future__ import annotations

import hashlib

import numpy as np

from mlpp import settings
from mlpp.data import JetDataset

CARD = "top"
#: The extra QCD jets that only ever serve as test jets.
EXTRA_QCD_CARD = "top_qcd"
#: The physics of ``top`` through a worse detector (datasets/top_smeared.yml): test jets only.
SMEARED_CARD = "top_smeared"
#: Training, validation and test fractions of the ``top`` card (stored in a seeded random order).
SPLIT: tuple[float, float, float] = (0.5, 0.1, 0.4)
#: The cards that functions of the thread load besides :data:`CARD`: 'mlpp data generate --needed'
#: generates one for a notebook that calls its function (:func:`mlpp.data.cli.needed_cards`).
CALL_CARDS: dict[str, str] = {"split": EXTRA_QCD_CARD, "load_smeared": SMEARED_CARD}


def load(tier: str | None = None) -> JetDataset:
    """The ``top`` dataset of ``tier`` (default ``$MLPP_TIER``), generated on first use."""
    from mlpp import data

    return data.load(CARD, tier=settings.tier(tier))


def load_smeared(tier: str | None = None) -> JetDataset:
    """The ``top_smeared`` jets of ``tier``: the generator, jets and classes of ``top`` with another
    seed, seen by a worse detector (the card's ``detector:`` block). Labels mean what they mean in ``top``."""
    from mlpp import data

    jets = data.load(SMEARED_CARD, tier=settings.tier(tier))
    expected = data.load_card(CARD).class_names
    if list(jets.class_names) != expected:
        raise ValueError(f"{SMEARED_CARD} has the classes {list(jets.class_names)} but {CARD} has {expected}: "
                         f"its labels would not mean the same; give both cards the same classes")
    return jets


def split(jets: JetDataset | None = None, tier: str | None = None) -> tuple[JetDataset, JetDataset, JetDataset]:
    """Training, validation and test jets; the test jets include every ``top_qcd`` jet.

    ``jets`` defaults to :func:`load` of ``tier``; the extra QCD jets come from the same tier.
    With ``$MLPP_TRAIN_JETS`` set (learning curves, ``benchmarks/learning_curves.py``) only the
    first that many training jets are kept: a random subset, since the jets are stored in a
    seeded random order, and nested (the 10 000 are among the 30 000).
    """
    from mlpp import data

    jets = load(tier) if jets is None else jets
    if jets.name != CARD:
        raise ValueError(f"top.split needs the {CARD!r} dataset, not {jets.name!r}")
    train, val, test = jets.split(SPLIT)
    wanted = settings.training_jets()
    if wanted is not None:
        if wanted > len(train):
            raise ValueError(f"MLPP_TRAIN_JETS={wanted} but the {jets.meta.get('tier', '')} tier has only "
                             f"{len(train)} training jets: ask for fewer, or use the full tier")
        train = train.subset(slice(0, wanted))
    extra = data.load(EXTRA_QCD_CARD, tier=jets.meta.get("tier", settings.tier(tier)))
    return train, val, test.concatenate(extra)


def fingerprint(test: JetDataset) -> str:
    """16 hex digits that identify the test jets (their kinematics and labels, in order)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(test.labels, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(test.jet, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]
