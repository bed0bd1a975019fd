"""End-to-end benchmark: real cells and fields through the HTTP API -> Redis -> one Celery worker -> PostgreSQL.

    python -m worker.tools.bench_e2e [--data ../shared/datasets/nih-malaria-cells] [--cells 1000] [--batch 100]
        [--fields-data ../shared/datasets/iml-malaria-fields] [--fields 50]

Runs against a throw-away PostgreSQL database (malaria_bench) and Redis db 13 on this machine, the Auth
emulator, a web server (gunicorn) and one worker, all started here. Prints cells/s for the bulk submission
(first upload request to the last prediction in PostgreSQL), p50/p95 of upload -> result for single cells,
then sends --fields whole-field photographs in one request to a new sample and times the first upload byte to
the last of their red cells' predictions in PostgreSQL (segmentation, chips stored, classification), and
prints as its last line one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository: worker/tools/bench_e2e.py
DATABASE = "malaria_bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/datasets/nih-malaria-cells"))
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--fields-data", default=str(ROOT.parent / "shared/datasets/iml-malaria-fields"))
    parser.add_argument("--fields", type=int, default=50, help="field photographs to send (0: none)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (make run and compose use 2)")
    args = parser.parse_args(argv)

    from worker.tools.bench_classifier import as_png
    from worker.tools.bench_stack import running_stack
    from worker.training.dataset import list_cells

    with running_stack(database=DATABASE, redis_db=13, worker_concurrency=args.concurrency) as stack:
        base, session, worker = stack.base, stack.session, stack.worker
        cells = list_cells(args.data)
        step = max(1, len(cells) // (args.cells + args.singles))
        chosen = cells[::step][: args.cells + args.singles]
        pngs = [(cell.path.with_suffix(".png").name, as_png(cell.path)) for cell in chosen]
        bulk, singles = pngs[: args.cells], pngs[args.cells :]
        patient = session.post(f"{base}/patients", json={"identifier": "BENCH-1"}).json()
        sample = session.post(f"{base}/samples", json={"patient": patient["id"]}).json()

        # Warm the worker (model loaded after the fork) before timing.
        time.sleep(3)
        started = time.perf_counter()
        for i in range(0, len(bulk), args.batch):
            files = [("images", (name, data, "image/png")) for name, data in bulk[i : i + args.batch]]
            response = session.post(f"{base}/samples/{sample['id']}/images", files=files, timeout=120)
            response.raise_for_status()
        uploaded = time.perf_counter() - started
        while True:
            detail = session.get(f"{base}/samples/{sample['id']}").json()
            if detail["counts"]["classified"] + detail["counts"]["failed"] >= len(bulk):
                break
            if worker.poll() is not None:
                raise SystemExit("the worker died")
            time.sleep(0.02)
        total = time.perf_counter() - started
        rate = len(bulk) / total
        print(
            f"{len(bulk)} cells in batches of {args.batch}: uploaded in {uploaded:.2f} s, all predictions in "
            f"PostgreSQL after {total:.2f} s ({rate:,.0f} cells/s)",
            flush=True,
        )

        latencies = []
        for name, data in singles:
            single = session.post(f"{base}/samples", json={"patient": patient["id"]}).json()
            t0 = time.perf_counter()
            response = session.post(
                f"{base}/samples/{single['id']}/images", files=[("images", (name, data, "image/png"))]
            )
            response.raise_for_status()
            while session.get(f"{base}/samples/{single['id']}").json()["status"] != "complete":
                time.sleep(0.005)
            latencies.append(time.perf_counter() - t0)
        p50, p95 = np.percentile(latencies, [50, 95]) * 1000
        print(
            f"single cell upload -> result over {len(latencies)} cells: p50 {p50:.0f} ms, p95 {p95:.0f} ms", flush=True
        )

        field_figures: dict = {}
        if args.fields:
            photographs = sorted((Path(args.fields_data) / "fields").glob("*.JPG"))[: args.fields]
            if len(photographs) < args.fields:
                raise SystemExit(f"only {len(photographs)} field photographs in {args.fields_data}")
            files = [("fields", (path.name, path.read_bytes(), "image/jpeg")) for path in photographs]
            field_sample = session.post(f"{base}/samples", json={"patient": patient["id"]}).json()
            started = time.perf_counter()
            response = session.post(f"{base}/samples/{field_sample['id']}/fields", files=files, timeout=120)
            response.raise_for_status()
            field_uploaded = time.perf_counter() - started
            while True:
                detail = session.get(f"{base}/samples/{field_sample['id']}").json()
                if detail["status"] == "complete":
                    break
                if worker.poll() is not None:
                    raise SystemExit("the worker died")
                time.sleep(0.05)
            field_total = time.perf_counter() - started
            counts = detail["counts"]
            print(
                f"{len(files)} fields in one request: uploaded in {field_uploaded:.2f} s, {counts['classified']} "
                f"red cells found and all their predictions in PostgreSQL after {field_total:.2f} s",
                flush=True,
            )
            field_figures = {
                "fields": len(files),
                "field_upload_seconds": round(field_uploaded, 3),
                "seconds_to_all_field_predictions": round(field_total, 3),
                "field_cells_classified": counts["classified"],
                "field_cells_failed": counts["failed"],
            }
        print(
            json.dumps(
                {
                    "cells": len(bulk),
                    "batch": args.batch,
                    "seconds_to_all_predictions": round(total, 3),
                    "cells_per_s": round(rate, 1),
                    "upload_seconds": round(uploaded, 3),
                    "single_cell_p50_ms": round(float(p50), 1),
                    "single_cell_p95_ms": round(float(p95), 1),
                    **field_figures,
                    "workers": 1,
                    "worker_processes": args.concurrency,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
