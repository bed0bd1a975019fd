"""Patient-grouped cross-validation: which recipe wins, with intervals wide enough to tell.

    python -m worker.training crossvalidate --data DIR --method NAME [--folds 5] [--seeds 2] [recipe flags]
    python -m worker.training crossvalidate-score --methods baseline,ema,... [--reference baseline]

30 test patients cannot tell 96.2 % from 96.8 %, so every choice of recipe is made here and the test
patients are kept for the final figures. The development patients (train and validation of the shipped
split; never test) are dealt into folds by patient, infected and healthy patients spread evenly
(scikit-learn's StratifiedKFold over patients). For each seed and fold a network is fitted with the
recipe on the other folds' patients and predicts the held-out fold, plainly and under the 8 exact
symmetries of a square (flips and quarter turns): test-time augmentation is thereby measured on the same
networks at no extra training. The out-of-fold logits are saved so that any combination (recipes
averaged into an ensemble, augmentation variants) is scored afterwards without training again.

Scoring is cross-fitted: the temperature, threshold and band for the cells of one fold are fitted on the
other folds' out-of-fold predictions, as the shipped model's are fitted on patients it did not train on.
95 % intervals come from resampling patients (a patient's cells stay together); a difference between two
methods is resampled paired (the same patients for both), which is what tells methods apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.serving.calibration import calibrated_probability
from worker.serving.preprocessing import to_network_input
from worker.training.calibration import (
    choose_threshold,
    choose_uncertain_band,
    fit_temperature,
    threshold_for_specificity,
)
from worker.training.dataset import cached_arrays, list_cells, split_patients
from worker.training.soft_targets import disputed, soft_targets

SYMMETRIES = 8  # the dihedral group of the square: 4 quarter turns, each plain and mirrored
COVERAGE = 0.9
BOOTSTRAP_SAMPLES = 1000
# What the table reports, in this order; the first four are resampled for intervals.
RESAMPLED = ("auc", "sensitivity", "specificity", "accuracy_at_coverage_0.9", "ece", "accuracy")


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold logits of one method: (seeds, cells, SYMMETRIES), index 0 of the last axis untransformed."""

    name: str
    logits: np.ndarray
    labels: np.ndarray
    patients: np.ndarray
    folds: np.ndarray
    recipe: dict

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.npz"
        np.savez_compressed(
            path,
            logits=self.logits,
            labels=self.labels,
            patients=self.patients,
            folds=self.folds,
            recipe=json.dumps(self.recipe),
        )
        return path

    @classmethod
    def load(cls, folder: Path, name: str) -> OutOfFold:
        with np.load(folder / f"{name}.npz") as stored:
            return cls(
                name=name,
                logits=stored["logits"],
                labels=stored["labels"],
                patients=stored["patients"],
                folds=stored["folds"],
                recipe=json.loads(str(stored["recipe"])),
            )


def patient_folds(patients: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per cell: whole patients per fold, infected and healthy patients spread evenly."""
    from sklearn.model_selection import StratifiedKFold

    names = np.array(sorted(set(patients.tolist())))
    infected = np.array([labels[patients == name].any() for name in names])
    fold_of: dict[str, int] = {}
    for fold, (_, held_out) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(names, infected)):
        fold_of.update({name: fold for name in names[held_out]})
    return np.array([fold_of[p] for p in patients])


def symmetric_views(x: np.ndarray) -> list[np.ndarray]:
    """The 8 images an exact symmetry of the square makes of each cell (the first is the cell itself)."""
    turned = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    return turned + [view[:, :, ::-1] for view in turned]


def crossvalidate(args: argparse.Namespace) -> OutOfFold:
    import keras
    import tensorflow as tf

    from worker.training.train import fit_network, predict_logits, training_stream

    tf.config.experimental.enable_op_determinism()
    cells = list_cells(args.data)
    split = split_patients(cells, seed=args.split_seed)
    development = sorted(split["train"] | split["validation"])
    images, labels = cached_arrays(cells, args.size)
    patients = np.array([cell.patient for cell in cells])
    keep = np.isin(patients, development)
    images, labels, patients = images[keep], labels[keep], patients[keep]
    folds = patient_folds(patients, labels, args.folds, args.fold_seed)
    print(
        f"cross-validation '{args.method}': {len(labels)} cells of {len(development)} development patients, "
        f"{args.folds} folds x {args.seeds} seeds, {args.epochs} epochs each",
        flush=True,
    )
    logits = np.zeros((args.seeds, len(labels), SYMMETRIES), np.float32)
    started = time.monotonic()
    base_seed = args.seed
    for s in range(args.seeds):
        for fold in range(args.folds):
            args.seed = base_seed + 1000 * s
            keras.utils.set_random_seed(args.seed + fold)
            fitting = folds != fold
            x, targets = images[fitting], labels[fitting]
            if args.soft_targets > 0 or args.drop_disputed > 0:
                teachers = cached_teacher_logits(args, x, targets, folds[fitting], fold, started)
                if args.drop_disputed > 0:
                    kept = ~disputed(targets, teachers, args.drop_disputed)
                    x, targets, teachers = x[kept], targets[kept], teachers[kept]
                    print(f"fold {fold}: {int((~kept).sum())} disputed cells left out of training", flush=True)
                if args.soft_targets > 0:
                    targets = soft_targets(targets, teachers, args.soft_targets)
                keras.utils.set_random_seed(args.seed + fold)
            stream, steps = training_stream(args, x, targets)
            # --max-minutes guards each network, not the whole run: a run past it must not cut later folds short.
            model, _ = fit_network(args, stream, steps, started=time.monotonic())
            held_out = to_network_input(images[~fitting])
            for v, view in enumerate(symmetric_views(held_out)):
                logits[s, ~fitting, v] = predict_logits(model, np.ascontiguousarray(view))
            print(
                f"seed {s} fold {fold}: {int((~fitting).sum())} held-out cells, "
                f"{(time.monotonic() - started) / 60:.1f} min",
                flush=True,
            )
            keras.backend.clear_session()
    args.seed = base_seed
    recipe = {
        key: getattr(args, key)
        for key in ("size", "stem", "dropout", "epochs", "batch_size", "learning_rate", "weight_decay")
        + (
            "ema",
            "label_smoothing",
            "mixup",
            "soft_targets",
            "drop_disputed",
            "seed",
            "folds",
            "seeds",
            "fold_seed",
            "split_seed",
        )
    }
    recipe["stages"] = [list(stage) for stage in args.stages]
    recipe["minutes"] = round((time.monotonic() - started) / 60, 1)
    result = OutOfFold(args.method, logits, labels, patients, folds, recipe)
    print(f"saved {result.save(Path(args.out))}", flush=True)
    return result


def cached_teacher_logits(args, images, labels, groups, fold: int, started: float) -> np.ndarray:
    """Teachers for the cells outside `fold`, nested: each fitted on the other training folds only, so no
    teacher has seen the held-out fold. Kept on disk by recipe and cells, so several alphas share one set."""
    from worker.training.soft_targets import teacher_logits

    recipe = {
        key: str(getattr(args, key))
        for key in ("size", "stem", "stages", "dropout", "epochs", "batch_size", "learning_rate", "weight_decay")
        + ("ema", "label_smoothing", "mixup", "seed", "folds", "fold_seed", "split_seed")
    }
    # The cells too, so a cache left by another data folder is never taken for this one's.
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for array in (images, labels, groups):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()[:12]
    path = Path(args.out) / f"teachers-{key}-fold{fold}.npy"
    if path.exists():
        return np.load(path)
    logits = teacher_logits(args, images, labels, groups, started=started)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, logits)
    return logits


# Scoring


@dataclass(frozen=True)
class Decisions:
    """Per cell: calibrated probability and the threshold and band fitted without its fold."""

    probability: np.ndarray
    threshold: np.ndarray
    low: np.ndarray
    high: np.ndarray


def cross_fitted(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> Decisions:
    """Temperature, threshold and band for each fold fitted on the other folds' out-of-fold predictions."""
    n = len(labels)
    probability, threshold, low, high = (np.zeros(n) for _ in range(4))
    for fold in np.unique(folds):
        mine, others = folds == fold, folds != fold
        temperature = fit_temperature(logits[others], labels[others])
        fitted = calibrated_probability(logits[others], temperature)
        t = choose_threshold(fitted, labels[others])
        band = choose_uncertain_band(fitted, labels[others], t)
        probability[mine] = calibrated_probability(logits[mine], temperature)
        threshold[mine], low[mine], high[mine] = t, band[0], band[1]
    return Decisions(probability, threshold, low, high)


def combined_logits(view_logits: np.ndarray, labels: np.ndarray, folds: np.ndarray, variant: str) -> np.ndarray:
    """One logit per cell from its 8 symmetric views: 'plain', 'tta8' (mean of all 8), 'tta8-band' (mean
    only for cells inside the cross-fitted uncertain band, as serving would do to keep its speed)."""
    plain = view_logits[:, 0]
    if variant == "plain":
        return plain
    averaged = view_logits.mean(axis=1)
    if variant == "tta8":
        return averaged
    if variant == "tta8-band":
        decisions = cross_fitted(plain, labels, folds)
        inside = (decisions.probability >= decisions.low) & (decisions.probability <= decisions.high)
        return np.where(inside, averaged, plain)
    raise ValueError(f"unknown variant {variant!r}")


def weighted_metrics(decisions: Decisions, labels: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """The table's figures for cells counted `weights` times (a bootstrap resample of patients)."""
    from sklearn.metrics import roc_auc_score

    from worker.training.calibration import expected_calibration_error

    positive = labels.astype(bool)
    p, w = decisions.probability, weights.astype(np.float64)
    called = p >= decisions.threshold
    correct = called == positive
    distance = np.abs(p - decisions.threshold)
    order = np.argsort(-distance, kind="stable")
    kept = np.cumsum(w[order])
    k = int(np.searchsorted(kept, COVERAGE * kept[-1]))
    surest = order[: k + 1]
    repeated = np.repeat(np.arange(len(p)), weights.astype(int)) if w.max() > 1 or w.min() < 1 else slice(None)
    return {
        "auc": float(roc_auc_score(positive, p, sample_weight=w)),
        "sensitivity": float(np.average(called[positive], weights=w[positive])),
        "specificity": float(np.average(~called[~positive], weights=w[~positive])),
        "accuracy": float(np.average(correct, weights=w)),
        "accuracy_at_coverage_0.9": float(np.average(correct[surest], weights=w[surest])),
        "ece": expected_calibration_error(p[repeated], positive[repeated]),
    }


def score(methods: list[OutOfFold], *, variant: str = "plain", samples: int = BOOTSTRAP_SAMPLES, seed: int = 0):
    """Point figures and 95 % patient-resampled intervals of a method (several: their averaged logits, an
    ensemble), averaged over seeds. Returns (figures, resampled figures (samples, metrics))."""
    first = methods[0]
    labels, folds, patients = first.labels, first.folds, first.patients
    for other in methods[1:]:
        if not (np.array_equal(other.patients, patients) and np.array_equal(other.folds, folds)):
            raise ValueError(f"{other.name} was cross-validated on other cells or folds than {first.name}")
    seeds = min(m.logits.shape[0] for m in methods)
    decisions = []
    for s in range(seeds):
        views = np.mean([m.logits[s] for m in methods], axis=0)
        decisions.append(cross_fitted(combined_logits(views, labels, folds, variant), labels, folds))
    ones = np.ones(len(labels))
    point = _mean_over_seeds([weighted_metrics(d, labels, ones) for d in decisions])
    point["sensitivity_at_specificity_0995"] = float(
        np.mean(
            [
                (d.probability[labels == 1] >= threshold_for_specificity(d.probability, labels, 0.995)).mean()
                for d in decisions
            ]
        )
    )
    point["uncertain_fraction"] = float(
        np.mean([((d.probability >= d.low) & (d.probability <= d.high)).mean() for d in decisions])
    )
    names, index = np.unique(patients, return_inverse=True)
    rng = np.random.default_rng(seed)
    resampled = np.zeros((samples, len(RESAMPLED)))
    for b in range(samples):
        drawn = np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))
        weights = drawn[index].astype(np.float64)
        chosen = weights > 0
        figures = _mean_over_seeds(
            [
                weighted_metrics(
                    Decisions(d.probability[chosen], d.threshold[chosen], d.low[chosen], d.high[chosen]),
                    labels[chosen],
                    weights[chosen],
                )
                for d in decisions
            ]
        )
        resampled[b] = [figures[key] for key in RESAMPLED]
    return point, resampled


def _mean_over_seeds(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def score_command(args: argparse.Namespace) -> dict:
    folder = Path(args.out)
    entries = [entry.strip() for entry in args.methods.split(",") if entry.strip()]
    reference_point = reference_resampled = None
    rows = []
    for entry in [args.reference, *[e for e in entries if e != args.reference]]:
        name, _, variant = entry.partition("@")
        methods = [OutOfFold.load(folder, part) for part in name.split("+")]
        point, resampled = score(methods, variant=variant or "plain", samples=args.samples)
        row = {
            "method": entry,
            "seeds": min(m.logits.shape[0] for m in methods),
            "minutes": round(sum(m.recipe.get("minutes", 0.0) for m in methods), 1),
            **{key: round(value, 5) for key, value in point.items()},
            "intervals": {key: [round(v, 5) for v in interval(resampled[:, i])] for i, key in enumerate(RESAMPLED)},
        }
        if reference_resampled is None:
            reference_point, reference_resampled = point, resampled
        else:
            row["difference_from_reference"] = {
                key: {
                    "value": round(point[key] - reference_point[key], 5),
                    "interval": [round(v, 5) for v in interval(resampled[:, i] - reference_resampled[:, i])],
                }
                for i, key in enumerate(RESAMPLED)
            }
        rows.append(row)
        print(_table_line(row), flush=True)
    result = {"reference": args.reference, "bootstrap_samples": args.samples, "methods": rows}
    (folder / "scores.json").write_text(json.dumps(result, indent=2))
    (folder / "scores.md").write_text(markdown_table(rows))
    return result


def markdown_table(rows: list[dict]) -> str:
    """The table docs/model.md shows: each figure with its 95 % interval, and the paired difference."""

    def cell(row: dict, key: str) -> str:
        low, high = row["intervals"][key]
        text = f"{100 * row[key]:.2f} ({100 * low:.2f}-{100 * high:.2f})"
        if "difference_from_reference" in row:
            difference = row["difference_from_reference"][key]
            d_low, d_high = difference["interval"]
            text += f"<br>{100 * difference['value']:+.2f} ({100 * d_low:+.2f}, {100 * d_high:+.2f})"
        return text

    keys = ("auc", "sensitivity", "specificity", "accuracy_at_coverage_0.9", "ece")
    lines = [
        "| method | " + " | ".join(keys) + " | uncertain | sens. at spec. 99.5 % |",
        "|---" * (len(keys) + 3) + "|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | "
            + " | ".join(cell(row, key) for key in keys)
            + f" | {100 * row['uncertain_fraction']:.1f} % | {100 * row['sensitivity_at_specificity_0995']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def _table_line(row: dict) -> str:
    def cell(key: str) -> str:
        low, high = row["intervals"][key]
        text = f"{100 * row[key]:.2f} [{100 * low:.2f}-{100 * high:.2f}]"
        if "difference_from_reference" in row:
            difference = row["difference_from_reference"][key]
            text += f" ({100 * difference['value']:+.2f} [{100 * difference['interval'][0]:+.2f}, "
            text += f"{100 * difference['interval'][1]:+.2f}])"
        return text

    return f"{row['method']}: " + " | ".join(f"{key} {cell(key)}" for key in RESAMPLED[:4])
