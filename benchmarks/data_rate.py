#!/usr/bin/env python
"""Event rate of bare Pythia against the course generator, for the same card, in one run.

The course generator (``mlpp.data.generate.generate_chunk``) adds the detector, FastJet
clustering and truth labelling to every event Pythia makes. This script measures, in
one process (one worker), how many events per CPU second each gets through, Pythia's
initialisation included in both, and prints the ratio, which must be at least 0.8.
CPU time (``time.process_time``) rather than wall time makes the ratio hold on a busy
machine too, where other processes take turns on the cores; run it on a quiet
machine to read the wall-clock rates as well.

The high-level features (N-subjettiness, energy correlators, soft drop: fastjet-contrib)
are a separate step of a dataset build, run on the kept jets only; their cost is
printed too, as the rate of the whole build chunk, so nobody is surprised by it.

    python benchmarks/data_rate.py --card top --class qcd --jets 500 --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

CLOCK = time.process_time  # CPU seconds of this process: insensitive to other load


def bare_pythia_rate(card, class_index: int, n_events: int, seed: int) -> float:
    """Events per second of Pythia alone (initialisation and ``nextBatch``, nothing else)."""
    from mlpp.data.generate import EVENTS_PER_BATCH, make_pythia

    start = CLOCK()
    pythia = make_pythia(card, class_index, seed)
    done = 0
    while done < n_events:
        done += len(pythia.nextBatch(min(EVENTS_PER_BATCH, n_events - done)))
    return done / (CLOCK() - start)


def course_rate(card, class_index: int, n_jets: int) -> tuple[float, int, float]:
    """Events per second of the course generator (Pythia → detector → FastJet → labels),
    the number of events, and the seconds the features of its jets take."""
    from mlpp.data.features import jet_features
    from mlpp.data.generate import generate_chunk

    start = CLOCK()
    out = generate_chunk(card, class_index, 0, n_jets)
    seconds = CLOCK() - start
    start = CLOCK()
    jet_features(out["pt"], out["eta"], out["phi"], out["e"], out["mask"], card.jets.R)
    return int(out["events"]) / seconds, int(out["events"]), CLOCK() - start


def measure(card_name: str, class_name: str | None, n_jets: int, repeats: int) -> dict:
    """Median rates over ``repeats`` alternating runs (init time excluded from both)."""
    from mlpp.data.cards import load_card
    from mlpp.data.generate import chunk_seed

    card = load_card(card_name)
    names = card.class_names
    class_index = names.index(class_name) if class_name else 0
    course, bare, with_features = [], [], []
    for _ in range(repeats):
        rate, events, feature_seconds = course_rate(card, class_index, n_jets)
        course.append(rate)
        with_features.append(events / (events / rate + feature_seconds))
        bare.append(bare_pythia_rate(card, class_index, events, chunk_seed(card.seed, class_index, 0)))
    return {"card": card_name, "class": names[class_index], "events": events, "jets": n_jets,
            "bare_rate": statistics.median(bare), "course_rate": statistics.median(course),
            "ratio": statistics.median(c / b for c, b in zip(course, bare)),
            "build_rate": statistics.median(with_features),
            "build_ratio": statistics.median(w / b for w, b in zip(with_features, bare))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", default="top", help="dataset card (default: top)")
    parser.add_argument("--class", dest="class_name", default=None, help="class of the card (default: the first)")
    parser.add_argument("--jets", type=int, default=500, help="jets per course run (default: 500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, median reported (default: 3)")
    args = parser.parse_args(argv)
    from mlpp import settings

    settings.limit_threads(1)
    result = measure(args.card, args.class_name, args.jets, args.repeats)
    print(f"card {result['card']}, class {result['class']}, {result['events']} events per run, "
          f"median of {args.repeats}, one worker")
    print(f"  bare Pythia      {result['bare_rate']:8.1f} events per CPU second")
    print(f"  course generator {result['course_rate']:8.1f} events per CPU second")
    print(f"  ratio            {result['ratio']:8.3f}  (required: >= 0.8)")
    print(f"  with the features of its {result['jets']} jets: {result['build_rate']:.1f} events per CPU second, "
          f"ratio {result['build_ratio']:.3f} (the features are a separate step)")
    return 0 if result["ratio"] >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
