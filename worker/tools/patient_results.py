"""How the sample result rule (worker.serving.results) behaves on whole patients of the model's split.

    python -m worker.tools.patient_results --data ../shared/datasets/nih-malaria-cells [--split validation]

Each patient's cells are treated as one sample: the engine classifies them, the rule gives a result with its
reason, and the table shows it beside the truth (a patient with any parasitized cell is infected). It also
prints, over the split's uninfected cells, how many the classifier called parasitized outside the uncertain
band ("confident") and how many it called parasitized or uncertain ("suspect"): on validation patients these
match the rates training wrote into the model card, which the rule uses (docs/results.md); on test patients
they are only reported.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from worker.serving.engine import PARASITIZED, CellClassification, get_classifier
from worker.serving.results import CellTally, sample_result
from worker.training.dataset import list_cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/nih-malaria-cells")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    args = parser.parse_args(argv)
    classifier = get_classifier()
    patients = set(classifier.card.data["training_data"]["patients"][args.split])
    by_patient = collections.defaultdict(list)
    for cell in list_cells(args.data):
        if cell.patient in patients:
            by_patient[cell.patient].append(cell)
    outcomes = collections.Counter()
    uninfected = collections.Counter()
    rows = []
    for patient, cells in sorted(by_patient.items()):
        pairs = [
            (cell, r)
            for cell, r in zip(cells, classifier.classify([c.path.read_bytes() for c in cells]), strict=True)
            if isinstance(r, CellClassification)
        ]
        results = [r for _, r in pairs]
        for cell, r in pairs:
            if cell.label == 0:
                uninfected["cells"] += 1
                uninfected["confident"] += r.label == PARASITIZED and not r.uncertain
                uninfected["suspect"] += r.label == PARASITIZED or r.uncertain
        tally = CellTally(
            classified=len(results),
            parasitized=sum(r.label == PARASITIZED for r in results),
            uncertain=sum(r.uncertain for r in results),
            confident_parasitized=sum(r.label == PARASITIZED and not r.uncertain for r in results),
            uncertain_uninfected=sum(r.label != PARASITIZED and r.uncertain for r in results),
        )
        infected = any(c.label == 1 for c in cells)
        outcome = sample_result(tally, classifier.card.rule_rates)
        outcomes[(("infected" if infected else "healthy"), outcome.result)] += 1
        true_share = sum(c.label for c in cells) / len(cells)
        confident = tally.confident_parasitized / tally.classified
        rows.append((patient, infected, len(cells), true_share, outcome, confident))
    header = ("patient", "truth", "cells", "true %", "model %", "95 % interval", "sure %")
    print("{:8} {:8} {:>5} {:>7} {:>7} {:>15} {:>7}  result".format(*header))
    for patient, infected, n, true_share, outcome, confident in rows:
        truth = "infected" if infected else "healthy"
        interval = f"{outcome.parasitemia_low:6.1%}-{outcome.parasitemia_high:6.1%}"
        print(
            f"{patient:8} {truth:8} {n:5d} {true_share:7.1%} {outcome.parasitemia:7.1%} {interval:>15} "
            f"{confident:7.1%}  {outcome.result}: {outcome.reason}"
        )
    summary = {f"{truth}->{result}": n for (truth, result), n in sorted(outcomes.items())}
    summary["uninfected_cells"] = uninfected["cells"]
    summary["uninfected_confident_parasitized"] = uninfected["confident"]
    summary["uninfected_suspect"] = uninfected["suspect"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
