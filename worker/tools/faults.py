"""Faults against the running product: nothing lost, nothing twice, and how long until all is done again.

    python -m worker.tools.faults [--cells 1000]      (make test-faults)

Starts the product as the benchmarks do (worker/tools/bench_stack.py: gunicorn with 2 processes, a worker
with 2 processes that also runs the periodic sweep, a throw-away database, Redis db 10), then for each
scenario uploads --cells NIH cells (100 a request) to a new sample, breaks something, and waits until every
cell is terminal (classified or failed). It prints, scenario by scenario, cells sent, terminal, predictions
stored (one per classified cell: a second would be a duplicate, which the schema also forbids), 5xx answers
and the seconds from the fault to the last terminal cell; the last line is one JSON object.

Scenarios here: a pool child SIGKILLed mid-chunk; two workers at once; the whole worker SIGKILLed and a new
one started. Not yet: Redis killed with data loss and PostgreSQL restarted (they need servers of their own,
since the suite's PostgreSQL and Redis serve the tests too).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DATABASE = "malaria_faults"
ROOT = Path(__file__).resolve().parents[2]
RECOVERY_LIMIT_S = 120  # the target: all terminal within 2 minutes of the fault


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def sql(query: str) -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-tAc", query],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def predictions_stored(sample_id: int) -> int:
    return int(
        sql(
            "SELECT count(*) FROM diagnostics_prediction p JOIN diagnostics_cellimage c ON c.id = p.image_id "
            f"WHERE c.sample_id = {int(sample_id)}"
        )
    )


def claim_holders(sample_id: int) -> list[int]:
    """The pids of the processes holding claims on the sample's cells now (claimed_by is host:pid)."""
    rows = sql(
        "SELECT DISTINCT claimed_by FROM diagnostics_cellimage "
        f"WHERE sample_id = {int(sample_id)} AND status = 'processing'"
    )
    return [int(line.rpartition(":")[2]) for line in rows.splitlines() if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/datasets/nih-malaria-cells"))
    args = parser.parse_args(argv)

    from worker.tools.bench_classifier import as_png
    from worker.tools.bench_stack import running_stack
    from worker.training.dataset import list_cells

    cells = list_cells(args.data)
    pngs = [(c.path.with_suffix(".png").name, as_png(c.path)) for c in cells[:: len(cells) // (3 * args.cells)]]
    rows = []
    with running_stack(database=DATABASE, redis_db=10, sweeper=True) as stack:
        base, session = stack.base, stack.session
        server_errors = 0

        def send(name: str, batch: list[tuple[str, bytes]]) -> int:
            nonlocal server_errors
            patient = session.post(f"{base}/patients", json={"identifier": name}).json()
            sample = session.post(f"{base}/samples", json={"patient": patient["id"]}).json()["id"]
            for i in range(0, len(batch), 100):
                files = [("images", (n, d, "image/png")) for n, d in batch[i : i + 100]]
                response = session.post(f"{base}/samples/{sample}/images", files=files, timeout=120)
                server_errors += response.status_code >= 500
            return sample

        def wait_until_processing(sample: int) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if session.get(f"{base}/samples/{sample}").json()["counts"]["processing"] > 0:
                    return
                time.sleep(0.05)

        def recover(name: str, sample: int, fault_at: float) -> None:
            while True:
                counts = session.get(f"{base}/samples/{sample}").json()["counts"]
                terminal = counts["classified"] + counts["failed"]
                elapsed = time.monotonic() - fault_at
                if terminal >= counts["total"] or elapsed > 600:
                    break
                time.sleep(0.5)
            stored = predictions_stored(sample)
            row = {
                "scenario": name,
                "cells_sent": counts["total"],
                "terminal": terminal,
                "failed": counts["failed"],
                "lost": counts["total"] - terminal,
                "duplicated": max(0, stored - counts["classified"]),
                "server_errors": server_errors,
                "seconds_to_recover": round(elapsed, 1),
                "within_limit": terminal == counts["total"] and elapsed <= RECOVERY_LIMIT_S,
            }
            rows.append(row)
            print(
                f"{name:34s} sent {row['cells_sent']:5d}  terminal {terminal:5d}  lost {row['lost']}  "
                f"duplicated {row['duplicated']}  5xx {server_errors}  recovered in {row['seconds_to_recover']:6.1f} s",
                flush=True,
            )

        time.sleep(3)  # the worker loads the model after the fork
        batches = [pngs[i * args.cells : (i + 1) * args.cells] for i in range(3)]

        sample = send("FAULT-CHILD", batches[0])
        deadline = time.monotonic() + 60
        while not (holders := claim_holders(sample)) and time.monotonic() < deadline:
            time.sleep(0.01)
        pool = children(stack.worker.pid)
        assert holders and all(pid in pool for pid in holders), f"a pool child holds a chunk: {holders}, {pool}"
        os.kill(holders[0], signal.SIGKILL)
        recover("pool child SIGKILLed mid-chunk", sample, time.monotonic())

        second = stack.start_worker()
        sample = send("FAULT-TWO-WORKERS", batches[1])
        recover("two workers at once", sample, time.monotonic())
        second.terminate()
        second.wait(timeout=30)

        sample = send("FAULT-WORKER", batches[2])
        wait_until_processing(sample)
        for pid in [*children(stack.worker.pid), stack.worker.pid]:  # the worker and its pool, no cleanup
            os.kill(pid, signal.SIGKILL)
        stack.worker.wait(timeout=30)
        fault_at = time.monotonic()
        stack.worker = stack.start_worker(beat=True)
        recover("whole worker SIGKILLed, new one", sample, fault_at)
    result = {
        "limit_seconds": RECOVERY_LIMIT_S,
        "scenarios": rows,
        "all_within_limit": all(r["within_limit"] for r in rows),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
