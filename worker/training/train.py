"""Train and evaluate the cell classifier.

    python -m worker.training train --data ../shared/datasets/nih-malaria-cells \
        [--fields ../shared/datasets/iml-malaria-fields] [--out worker/model]
    python -m worker.training evaluate --data DIR [--model worker/model] [--out out/evaluation]
    python -m worker.training export --model worker/model --data DIR --fields DIR --out DIR --version V
    python -m worker.training measure --model worker/model --data DIR --fields DIR

Training splits NIH cells by patient and boxed fields by block, fits on the train patients and the chips
the served detector cuts from the train blocks' fields, stops early on validation loss, then calibrates
(temperature, on NIH validation patients: a probability means what it meant for single cells), chooses
the single-cell threshold and band on NIH validation patients and the field threshold and band on the
validation blocks, measures the test patients and test blocks (all of it through the exported LiteRT
file the engine serves), and writes the weights, that file and the model card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.serving.calibration import calibrated_probability
from worker.serving.model_card import ARCHITECTURE_VERSION, DEFAULT_MODEL_DIR, write_model_card
from worker.serving.preprocessing import PREPROCESSING_VERSION, to_network_input
from worker.training.calibration import (
    cell_metrics,
    choose_threshold,
    choose_uncertain_band,
    fit_temperature,
    threshold_for_specificity,
)
from worker.training.dataset import cached_arrays, list_cells, manifest_digest, split_patients
from worker.training.field_chips import CHIPS_VERSION, FieldChips, cached_field_chips, fields_digest, split_blocks

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_stages(text: str) -> tuple[tuple[int, int], ...]:
    """'32x1,64x1,128x2' -> ((32, 1), (64, 1), (128, 2))."""
    return tuple(tuple(int(part) for part in stage.split("x")) for stage in text.split(","))  # type: ignore[misc]


def training_cpu(cpuinfo: str | None = None) -> dict:
    """The CPU that trained the model: oneDNN picks its kernels by instruction set, and the same seed and
    code give other weights on a CPU with another one (measured: AVX2 against AVX-512, docs/decisions.md),
    so a retrain reproduces the shipped weights bit for bit only where these match."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line and line.split(":", 1)[0].strip())
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", "unknown"),
        "instruction_sets": [
            isa for isa in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile") if isa in flags
        ],
    }


def predict_logits(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    # Called directly rather than through model.predict, which hangs here after fit on a repeated dataset.
    return np.concatenate(
        [model(x[i : i + batch_size], training=False).numpy()[:, 0] for i in range(0, len(x), batch_size)]
    )


@dataclass
class DevelopmentData:
    """NIH cells split by patient and, optionally, IML field chips split by block, as uint8 arrays."""

    cells: list
    split: dict  # patients by role: train / validation / test
    images: np.ndarray
    labels: np.ndarray
    members: dict  # role -> boolean mask over cells
    chips: FieldChips | None = None
    block_split: dict | None = None  # blocks by role
    on: dict | None = None  # role -> boolean mask over chips


def load_development_data(
    data: str, fields: str | None, *, size: int, split_seed: int, block_seed: int
) -> DevelopmentData:
    cells = list_cells(data)
    split = split_patients(cells, seed=split_seed)
    images, labels = cached_arrays(cells, size)
    patients = np.array([cell.patient for cell in cells])
    members = {name: np.isin(patients, sorted(group)) for name, group in split.items()}
    print(
        f"data: {len(cells)} cells, {len(set(patients))} patients; "
        + ", ".join(f"{name} {int(mask.sum())} cells / {len(split[name])} patients" for name, mask in members.items()),
        flush=True,
    )
    development = DevelopmentData(cells=cells, split=split, images=images, labels=labels, members=members)
    if fields:
        chips = cached_field_chips(fields, size)
        block_split = split_blocks(chips.blocks, seed=block_seed)
        on = {name: np.isin(chips.blocks, sorted(group)) for name, group in block_split.items()}
        print(
            f"fields: {len(chips.labels)} chips ({int(chips.labels.sum())} parasitized) from "
            f"{len(set(chips.fields))} fields; "
            + ", ".join(
                f"{name} {int(mask.sum())} chips / {int(chips.labels[mask].sum())} parasitized / blocks "
                f"{sorted(block_split[name])}"
                for name, mask in on.items()
            ),
            flush=True,
        )
        development.chips, development.block_split, development.on = chips, block_split, on
    return development


def served_logits(network, images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Logits of uint8 cells through the LiteRT file that is served, converted a chunk at a time."""
    return np.concatenate(
        [network.logits(to_network_input(images[i : i + chunk])) for i in range(0, len(images), chunk)]
        or [np.zeros(0, np.float32)]
    )


def calibrate(network, development: DevelopmentData, *, field_specificity: float) -> dict:
    """The card's calibration, thresholds and bands, from validation data through the served file.

    Temperature, the single-cell threshold and band come from NIH validation patients (a probability means
    what it meant for single cells); the field threshold (at least field_specificity of the uninfected chips
    right: a parasitemia needs few false calls) and its band from the validation blocks' chips.
    """
    validation = development.members["validation"]
    labels = development.labels[validation]
    logits = served_logits(network, development.images[validation])
    temperature = fit_temperature(logits, labels)
    probability = calibrated_probability(logits, temperature)
    threshold = choose_threshold(probability, labels)
    calibration: dict = {
        "temperature": temperature,
        "threshold": threshold,
        "uncertain_band": list(choose_uncertain_band(probability, labels, threshold)),
    }
    chips, on = development.chips, development.on
    if chips is not None and on is not None:
        field_labels = chips.labels[on["validation"]]
        field_probability = calibrated_probability(served_logits(network, chips.images[on["validation"]]), temperature)
        field_threshold = threshold_for_specificity(field_probability, field_labels, field_specificity)
        calibration.update(
            {
                "validated_on_fields": True,
                "field_specificity": field_specificity,
                "field_threshold": field_threshold,
                "field_uncertain_band": list(
                    choose_uncertain_band(field_probability, field_labels, field_threshold, balanced=True)
                ),
            }
        )
    return calibration


def measure(network, development: DevelopmentData, calibration: dict) -> dict:
    """A card's figures and the result rule's false-positive rates at its calibration, through the served file.

    Validation data gives the rates (worker.serving.results); test patients and test blocks are only measured.
    """
    members, labels = development.members, development.labels
    temperature, threshold = calibration["temperature"], calibration["threshold"]
    band = tuple(calibration["uncertain_band"])
    probability = {
        name: calibrated_probability(served_logits(network, development.images[members[name]]), temperature)
        for name in ("validation", "test")
    }
    metrics = {name: cell_metrics(probability[name], labels[members[name]], threshold, band) for name in probability}
    rates = {
        "cells": false_positive_counts(
            probability["validation"],
            labels[members["validation"]],
            threshold,
            band,
            f"NIH validation patients ({len(development.split['validation'])})",
        )
    }
    chips, on = development.chips, development.on
    if (
        chips is not None
        and on is not None
        and development.block_split is not None
        and "field_threshold" in calibration
    ):
        field_threshold, field_band = calibration["field_threshold"], tuple(calibration["field_uncertain_band"])
        chip_probability = {
            name: calibrated_probability(served_logits(network, chips.images[on[name]]), temperature)
            for name in ("validation", "test")
        }
        metrics["fields"] = {
            name: field_metrics(
                chip_probability[name], chips.labels[on[name]], chips.stages[on[name]], field_threshold, field_band
            )
            for name in chip_probability
        }
        # The single-cell threshold on field chips, for comparison (what serving fields with it would give).
        metrics["fields"]["test_at_cell_threshold"] = field_metrics(
            chip_probability["test"], chips.labels[on["test"]], chips.stages[on["test"]], threshold, band
        )
        rates["fields"] = false_positive_counts(
            chip_probability["validation"],
            chips.labels[on["validation"]],
            field_threshold,
            field_band,
            f"field chips of validation blocks {sorted(development.block_split['validation'])}",
        )
    return {"false_positive_rates": rates, "metrics": metrics}


def calibrate_and_measure(network, development: DevelopmentData, *, field_specificity: float) -> dict:
    """What a new card records: calibrate, then measure at that calibration."""
    calibration = calibrate(network, development, field_specificity=field_specificity)
    return {**calibration, **measure(network, development, calibration)}


def training_data_card(development: DevelopmentData, args: argparse.Namespace) -> dict:
    card: dict = {
        "manifest_sha256": manifest_digest(development.cells),
        "cells": len(development.cells),
        "split_seed": args.split_seed,
        "patients": {name: sorted(group) for name, group in development.split.items()},
    }
    if development.chips is not None and development.block_split is not None:
        card["fields"] = {
            "annotations_sha256": fields_digest(args.fields),
            "chips": len(development.chips.labels),
            "chips_version": CHIPS_VERSION,
            "block_seed": args.block_seed,
            "blocks": {name: sorted(group) for name, group in development.block_split.items()},
            "share_of_batch": args.field_share,
            "parasitized_share_of_batch": args.field_positive_share,
        }
    return card


def card_summary(card: dict) -> dict:
    """The last line train and export print: what a person checks first."""
    metrics = card["metrics"]
    summary = {
        "version": card["version"],
        "temperature": round(card["temperature"], 4),
        "threshold": round(card["threshold"], 4),
        "uncertain_band": [round(b, 4) for b in card["uncertain_band"]],
        **{f"validation_{k}": round(v, 4) for k, v in metrics["validation"].items() if isinstance(v, float)},
        **{f"test_{k}": round(v, 4) for k, v in metrics["test"].items() if isinstance(v, float)},
    }
    if "fields" in metrics:
        summary["field_threshold"] = round(card["field_threshold"], 4)
        summary["field_uncertain_band"] = [round(b, 4) for b in card["field_uncertain_band"]]
        for name in ("validation", "test"):
            for key in ("sensitivity", "false_parasitized_per_1000", "auc", "uncertain_fraction"):
                summary[f"fields_{name}_{key}"] = round(metrics["fields"][name][key], 4)
        summary["confident_false_calls"] = {
            kind: counts["confident"] for kind, counts in card["false_positive_rates"].items()
        }
    return summary


def train(args: argparse.Namespace) -> dict:
    import keras
    import tensorflow as tf

    from worker.serving.engine import LiteRTNetwork
    from worker.training.export import RUNTIMES, export_litert

    started = time.monotonic()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    development = load_development_data(
        args.data, args.fields, size=args.size, split_seed=args.split_seed, block_seed=args.block_seed
    )
    members, images, labels = development.members, development.images, development.labels
    x_train, y_train = images[members["train"]], labels[members["train"]]
    x_validation = to_network_input(images[members["validation"]])
    y_validation = labels[members["validation"]].astype(np.float32)
    w_validation = np.ones(len(y_validation), np.float32)
    train_chips = None
    chips, on = development.chips, development.on
    if chips is not None and on is not None:
        train_chips = (chips.images[on["train"]], chips.labels[on["train"]])
        # Early stopping watches both: NIH validation cells as they are, and the validation blocks' chips
        # weighted to half as much again, the two classes equally (otherwise the 1 % infected vanish).
        field_labels = chips.labels[on["validation"]]
        half = 0.25 * len(y_validation)
        field_weights = np.where(
            field_labels == 1, half / max(field_labels.sum(), 1), half / max((field_labels == 0).sum(), 1)
        )
        x_validation = np.concatenate([x_validation, to_network_input(chips.images[on["validation"]])])
        y_validation = np.concatenate([y_validation, field_labels.astype(np.float32)])
        w_validation = np.concatenate([w_validation, field_weights.astype(np.float32)])

    architecture = {
        "version": ARCHITECTURE_VERSION,
        "stem": args.stem,
        "stages": [list(s) for s in args.stages],
        "dropout": args.dropout,
    }
    stream, steps_per_epoch = training_stream(args, x_train, y_train, train_chips)
    model, history = fit_network(
        args,
        stream,
        steps_per_epoch,
        validation=(x_validation, y_validation, w_validation),
        patience=args.patience,
        started=started,
    )
    epochs_run = len(history.history["loss"])
    best_epoch = int(np.argmin(history.history["val_loss"])) + 1
    kept = f"epoch {best_epoch} (lowest validation loss)" if args.patience > 0 else f"epoch {epochs_run} (final)"

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights_name, tflite_name = "malaria_cnn.weights.h5", "malaria_cnn.tflite"
    model.save_weights(out / weights_name)
    export_litert(model, out / tflite_name)
    # Calibrated and measured through the exported file: the card's figures are the served model's.
    measured = calibrate_and_measure(
        LiteRTNetwork(out / tflite_name, input_size=args.size),
        development,
        field_specificity=args.field_specificity,
    )
    minutes = (time.monotonic() - started) / 60
    card = {
        "version": args.version,
        "architecture": architecture,
        "input_size": args.size,
        "preprocessing": PREPROCESSING_VERSION,
        "runtime": RUNTIMES[False],
        "outputs": {
            "logit": "Parasitized logit before temperature",
            "cam": "class activation map of the last convolution",
        },
        **measured,
        "training_data": training_data_card(development, args),
        "training": {
            "seed": args.seed,
            "cpu": training_cpu(),
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "weights_kept": kept,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "weight_decay": args.weight_decay,
            "ema": args.ema,
            "label_smoothing": args.label_smoothing,
            "mixup": args.mixup,
            "minutes": round(minutes, 1),
            "augmentation": "rotation 360, shear 0.15, zoom 0.9-1.1, shift 8%, flip; hue 0.04, saturation 0.7-1.3, "
            "brightness 0.8-1.2, channel gain 0.9-1.1, gamma 0.8-1.25",
        },
        "intended_use": "Screening aid for trained microscopists reading Giemsa-stained thin blood smears; "
        "not a diagnosis.",
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {"weights": {"name": weights_name}, "tflite": {"name": tflite_name}},
    }
    write_model_card(out, card)
    summary = {"epochs_run": epochs_run, "best_epoch": best_epoch, "minutes": round(minutes, 1), **card_summary(card)}
    print(json.dumps(summary))
    return summary


def training_stream(args: argparse.Namespace, x_train, y_train, field_chips=None):
    """Endless shuffled (uint8 image, label) pairs to train on, and the steps that make an epoch.

    With field chips, a batch mixes NIH cells, uninfected field chips and (oversampled: they are 1 in 100)
    parasitized field chips; an epoch still shows every NIH train cell about once.
    """
    import tensorflow as tf

    def repeated(x, y, salt):
        return (
            # Targets as floats: soft targets (worker.training.soft_targets) and hard labels mix in one stream.
            tf.data.Dataset.from_tensor_slices((x, y.astype(np.float32)))
            .shuffle(len(x), seed=args.seed + salt, reshuffle_each_iteration=True)
            .repeat()
        )

    if field_chips is None:
        return repeated(x_train, y_train, 0), len(x_train) // args.batch_size
    chip_images, chip_labels = field_chips
    shares = [1.0 - args.field_share, args.field_share - args.field_positive_share, args.field_positive_share]
    mixed = tf.data.Dataset.sample_from_datasets(
        [
            repeated(x_train, y_train, 0),
            repeated(chip_images[chip_labels == 0], chip_labels[chip_labels == 0], 1),
            repeated(chip_images[chip_labels == 1], chip_labels[chip_labels == 1], 2),
        ],
        weights=shares,
        seed=args.seed,
    )
    return mixed, int(len(x_train) / shares[0]) // args.batch_size


def rounded_accuracy(targets, logits):
    """Share of cells whose logit falls on the side of 0 that their target (soft or hard) rounds to."""
    import keras

    called = keras.ops.reshape(logits, (-1,)) > 0.0
    return keras.ops.cast(keras.ops.equal(keras.ops.reshape(targets, (-1,)) > 0.5, called), "float32")


def fit_network(
    args: argparse.Namespace, stream, steps_per_epoch: int, *, validation=None, patience: int = 0, started: float
):
    """Build the network and fit it on the stream with the recipe in args; returns (model, history).

    The recipe: AdamW with a warm-up and a cosine schedule decayed to zero over args.epochs, the
    augmentation of worker.training.augmentation, and optionally label smoothing, mixup (Zhang et al.
    2018, within the batch) and an exponential moving average of the weights (what is kept at the end).
    With validation data and a patience (train's default, the shipped recipe) it stops on the validation
    loss and keeps the best epoch's weights; otherwise (cross-validation, or train --patience 0) it runs the
    whole schedule and keeps the final weights.
    """
    import keras
    import tensorflow as tf

    from worker.training.architecture import build_model
    from worker.training.augmentation import augment, mixup

    seed = tf.constant([args.seed, 0], dtype=tf.int64)

    def augment_batch(step, batch):
        x, y = batch
        x = augment(tf.cast(x, tf.float32) * (1.0 / 255.0), tf.stack([seed[0], step]))  # as to_network_input
        y = tf.cast(y, tf.float32)
        if args.mixup > 0:
            x, y = mixup(x, y, args.mixup, tf.stack([seed[0] + 1, step]))
        return x, y

    train_data = (
        stream.batch(args.batch_size, drop_remainder=True)
        .enumerate()
        .map(augment_batch, num_parallel_calls=2, deterministic=True)
        .prefetch(2)
    )
    model = build_model(size=args.size, stem=args.stem, stages=args.stages, dropout=args.dropout, seed=args.seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.learning_rate / 10,
        decay_steps=args.epochs * steps_per_epoch,
        warmup_target=args.learning_rate,
        warmup_steps=steps_per_epoch,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=schedule,
            weight_decay=args.weight_decay,
            use_ema=args.ema > 0,
            ema_momentum=args.ema or 0.99,
        ),
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=args.label_smoothing),
        metrics=[
            # Against the rounded target: with soft targets an exact match (BinaryAccuracy) is never made.
            keras.metrics.MeanMetricWrapper(rounded_accuracy, name="accuracy"),
            keras.metrics.AUC(from_logits=True, name="auc"),
        ],
    )
    print(f"model: {model.count_params():,} parameters, input {args.size}px, {steps_per_epoch} steps/epoch", flush=True)

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            minutes = (time.monotonic() - started) / 60
            checked = (
                f" | val loss {logs['val_loss']:.4f} acc {logs['val_accuracy']:.4f} auc {logs['val_auc']:.4f}"
                if "val_loss" in logs
                else ""
            )
            print(
                f"epoch {epoch + 1:3d}/{args.epochs} loss {logs['loss']:.4f} acc {logs['accuracy']:.4f}{checked} | "
                f"{minutes:5.1f} min",
                flush=True,
            )
            if minutes > args.max_minutes:
                print(f"stopping: the {args.max_minutes}-minute training budget is spent", flush=True)
                self.model.stop_training = True

    callbacks: list = [Progress()]
    if validation is not None and patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        )
    history = model.fit(
        train_data,
        steps_per_epoch=steps_per_epoch,
        epochs=args.epochs,
        validation_data=validation,
        validation_batch_size=512,
        shuffle=False,  # the stream shuffles itself (training_stream); Keras would only warn that it ignores it
        callbacks=callbacks,
        verbose=0,
    )
    if args.ema > 0:
        # Keras swaps the averaged weights in at the end of fit; saying so here keeps it from depending on that.
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return model, history


def false_positive_counts(probabilities, labels, threshold: float, band: tuple[float, float], measured_on: str) -> dict:
    """Uninfected cells, and those called parasitized outside the band (confident) or parasitized or inside it."""
    probabilities, negatives = np.asarray(probabilities), np.asarray(labels) == 0
    called = probabilities >= threshold
    inside = (probabilities >= band[0]) & (probabilities <= band[1])
    return {
        "uninfected": int(negatives.sum()),
        "confident": int((negatives & called & ~inside).sum()),
        "suspect": int((negatives & (called | inside)).sum()),
        "measured_on": measured_on,
    }


def field_metrics(probabilities, labels, stages, threshold: float, band: tuple[float, float]) -> dict:
    """cell_metrics plus what a parasitemia needs: false parasitized per 1,000 and sensitivity by stage."""
    metrics = cell_metrics(probabilities, labels, threshold, band)
    metrics["false_parasitized_per_1000"] = 1000.0 * metrics["fp"] / max(metrics["n"], 1)
    called = np.asarray(probabilities) >= threshold
    metrics["sensitivity_by_stage"] = {
        str(stage): [int(called[stages == stage].sum()), int((stages == stage).sum())]
        for stage in sorted(set(stages.tolist()) - {""})
    }
    return metrics


def add_recipe_arguments(parser: argparse.ArgumentParser, *, epochs: int = 30) -> None:
    """The network and how it is fitted: shared by train and crossvalidate, so a recipe means one thing."""
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--stem", type=int, default=24)
    parser.add_argument("--stages", type=parse_stages, default=parse_stages("32x1,64x1,128x2"))
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--ema", type=float, default=0.0, help="momentum of a moving average of the weights (0: off)")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--mixup", type=float, default=0.0, help="alpha of mixup's Beta(alpha, alpha) (0: off)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=60.0,
        help="stop a network's training after this many minutes (issue 9's budget for make train)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--split-seed", type=int, default=20181)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train, calibrate and write the model and its card")
    train_parser.add_argument("--data", required=True, help="folder with Parasitized/ and Uninfected/")
    train_parser.add_argument(
        "--fields", default=None, help="boxed whole fields (fields/, annotations.json, manifest.csv) to train on too"
    )
    train_parser.add_argument("--block-seed", type=int, default=345, help="seed of the fields' split by block")
    train_parser.add_argument("--field-share", type=float, default=0.4, help="share of each batch from field chips")
    train_parser.add_argument(
        "--field-positive-share", type=float, default=0.06, help="share of each batch from parasitized field chips"
    )
    train_parser.add_argument(
        "--field-specificity", type=float, default=0.995, help="uninfected field chips right at the field threshold"
    )
    train_parser.add_argument("--out", default=str(DEFAULT_MODEL_DIR), help="where to write the model")
    train_parser.add_argument("--version", default=dt.date.today().strftime("cnn-%Y.%m.%d"))
    add_recipe_arguments(train_parser)
    train_parser.add_argument(
        "--patience",
        type=int,
        default=30,
        help="stop after this many epochs without a better validation loss and keep the best weights, as "
        "the shipped model was trained (0: run the whole schedule and keep the final weights, as "
        "cross-validation does; tried 2026-11-29 and not shipped, docs/model.md)",
    )

    cv_parser = commands.add_parser(
        "crossvalidate", help="patient-grouped cross-validation of a recipe: out-of-fold logits for scoring"
    )
    cv_parser.add_argument("--data", required=True, help="folder with Parasitized/ and Uninfected/")
    cv_parser.add_argument("--method", required=True, help="name the out-of-fold logits are saved under")
    cv_parser.add_argument("--folds", type=int, default=5)
    cv_parser.add_argument("--seeds", type=int, default=2)
    cv_parser.add_argument("--fold-seed", type=int, default=5, help="seed of the patients' deal into folds")
    cv_parser.add_argument("--out", default="out/crossvalidation")
    add_recipe_arguments(cv_parser, epochs=12)
    cv_parser.add_argument(
        "--soft-targets",
        type=float,
        default=0.0,
        help="share of each training cell's target taken from a nested out-of-fold teacher (0: off; "
        "worker.training.soft_targets; cross-validation only: it did not win)",
    )
    cv_parser.add_argument(
        "--drop-disputed",
        type=float,
        default=0.0,
        help="leave out of training the cells whose label a nested out-of-fold teacher gives a probability "
        "under this (0: off; cross-validation only: it did not win)",
    )
    score_parser = commands.add_parser(
        "crossvalidate-score", help="score cross-validated methods with patient-resampled intervals"
    )
    score_parser.add_argument(
        "--methods",
        required=True,
        help="comma-separated; a+b is the ensemble of a and b; name@tta8 or name@tta8-band adds test-time "
        "augmentation (all cells, or only the uncertain ones)",
    )
    score_parser.add_argument("--reference", default="baseline", help="the method differences are taken from")
    score_parser.add_argument("--samples", type=int, default=1000, help="patient resamples for the intervals")
    score_parser.add_argument("--out", default="out/crossvalidation")

    export_parser = commands.add_parser(
        "export",
        help="export a trained model's weights to a new model folder and re-derive its card, without training",
    )
    export_parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="the trained model's folder")
    export_parser.add_argument("--data", required=True, help="the NIH cells it was trained on")
    export_parser.add_argument("--fields", default=None, help="the boxed fields it was trained on, if any")
    export_parser.add_argument("--out", required=True, help="a new, empty folder for the exported model")
    export_parser.add_argument("--version", required=True, help="the exported model's version (a new name)")
    export_parser.add_argument(
        "--int8-weights", action="store_true", help="store the weights as int8 (tried 2026-11-29, not shipped)"
    )

    measure_parser = commands.add_parser(
        "measure", help="measure a card's figures again from its files, at its own calibration, into its card"
    )
    measure_parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (with model_card.json)")
    measure_parser.add_argument("--data", required=True, help="the NIH cells it was trained on")
    measure_parser.add_argument("--fields", default=None, help="the boxed fields it was trained on, if any")

    evaluate_parser = commands.add_parser("evaluate", help="measure a model on a folder of labelled cells")
    evaluate_parser.add_argument("--data", required=True, help="folder with Parasitized/ and Uninfected/")
    evaluate_parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (with model_card.json)")
    evaluate_parser.add_argument("--out", default="out/evaluation", help="where to write the report and plots")
    evaluate_parser.add_argument(
        "--split",
        choices=("all", "train", "validation", "test"),
        default="all",
        help="only the cells of these patients of the model's own split (for the training set)",
    )

    args = parser.parse_args(argv)
    if args.command == "train":
        train(args)
    elif args.command == "export":
        from worker.training.export import export_command

        export_command(args)
    elif args.command == "measure":
        from worker.training.card_figures import measure_command

        measure_command(args)
    elif args.command == "crossvalidate":
        from worker.training.crossvalidation import crossvalidate

        crossvalidate(args)
    elif args.command == "crossvalidate-score":
        from worker.training.crossvalidation import score_command

        print(json.dumps(score_command(args)))
    else:
        from worker.training.evaluation import evaluate

        result = evaluate(data=args.data, model_dir=args.model, out=args.out, split=args.split)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
