"""How the sample result rule (worker.serving.results) behaves on whole patients of the model's split.

    python -m worker.tools.patient_results --data ../shared/datasets/nih-malaria-cells [--split validation]

Each patient's cells are treated as one sample: the engine classifies them, the rule gives a result,
and the table shows it beside the truth (a patient with any parasitized cell is infected). Used to set
the rule's thresholds on validation patients and to report them on test patients (docs/results.md).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from worker.serving.engine import PARASITIZED, CellClassification, get_classifier
from worker.serving.results import CellTally, automatic_result
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
    rows = []
    for patient, cells in sorted(by_patient.items()):
        results = [
            r for r in classifier.classify([c.path.read_bytes() for c in cells]) if isinstance(r, CellClassification)
        ]
        parasitized = sum(r.label == PARASITIZED for r in results)
        tally = CellTally(
            classified=len(results),
            parasitized=parasitized,
            uncertain=sum(r.uncertain for r in results),
            confident_parasitized=sum(r.label == PARASITIZED and not r.uncertain for r in results),
            uncertain_uninfected=sum(r.label != PARASITIZED and r.uncertain for r in results),
        )
        infected = any(c.label == 1 for c in cells)
        result = automatic_result(tally)
        outcomes[(("infected" if infected else "healthy"), result)] += 1
        true_share = sum(c.label for c in cells) / len(cells)
        confident = tally.confident_parasitized / tally.classified
        worst = (tally.parasitized + tally.uncertain_uninfected) / tally.classified
        rows.append((patient, infected, len(cells), true_share, parasitized / len(results), confident, worst, result))
    print(f"{'patient':8} {'truth':8} {'cells':>5} {'true %':>7} {'model %':>7} {'sure %':>7} {'worst %':>7}  result")
    for patient, infected, n, true_share, share, confident, worst, result in rows:
        truth = "infected" if infected else "healthy"
        print(f"{patient:8} {truth:8} {n:5d} {true_share:7.1%} {share:7.1%} {confident:7.1%} {worst:7.1%}  {result}")
    print(json.dumps({f"{truth}->{result}": n for (truth, result), n in sorted(outcomes.items())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
