"""The automatic result of a sample, from its classified cells. See docs/results.md for the reasoning.

The cell classifier is wrong on a few percent of cells, so one parasitized call is not a positive smear.
The thresholds were set on validation patients (docs/results.md).
A sample is
- positive when the confidently parasitized cells reach POSITIVE_PARASITEMIA of the classified cells
  (and at least POSITIVE_MIN_CELLS of them);
- negative when enough cells were classified and even counting every uncertain cell as parasitized
  the parasitemia stays under NEGATIVE_PARASITEMIA;
- indeterminate otherwise (too few cells, or too many borderline ones): a reviewer must look.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CELLS_FOR_RESULT = 20
POSITIVE_PARASITEMIA = 0.025
POSITIVE_MIN_CELLS = 2
NEGATIVE_PARASITEMIA = 0.05


@dataclass(frozen=True)
class CellTally:
    classified: int
    parasitized: int
    uncertain: int
    confident_parasitized: int
    uncertain_uninfected: int


def parasitemia(tally: CellTally) -> float | None:
    return tally.parasitized / tally.classified if tally.classified else None


def automatic_result(tally: CellTally) -> str:
    """'' while nothing is classified, else 'positive', 'negative' or 'indeterminate'."""
    if tally.classified == 0:
        return ""
    confident_share = tally.confident_parasitized / tally.classified
    if tally.confident_parasitized >= POSITIVE_MIN_CELLS and confident_share >= POSITIVE_PARASITEMIA:
        return "positive"
    if tally.classified < MIN_CELLS_FOR_RESULT:
        return "indeterminate"
    worst_case = (tally.parasitized + tally.uncertain_uninfected) / tally.classified
    if worst_case < NEGATIVE_PARASITEMIA:
        return "negative"
    return "indeterminate"
