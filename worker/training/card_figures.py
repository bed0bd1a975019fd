"""A model card's figures, measured again from its files on the data of its own split.

    python -m worker.training measure --model worker/model --data DIR [--fields DIR]

Cards gain figures as the project learns what to ask (issue 9 added accuracy at coverage and sensitivity
at 99.5 % specificity). This measures a card's model at the card's own calibration, through its served
file, with today's worker.training.calibration, and writes the figures into its `metrics`. Nothing that
serving reads changes: the calibration is the card's, and the result rule's false-positive rates are
counted again and must come out as recorded, or the command refuses (other data or another file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from worker.serving.model_card import ModelCard


def development_data_for(card: ModelCard, data: str, fields: str | None):
    """The card's own split of its own data; anything else would measure another model."""
    from worker.training.dataset import manifest_digest
    from worker.training.field_chips import fields_digest
    from worker.training.train import load_development_data

    trained = card.data["training_data"]
    if bool(fields) != ("fields" in trained):
        raise SystemExit(f"{card.version} was trained {'with' if 'fields' in trained else 'without'} field chips")
    if fields and fields_digest(fields) != trained["fields"]["annotations_sha256"]:
        raise SystemExit(f"{fields} is not the field data {card.version} was trained on (annotations differ)")
    development = load_development_data(
        data,
        fields,
        size=card.input_size,
        split_seed=trained["split_seed"],
        block_seed=trained.get("fields", {}).get("block_seed", 345),
    )
    if manifest_digest(development.cells) != trained["manifest_sha256"]:
        raise SystemExit(f"{data} is not the NIH data {card.version} was trained on (manifest differs)")
    return development


def measure_command(args: argparse.Namespace) -> dict:
    from worker.serving.engine import LiteRTNetwork
    from worker.serving.model_card import load_model_card, write_model_card
    from worker.training.train import card_summary, measure

    card = load_model_card(args.model)
    development = development_data_for(card, args.data, args.fields)
    measured = measure(LiteRTNetwork(card.file("tflite"), input_size=card.input_size), development, card.data)
    recorded = card.data.get("false_positive_rates")
    if recorded and measured["false_positive_rates"] != recorded:
        raise SystemExit(
            f"the result rule's rates come out as {measured['false_positive_rates']}, not as the card records "
            f"{recorded}: this is not the data or the file the card was made with"
        )
    data = {
        **card.data,
        **measured,
        "metrics_measured": {
            "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "by": "python -m worker.training measure (the card's calibration, through its tflite file)",
        },
    }
    write_model_card(card.directory, data)
    summary = card_summary(data)
    print(json.dumps(summary))
    return summary
