"""Measure a model on any folder of labelled cells, the way it is served: encoded bytes through the engine.

Writes a classification report, metrics.json and plots (ROC, confusion matrix, reliability diagram) to an
output folder; returns the metrics that the command prints as its last line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from worker.serving.engine import CellClassification, CellClassifier
from worker.serving.model_card import load_model_card
from worker.training.calibration import COVERAGES, cell_metrics, risk_coverage
from worker.training.dataset import LABELS, list_cells


def evaluate(*, data: str, model_dir: str, out: str, split: str = "all") -> dict:
    card = load_model_card(model_dir)
    classifier = CellClassifier(card)
    cells = list_cells(data)
    if split != "all":
        patients = set(card.data["training_data"]["patients"][split])
        cells = [cell for cell in cells if cell.patient in patients]
        if not cells:
            raise SystemExit(f"no cells of the model's {split} patients in {data}")
    results = []
    for start in range(0, len(cells), 1024):
        chunk = cells[start : start + 1024]
        results.extend(classifier.classify([cell.path.read_bytes() for cell in chunk]))
    failed = [(cell, r) for cell, r in zip(cells, results, strict=True) if not isinstance(r, CellClassification)]
    kept = [(cell, r) for cell, r in zip(cells, results, strict=True) if isinstance(r, CellClassification)]
    labels = np.array([cell.label for cell, _ in kept])
    probabilities = np.array([r.probability for _, r in kept])
    metrics = cell_metrics(probabilities, labels, card.threshold, card.uncertain_band)
    metrics.update(
        {
            "threshold": card.threshold,
            "uncertain_band": list(card.uncertain_band),
            "model_version": card.version,
            "patients": len({cell.patient for cell, _ in kept}),
            "unreadable": len(failed),
            "split": split,
        }
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_report(folder, labels, probabilities, card.threshold, metrics, failed)
    write_plots(folder, labels, probabilities, card.threshold)
    return metrics


def write_report(folder: Path, labels, probabilities, threshold, metrics, failed) -> None:
    from sklearn.metrics import classification_report

    predicted = (probabilities >= threshold).astype(int)
    report = classification_report(
        labels, predicted, labels=[0, 1], target_names=list(LABELS), digits=4, zero_division=0
    )
    lines = [report, ""]
    lines += [f"{key}: {value}" for key, value in metrics.items()]
    lines += [f"unreadable: {cell.path.name}: {failure.error}" for cell, failure in failed]
    (folder / "classification_report.txt").write_text("\n".join(lines) + "\n")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def write_plots(folder: Path, labels, probabilities, threshold) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    if 0 < labels.sum() < len(labels):
        figure, axis = plt.subplots(figsize=(5, 5))
        RocCurveDisplay.from_predictions(labels, probabilities, ax=axis, name="Parasitized")
        axis.set_title("ROC curve")
        figure.savefig(folder / "roc.png", dpi=120, bbox_inches="tight")
        plt.close(figure)

    figure, axis = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        labels,
        (probabilities >= threshold).astype(int),
        labels=[0, 1],
        display_labels=list(LABELS),
        ax=axis,
        colorbar=False,
    )
    axis.set_title(f"Confusion matrix (threshold {threshold:.3f})")
    figure.savefig(folder / "confusion_matrix.png", dpi=120, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(5, 5))
    CalibrationDisplay.from_predictions(labels, probabilities, n_bins=15, ax=axis, name="calibrated")
    axis.set_title("Reliability diagram")
    figure.savefig(folder / "reliability.png", dpi=120, bbox_inches="tight")
    plt.close(figure)

    curve = risk_coverage(probabilities, labels, threshold)
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for key in ("accuracy", "sensitivity", "specificity"):
        axis.plot(curve["coverage"], curve[key], label=key)
    for coverage in COVERAGES:
        axis.axvline(coverage, color="0.85", linewidth=0.8, zorder=0)
    axis.set_xlim(0.5, 1.0)
    axis.set_ylim(max(0.8, float(np.nanmin(curve["accuracy"][len(labels) // 2 :])) - 0.02), 1.001)
    axis.set_xlabel("coverage: share of cells kept, surest first (the rest go to a human)")
    axis.set_ylabel("share right among the kept cells")
    axis.set_title("Risk-coverage")
    axis.legend(loc="lower left")
    figure.savefig(folder / "risk_coverage.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
