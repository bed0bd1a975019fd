"""The field engine on 2 cores: 1280 x 960 JPEG bytes in, every red cell found and classified out.

    python -m worker.tools.bench_fields --data ../shared/datasets/iml-malaria-fields [--fields 60] [--repeat 3]

Reads the photographs' bytes first (disk time is not the engine's), warms up on a few, then times one
call of the engine over all of them, as a worker hands over a task's fields. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from worker.serving.engine import get_classifier
from worker.serving.field_engine import FieldClassifier, FieldResult


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/iml-malaria-fields")
    parser.add_argument("--fields", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    paths = sorted((Path(args.data) / "fields").glob("*.JPG"))
    step = max(1, len(paths) // args.fields)
    photographs = [path.read_bytes() for path in paths[::step][: args.fields]]
    if not photographs:
        sys.exit(f"no field photographs in {Path(args.data) / 'fields'}")
    engine = FieldClassifier(get_classifier())
    engine.classify(photographs[:3])  # warm-up: allocate tensors, start threads

    rates = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        results = engine.classify(photographs)
        seconds = time.perf_counter() - started
        assert all(isinstance(result, FieldResult) for result in results)
        cells = sum(len(result.cells) for result in results)
        rates.append((len(photographs) / seconds, cells / seconds))
        print(f"{len(photographs)} fields, {cells} red cells in {seconds:.2f} s", flush=True)
    fields_per_s, cells_per_s = max(rates)
    figures = {
        "fields": len(photographs),
        "fields_per_s": round(fields_per_s, 2),
        "fields_per_s_runs": [round(rate, 2) for rate, _ in rates],
        "cells_per_s": round(cells_per_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": engine.cells.threads,
        "model_version": engine.cells.card.version,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
