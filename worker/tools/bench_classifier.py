"""Benchmark: the engine against the seed's one-`model.predict`-per-image path, on real cells as PNG bytes.

    python -m worker.tools.bench_classifier [--data ../shared/datasets/nih-malaria-cells] [--cells 2000] [--naive 300]

Cells are re-encoded from the shared WebP files to PNG in memory first (uploads are PNG or JPEG), so the
timings include decoding, preprocessing and inference, as in the worker. The engine is measured before
TensorFlow is imported for the naive path, so its peak RSS is the worker's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time

import numpy as np
from PIL import Image

from worker.serving.engine import DEFAULT_BATCH_SIZE, CellClassification, CellClassifier
from worker.serving.model_card import DEFAULT_MODEL_DIR, load_model_card
from worker.serving.preprocessing import prepare_cell
from worker.training.dataset import list_cells


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def as_png(path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join("..", "shared", "datasets", "nih-malaria-cells"))
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)

    cells = list_cells(args.data)
    step = max(1, len(cells) // args.cells)
    chosen = cells[::step][: args.cells]
    pngs = [as_png(cell.path) for cell in chosen]
    print(
        f"{len(pngs)} real cells re-encoded to PNG ({sum(map(len, pngs)) / len(pngs) / 1024:.1f} KiB each)", flush=True
    )

    card = load_model_card(args.model)
    classifier = CellClassifier(card, batch_size=args.batch_size)
    classifier.classify(pngs[: args.batch_size])  # warm-up: allocate tensors, start threads

    # One call with every cell, as a worker hands over a task's cells; the engine batches inside.
    started = time.perf_counter()
    results = classifier.classify(pngs)
    engine_seconds = time.perf_counter() - started
    engine_rate = len(pngs) / engine_seconds
    batch_times = [engine_seconds / -(-len(pngs) // args.batch_size)]
    engine_rss = peak_rss_mb()
    assert all(isinstance(r, CellClassification) for r in results)
    print(
        f"engine: {engine_rate:,.0f} cells/s, {np.median(batch_times) * 1000:.1f} ms per batch of {args.batch_size} "
        f"(mean), peak RSS {engine_rss:.0f} MB, {classifier.threads} threads",
        flush=True,
    )

    # The seed's way: a Keras model, one model.predict call per uploaded image.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from worker.training.architecture import trained_model

    model = trained_model(card)
    naive = pngs[: args.naive]
    model.predict(prepare_cell(naive[0], card.input_size)[None], verbose=0)
    started = time.perf_counter()
    for data in naive:
        model.predict(prepare_cell(data, card.input_size)[None], verbose=0)
    naive_rate = len(naive) / (time.perf_counter() - started)
    print(f"seed's path (model.predict per image): {naive_rate:,.1f} cells/s on {len(naive)} cells", flush=True)
    print(f"speedup: {engine_rate / naive_rate:,.0f}x", flush=True)
    print(
        json.dumps(
            {
                "cells": len(pngs),
                "cells_per_s": round(engine_rate, 1),
                "naive_cells": len(naive),
                "naive_cells_per_s": round(naive_rate, 2),
                "speedup": round(engine_rate / naive_rate, 1),
                "ms_per_batch": round(float(np.median(batch_times)) * 1000, 2),
                "batch_size": args.batch_size,
                "peak_rss_mb": round(engine_rss, 1),
                "peak_rss_mb_with_tensorflow": round(peak_rss_mb(), 1),
                "model_version": card.version,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
