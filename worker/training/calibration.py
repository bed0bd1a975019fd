"""Turning logits into calibrated probabilities, a decision threshold and an "uncertain" band.

All three are fitted on validation patients only and stored in the model card (training only: SciPy and
scikit-learn are the `training` extra). Serving applies the temperature with worker.serving.calibration.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

# The band around the threshold is widened until the cells outside it are classified at least this
# accurately on validation, but never so far that more than MAX_UNCERTAIN of the cells fall inside.
TARGET_CONFIDENT_ACCURACY = 0.995
MAX_UNCERTAIN = 0.08


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T minimising validation negative log-likelihood."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        # log(1 + e^z) - y z, computed stably
        return float(np.mean(np.logaddexp(0.0, z) - labels * z))

    result = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(result.x))


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The probability threshold maximising balanced accuracy (sensitivity + specificity) / 2."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels).astype(bool)
    candidates = np.unique(np.concatenate([[0.5], probabilities]))
    best, best_score = 0.5, -1.0
    positives, negatives = max(labels.sum(), 1), max((~labels).sum(), 1)
    for threshold in candidates:
        predicted = probabilities >= threshold
        score = (predicted & labels).sum() / positives + (~predicted & ~labels).sum() / negatives
        # Ties go to the threshold nearest 0.5, which keeps the calibrated meaning simple.
        if score > best_score + 1e-12 or (abs(score - best_score) <= 1e-12 and abs(threshold - 0.5) < abs(best - 0.5)):
            best, best_score = float(threshold), score
    lower = probabilities[probabilities < best]
    if best not in probabilities or lower.size == 0:
        return best
    # The best threshold is a cell's own probability; move it halfway down to the next one (same calls),
    # off the cell, where float noise between runtimes cannot flip it.
    return halfway_above(probabilities, float(lower.max()))


def choose_uncertain_band(
    probabilities: np.ndarray, labels: np.ndarray, threshold: float, *, balanced: bool = False
) -> tuple[float, float]:
    """Narrowest band [low, high] around the threshold that leaves the confident cells accurate enough.

    balanced: weigh both classes equally, for cells of a field where infected ones are 1 in 100: there
    "99.5 % right" would otherwise be met by calling everything uninfected.
    """
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels).astype(bool)
    weights = np.ones(len(labels))
    if balanced and 0 < labels.sum() < len(labels):
        weights = np.where(labels, 0.5 / labels.sum(), 0.5 / (~labels).sum()) * len(labels)
    correct = (probabilities >= threshold) == labels
    distance = np.abs(probabilities - threshold)
    chosen = 0.0
    for width in np.linspace(0.0, 0.5, 501):
        outside = distance > width
        if weights[outside].sum() < (1.0 - MAX_UNCERTAIN) * weights.sum():
            break
        chosen = float(width)
        if np.average(correct[outside], weights=weights[outside]) >= TARGET_CONFIDENT_ACCURACY:
            break
    return max(0.0, threshold - chosen), min(1.0, threshold + chosen)


def threshold_for_specificity(probabilities: np.ndarray, labels: np.ndarray, specificity: float) -> float:
    """The lowest threshold (the most sensitive) at which at least `specificity` of the negatives are right."""
    negatives = np.sort(np.asarray(probabilities)[~np.asarray(labels).astype(bool)])
    allowed = int(np.floor(len(negatives) * (1.0 - specificity)))  # negatives that may be called positive
    if allowed >= len(negatives):
        return 0.0
    # Everything strictly above the (allowed+1)-th highest negative: at most `allowed` negatives are >= it.
    boundary = negatives[len(negatives) - allowed - 1]
    return halfway_above(np.asarray(probabilities), boundary)


def halfway_above(probabilities: np.ndarray, boundary: float) -> float:
    """A threshold just above `boundary`: halfway to the next higher probability, so it calls these cells as
    any threshold in that gap would, and the float noise between runtimes (LiteRT and Keras differ by about
    1e-7) cannot carry a validation cell across it, as one float step above `boundary` would."""
    higher = probabilities[probabilities > boundary]
    if higher.size == 0:
        return float(np.nextafter(boundary, np.inf))
    return float((boundary + higher.min()) / 2)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the Parasitized probability over equal-width bins."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(probabilities[members].mean() - labels[members].mean())
    return float(total)


def risk_coverage(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """How the cells the model is surest of fare as more of them are set aside for a human.

    Cells are ordered by their distance from the threshold, surest first; for every coverage k / n (the k
    surest cells kept, the rest in an uncertain band) the accuracy, sensitivity and specificity of the kept
    cells. Ties in distance are kept or set aside together by position, which at these sample sizes is noise.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.abs(probabilities - threshold), kind="stable")
    correct = ((probabilities >= threshold) == labels)[order]
    positive = labels[order]
    kept = np.arange(1, len(labels) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "coverage": kept / len(labels),
            "accuracy": np.cumsum(correct) / kept,
            "sensitivity": np.cumsum(correct & positive) / np.cumsum(positive),
            "specificity": np.cumsum(correct & ~positive) / np.cumsum(~positive),
        }


# Shares of cells kept (the rest set aside as uncertain) at which the accuracy is reported.
COVERAGES = (0.8, 0.9, 0.95)


def accuracy_at_coverage(probabilities: np.ndarray, labels: np.ndarray, threshold: float, coverage: float) -> float:
    """Accuracy on the `coverage` share of cells the model is surest of (at least one cell)."""
    curve = risk_coverage(probabilities, labels, threshold)
    k = max(1, int(np.floor(coverage * len(curve["accuracy"]))))
    return float(curve["accuracy"][k - 1])


def sensitivity_at_specificity(probabilities: np.ndarray, labels: np.ndarray, specificity: float) -> float:
    """Sensitivity at the most sensitive threshold that keeps at least `specificity` of the negatives right."""
    labels = np.asarray(labels).astype(bool)
    threshold = threshold_for_specificity(probabilities, labels, specificity)
    return float((np.asarray(probabilities)[labels] >= threshold).mean()) if labels.any() else float("nan")


def cell_metrics(probabilities: np.ndarray, labels: np.ndarray, threshold: float, band: tuple[float, float]) -> dict:
    """The figures we report for a set of cells (labels: 1 = Parasitized)."""
    from sklearn.metrics import roc_auc_score

    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    predicted = probabilities >= threshold
    tp = int((predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    n = len(labels)

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    precision, sensitivity = ratio(tp, tp + fp), ratio(tp, tp + fn)
    uncertain = (probabilities >= band[0]) & (probabilities <= band[1])
    return {
        "n": n,
        "accuracy": ratio(tp + tn, n),
        "sensitivity": sensitivity,
        "specificity": ratio(tn, tn + fp),
        "precision": precision,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "auc": float(roc_auc_score(labels, probabilities)) if 0 < labels.sum() < n else float("nan"),
        "ece": expected_calibration_error(probabilities, labels),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "uncertain_fraction": float(uncertain.mean()),
        "confident_accuracy": ratio(int(((predicted == labels) & ~uncertain).sum()), int((~uncertain).sum())),
        # Issue 9's risk-coverage figures: what a reviewer's band of a given width leaves to the model.
        "accuracy_at_coverage": {str(c): accuracy_at_coverage(probabilities, labels, threshold, c) for c in COVERAGES},
        "sensitivity_at_specificity_0995": sensitivity_at_specificity(probabilities, labels, 0.995)
        if 0 < labels.sum() < n
        else float("nan"),
    }
