"""Out-of-fold soft targets: let a teacher that never saw a cell's label temper that label.

The NIH set has mislabelled cells (Fuhad et al. 2020 removed about 5 %) and no corrected list is public.
Instead of dropping any, each training cell's target becomes

    (1 - alpha) * label + alpha * p_teacher

where p_teacher is the calibrated probability of a network fitted, with the same recipe, on the other
groups of patients only: a cell the teacher, not having seen it, confidently calls the other way pulls
less hard on the student, while cells the teacher agrees with keep a target near their label. Evaluation
labels are never touched.

The second way, down-weighting: cells whose label the teacher finds very unlikely are left out of
training, every other cell keeps its hard label.

Measured in cross-validation only (`crossvalidate --soft-targets ALPHA` or `--drop-disputed BELOW`,
teachers nested inside each outer fold): neither beat the plain labels (docs/model.md), so `train` does
not offer them.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from worker.serving.calibration import calibrated_probability
from worker.serving.preprocessing import to_network_input
from worker.training.calibration import fit_temperature

TEACHER_SEED_OFFSET = 500  # teachers' seeds are apart from any student's (args.seed + fold)


def teacher_logits(
    args: argparse.Namespace, images: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, started: float
) -> np.ndarray:
    """Per cell, the logit (mean over the 8 symmetric views) of a network fitted on the other groups' cells."""
    import keras

    from worker.training.crossvalidation import symmetric_views
    from worker.training.train import fit_network, predict_logits, training_stream

    recipe = copy.copy(args)  # a teacher learns from the labels as they are, with its own seed
    logits = np.zeros(len(labels), np.float32)
    for group in np.unique(groups):
        recipe.seed = args.seed + TEACHER_SEED_OFFSET + int(group)
        keras.utils.set_random_seed(recipe.seed)
        fitting = groups != group
        stream, steps = training_stream(recipe, images[fitting], labels[fitting])
        model, _ = fit_network(recipe, stream, steps, started=time.monotonic())  # the budget is each network's
        held_out = to_network_input(images[~fitting])
        views = [predict_logits(model, np.ascontiguousarray(view)) for view in symmetric_views(held_out)]
        logits[~fitting] = np.mean(views, axis=0)
        print(
            f"teacher for group {group}: {int((~fitting).sum())} cells, {(time.monotonic() - started) / 60:.1f} min",
            flush=True,
        )
        keras.backend.clear_session()
    return logits


def teacher_probability(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The teachers' logits calibrated (temperature) on these same out-of-fold logits and labels."""
    return calibrated_probability(logits, fit_temperature(logits, labels))


def soft_targets(labels: np.ndarray, logits: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha) * label + alpha * the teacher's probability."""
    return ((1.0 - alpha) * labels + alpha * teacher_probability(labels, logits)).astype(np.float32)


def disputed(labels: np.ndarray, logits: np.ndarray, below: float) -> np.ndarray:
    """Cells whose label the teacher gives a probability under `below`: the down-weighting variant leaves
    them out of training (weight 0) and keeps every other cell's hard label."""
    p = teacher_probability(labels, logits)
    return np.where(labels == 1, p, 1.0 - p) < below
