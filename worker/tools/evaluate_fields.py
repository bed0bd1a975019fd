"""Score the whole-field pipeline (red-cell detection, chips, the shipped classifier) against boxed fields.

    python -m worker.tools.evaluate_fields evaluate --data ../shared/datasets/iml-malaria-fields \
        [--out out/fields] [--limit N] [--blocks 1,2,...]

DIR is laid out like the shared iml-malaria-fields set: `fields/*.JPG`, `annotations.json` (one record per
field, boxes as string x, y, w, h) and, for --blocks, `manifest.csv` with a `block` column.

Every red cell found is scored and classified, those cut by the image edge too (kinds COUNTED and EDGE);
white cells, clumps and small objects are not. Conventions (the metric functions below are pure):
- annotated red cells = `red blood cell` boxes plus the infected ones (ring, trophozoite, schizont,
  gametocyte): an infected cell is a red cell too. Boxes are matched one to one, maximising IoU.
- `rbc_precision_iou50` is a lower bound: the red-cell boxes are incomplete.
- `difficult` boxes neither count nor penalise: a found cell that matches no red or infected box at IoU 0.5
  but overlaps a difficult box at IoU >= 0.3 is left out of precision, of the false-parasitized count and
  of its denominator.
- `infected_found`: share of infected boxes matched (one to one) by a found cell at IoU >= 0.3;
  `infected_sensitivity`: matched and called parasitized. `false_parasitized_per_1000`: found cells called
  parasitized that overlap no infected box at IoU >= 0.3, per 1,000 red cells found.
- `samples_by_block`: each block's fields taken as one sample (consecutive frames of one slide), its counted
  red cells judged by the sample result rule at the served card's rates: cells, parasitized, result.
- `fields_per_s` times the field engine (worker/serving/field_engine.py) over every field: decoding,
  detection, chips and classification, pipelined as in the worker (not reading the files, not the overlays).
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RED_CELL = "red blood cell"
STAGES = ("ring", "trophozoite", "schizont", "gametocyte")
DIFFICULT = "difficult"
DIFFICULT_IOU = 0.3
INFECTED_IOU = 0.3
OVERLAY_FIELDS = 4

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)


@dataclass(frozen=True)
class AnnotatedBox:
    box: Box
    kind: str  # RED_CELL, one of STAGES, or DIFFICULT


@dataclass(frozen=True)
class ScoredCell:
    """A red cell the pipeline found, as the metrics see it."""

    box: Box
    kind: str  # fields.COUNTED or fields.EDGE
    parasitized: bool
    uncertain: bool


@dataclass
class FieldScore:
    red_annotated: int = 0  # red-cell + infected boxes
    matched50: int = 0  # of those, matched one to one by a found cell at IoU >= 0.5
    matched30: int = 0
    found: int = 0  # red cells found (COUNTED + EDGE)
    found_scored: int = 0  # found, less those on a difficult box
    found_matched50: int = 0  # found cells matched to a red or infected box at IoU >= 0.5
    uncertain: int = 0
    false_parasitized: int = 0
    infected: dict[str, int] = field(default_factory=dict)  # stage -> boxes
    infected_found: dict[str, int] = field(default_factory=dict)  # stage -> matched at IoU >= 0.3
    infected_parasitized: dict[str, int] = field(default_factory=dict)  # stage -> matched and called parasitized


# -- pure metrics ------------------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes with exclusive ends; 0 when either is empty."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """(len(a), len(b)) IoU of every pair."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x = np.asarray(a, dtype=np.float64)[:, None, :]
    y = np.asarray(b, dtype=np.float64)[None, :, :]
    width = np.clip(np.minimum(x[..., 2], y[..., 2]) - np.maximum(x[..., 0], y[..., 0]), 0, None)
    height = np.clip(np.minimum(x[..., 3], y[..., 3]) - np.maximum(x[..., 1], y[..., 1]), 0, None)
    inter = width * height
    area_x = (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
    area_y = (y[..., 2] - y[..., 0]) * (y[..., 3] - y[..., 1])
    union = area_x + area_y - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match(found: Sequence[Box], annotated: Sequence[Box], threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (found index, annotated index) with IoU >= threshold, maximising the total IoU."""
    from scipy.optimize import linear_sum_assignment

    overlaps = iou_matrix(found, annotated)
    if overlaps.size == 0:
        return []
    gain = np.where(overlaps >= threshold, overlaps, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols, strict=True) if overlaps[r, c] >= threshold)


def score_field(annotated: Sequence[AnnotatedBox], cells: Sequence[ScoredCell]) -> FieldScore:
    """One field's counts: the found red cells against its boxes."""
    red = [a.box for a in annotated if a.kind == RED_CELL or a.kind in STAGES]
    infected = [a for a in annotated if a.kind in STAGES]
    difficult = [a.box for a in annotated if a.kind == DIFFICULT]
    boxes = [c.box for c in cells]
    score = FieldScore(red_annotated=len(red), found=len(cells))
    score.uncertain = sum(c.uncertain for c in cells)

    pairs50 = match(boxes, red, 0.5)
    score.matched50 = len(pairs50)
    score.matched30 = len(match(boxes, red, 0.3))
    matched_found = {i for i, _ in pairs50}
    on_difficult = set()
    if difficult:
        best = iou_matrix(boxes, difficult).max(axis=1) if boxes else np.zeros(0)
        on_difficult = {i for i in range(len(cells)) if i not in matched_found and best[i] >= DIFFICULT_IOU}
    score.found_scored = len(cells) - len(on_difficult)
    score.found_matched50 = len(matched_found)

    for stage in STAGES:
        score.infected[stage] = sum(a.kind == stage for a in infected)
        score.infected_found[stage] = score.infected_parasitized[stage] = 0
    for i, j in match(boxes, [a.box for a in infected], INFECTED_IOU):
        stage = infected[j].kind
        score.infected_found[stage] += 1
        score.infected_parasitized[stage] += cells[i].parasitized
    near_infected = (
        iou_matrix(boxes, [a.box for a in infected]).max(axis=1) >= INFECTED_IOU
        if infected and boxes
        else np.zeros(len(cells), bool)
    )
    score.false_parasitized = sum(
        1 for i, c in enumerate(cells) if c.parasitized and not near_infected[i] and i not in on_difficult
    )
    return score


def _share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def aggregate(scores: Sequence[FieldScore], seconds: float, model_version: str) -> dict:
    """The metrics over all fields (pooled over cells, except the per-field median count error)."""
    red = sum(s.red_annotated for s in scores)
    found = sum(s.found for s in scores)
    found_scored = sum(s.found_scored for s in scores)
    by_stage = {
        stage: {
            "annotated": sum(s.infected.get(stage, 0) for s in scores),
            "found": sum(s.infected_found.get(stage, 0) for s in scores),
            "parasitized": sum(s.infected_parasitized.get(stage, 0) for s in scores),
        }
        for stage in STAGES
    }
    infected = sum(v["annotated"] for v in by_stage.values())
    errors = [abs(s.found - s.red_annotated) / s.red_annotated for s in scores if s.red_annotated]
    return {
        "fields": len(scores),
        "red_cells_annotated": red,
        "red_cells_found": found,
        "rbc_recall_iou50": _share(sum(s.matched50 for s in scores), red),
        "rbc_recall_iou30": _share(sum(s.matched30 for s in scores), red),
        "rbc_precision_iou50": _share(sum(s.found_matched50 for s in scores), found_scored),
        "count_error_median": round(statistics.median(errors), 4) if errors else None,
        "infected_annotated": infected,
        "infected_found": _share(sum(v["found"] for v in by_stage.values()), infected),
        "infected_sensitivity": _share(sum(v["parasitized"] for v in by_stage.values()), infected),
        "false_parasitized_per_1000": (
            round(1000.0 * sum(s.false_parasitized for s in scores) / found_scored, 2) if found_scored else None
        ),
        "uncertain_fraction": _share(sum(s.uncertain for s in scores), found),
        "fields_per_s": round(len(scores) / seconds, 2) if seconds > 0 else None,
        "model_version": model_version,
        "infected_found_by_stage": by_stage,
    }


# -- the data set ------------------------------------------------------------------------------------


def read_annotations(path: str | Path) -> dict[str, list[AnnotatedBox]]:
    """annotations.json -> {image name: boxes}; bbox x, y, w, h (strings) become x0, y0, x1, y1."""
    records = json.loads(Path(path).read_text())
    fields = {}
    for record in records:
        boxes = []
        for item in record["objects"]:
            bbox = item["bbox"]
            x, y, w, h = (int(round(float(bbox[k]))) for k in ("x", "y", "w", "h"))
            boxes.append(AnnotatedBox((x, y, x + w, y + h), item["type"]))
        fields[record["image_name"]] = boxes
    return fields


def read_blocks(path: str | Path) -> dict[str, int]:
    with open(path, newline="") as handle:
        return {row["file"]: int(row["block"]) for row in csv.DictReader(handle)}


# -- running the pipeline ----------------------------------------------------------------------------


def draw_overlay(rgb: np.ndarray, annotated, analysis, parasitized_boxes: set, path: Path) -> None:
    """Annotated boxes thin (green red cells, red infected, yellow difficult); found cells: counted blue,
    edge cyan, skipped grey, called parasitized magenta and thick."""
    from PIL import Image, ImageDraw

    from worker.serving.fields import COUNTED, EDGE

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    colours = {RED_CELL: (0, 200, 0), DIFFICULT: (230, 200, 0)}
    for a in annotated:
        x0, y0, x1, y1 = a.box
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colours.get(a.kind, (230, 0, 0)), width=1)
    for found in analysis.objects:
        x0, y0, x1, y1 = found.box
        if found.box in parasitized_boxes:
            colour, width = (230, 0, 230), 4
        else:
            colour = {COUNTED: (0, 90, 255), EDGE: (0, 220, 230)}.get(found.kind, (128, 128, 128))
            width = 2
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=width)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def evaluate(data: Path, out: Path | None, limit: int | None, blocks: set[int] | None) -> dict:
    from worker.serving.engine import PARASITIZED, get_classifier
    from worker.serving.field_engine import FieldClassifier, FieldFailure, decode_field
    from worker.serving.results import CellTally, sample_result

    annotations = read_annotations(data / "annotations.json")
    block_of = read_blocks(data / "manifest.csv") if (data / "manifest.csv").is_file() else {}
    names = sorted(annotations)
    if blocks:
        names = [n for n in names if block_of.get(n) in blocks]
    if limit:
        names = names[:limit]
    if not names:
        raise SystemExit(f"no fields to evaluate in {data}")
    engine = FieldClassifier(get_classifier())
    photographs = [(data / "fields" / name).read_bytes() for name in names]
    # The field engine, as the worker runs it: decoding, detection, chips and classification, pipelined.
    start = time.perf_counter()
    results = engine.classify(photographs)
    seconds = time.perf_counter() - start
    scores = []
    tallies: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for index, (name, result) in enumerate(zip(names, results, strict=True)):
        if isinstance(result, FieldFailure):
            raise SystemExit(f"{name}: {result.error}")
        tally = tallies[block_of.get(name, -1)]
        for cell in result.cells:
            if cell.counted:
                parasitized, uncertain = cell.classification.label == PARASITIZED, cell.classification.uncertain
                tally["classified"] += 1
                tally["parasitized"] += parasitized
                tally["uncertain"] += uncertain
                tally["confident_parasitized"] += parasitized and not uncertain
                tally["uncertain_uninfected"] += uncertain and not parasitized
        scored = [
            ScoredCell(c.found.box, c.found.kind, c.classification.label == PARASITIZED, c.classification.uncertain)
            for c in result.cells
        ]
        scores.append(score_field(annotations[name], scored))
        if out is not None and index < OVERLAY_FIELDS:
            parasitized = {c.box for c in scored if c.parasitized}
            draw_overlay(
                decode_field(photographs[index]),
                annotations[name],
                result.analysis,
                parasitized,
                out / f"{Path(name).stem}-overlay.png",
            )
    metrics = aggregate(scores, seconds, engine.cells.card.version)
    samples = {}
    for block, counts in sorted(tallies.items()):
        outcome = sample_result(
            CellTally(
                **{
                    k: counts[k]
                    for k in ("classified", "parasitized", "uncertain", "confident_parasitized", "uncertain_uninfected")
                },
                field_cells=counts["classified"],
            ),
            engine.cells.card.rule_rates,
        )
        samples[str(block)] = {
            "cells": counts["classified"],
            "parasitized": counts["parasitized"],
            "result": outcome.result,
        }
    metrics["samples_by_block"] = samples
    return metrics


def print_table(metrics: dict) -> None:
    for key, value in metrics.items():
        if key not in ("infected_found_by_stage", "samples_by_block"):
            print(f"{key:28} {value}")
    print(f"{'stage':12} {'annotated':>9} {'found':>6} {'parasitized':>11}")
    for stage, counts in metrics["infected_found_by_stage"].items():
        print(f"{stage:12} {counts['annotated']:>9} {counts['found']:>6} {counts['parasitized']:>11}")
    print(f"{'block':6} {'cells':>6} {'parasitized':>11}  result (the block's fields as one sample)")
    for block, sample in metrics.get("samples_by_block", {}).items():
        print(f"{block:6} {sample['cells']:>6} {sample['parasitized']:>11}  {sample['result']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="score the field pipeline on a folder of boxed fields")
    run.add_argument("--data", default=os.path.join("..", "shared", "datasets", "iml-malaria-fields"))
    run.add_argument("--out", default=os.path.join("out", "fields"), help="overlay PNGs of the first fields")
    run.add_argument("--limit", type=int, default=None, help="only the first N fields (by name)")
    run.add_argument("--blocks", default=None, help="only these manifest blocks, comma-separated: 1,2,...")
    args = parser.parse_args(argv)

    blocks = {int(b) for b in args.blocks.split(",") if b.strip()} if args.blocks else None
    metrics = evaluate(Path(args.data), Path(args.out) if args.out else None, args.limit, blocks)
    print_table(metrics)
    if args.out:
        print(f"overlays in {args.out}")
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
