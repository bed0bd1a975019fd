"""Many batch clients at once against gunicorn and the workers (issue 10): `make bench-load`.

    python -m worker.tools.bench_load [--clients 10] [--seconds 60] [--data DIR] [--fields-data DIR]

Starts the product (bench_stack: throw-away database, Redis db 11, gunicorn with 2 processes, a worker with
2), one account per client, and Locust headless on worker/tools/locustfile.py for --seconds. Then waits until
every image sent is terminal (classified or failed). Prints requests/s, p50/p95 by request kind, the 5xx
count and the seconds from the end of the load to the last image done; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATABASE = "malaria_bench_load"
ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/datasets/nih-malaria-cells"))
    parser.add_argument("--fields-data", default=str(ROOT.parent / "shared/datasets/iml-malaria-fields"))
    args = parser.parse_args(argv)

    from worker.tools.bench_classifier import as_png
    from worker.tools.bench_stack import running_stack
    from worker.training.dataset import list_cells

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        (data / "cells").mkdir()
        (data / "fields").mkdir()
        cells = list_cells(args.data)
        for cell in cells[:: max(1, len(cells) // 2000)][:2000]:
            (data / "cells" / cell.path.with_suffix(".png").name).write_bytes(as_png(cell.path))
        for path in sorted((Path(args.fields_data) / "fields").iterdir())[:60]:
            (data / "fields" / path.name).write_bytes(path.read_bytes())

        with running_stack(database=DATABASE, redis_db=11, extra_members=args.clients - 1) as stack:
            host = stack.base.removesuffix("/api/v1")
            prefix = data / "locust"
            env = {**os.environ, "BENCH_TOKENS": ",".join(stack.tokens), "BENCH_DATA": str(data)}
            command = [
                sys.executable, "-m", "locust", "-f", str(ROOT / "worker/tools/locustfile.py"), "--headless",
                "-u", str(args.clients), "-r", str(args.clients), "-t", f"{args.seconds}s", "--host", host,
                "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
            ]  # fmt: skip
            subprocess.run(command, env=env, check=False, cwd=ROOT)
            load_ended = time.monotonic()
            session, base = stack.session, stack.base
            deadline = load_ended + 600
            while time.monotonic() < deadline:
                waiting = session.get(f"{base}/samples", params={"status": "processing", "page_size": 1}).json()
                if waiting["count"] == 0:
                    break
                time.sleep(1)
            drained_seconds = round(time.monotonic() - load_ended, 1)
            totals = _sample_totals(session, base)
            stats = list(csv.DictReader(open(f"{prefix}_stats.csv")))  # noqa: SIM115
            failures = list(csv.DictReader(open(f"{prefix}_failures.csv")))  # noqa: SIM115

    by_name = {
        row["Name"]: {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "p50_ms": float(row["50%"] or 0),
            "p95_ms": float(row["95%"] or 0),
            "rps": round(float(row["Requests/s"]), 2),
        }
        for row in stats
    }
    server_errors = sum(int(row["Occurrences"]) for row in failures if "50" in row["Error"][:40])
    for name, row in by_name.items():
        print(f"{name:18s} {row['requests']:6d} requests  {row['rps']:6.2f}/s  p50 {row['p50_ms']:6.0f} ms  "
              f"p95 {row['p95_ms']:6.0f} ms  failures {row['failures']}")  # fmt: skip
    for row in failures:
        print(f"failure: {row['Method']} {row['Name']}: {row['Error'][:160]} x{row['Occurrences']}")
    result = {
        "clients": args.clients,
        "seconds": args.seconds,
        "requests_per_s": by_name.get("Aggregated", {}).get("rps"),
        "p95_ms": by_name.get("Aggregated", {}).get("p95_ms"),
        "server_errors": server_errors,
        "by_request": {name: row for name, row in by_name.items() if name != "Aggregated"},
        "images": totals,
        "all_terminal": totals["queued"] + totals["processing"] == 0,
        "seconds_to_all_terminal_after_load": drained_seconds,
    }
    print(json.dumps(result))
    return 0


def _sample_totals(session, base: str) -> dict:
    totals = {"total": 0, "queued": 0, "processing": 0, "classified": 0, "failed": 0}
    url, params = f"{base}/samples", {"page_size": 200}
    while url:
        page = session.get(url, params=params).json()
        for sample in page["results"]:
            for key in totals:
                totals[key] += sample["counts"][key]
        url, params = page["next"], None
    return totals


if __name__ == "__main__":
    sys.exit(main())
