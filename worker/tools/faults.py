"""Faults against the running product: nothing lost, nothing twice, and how long until all is done again.

    python -m worker.tools.faults [--cells 1000]      (make test-faults)

Starts a PostgreSQL and a Redis of its own (it stops, kills and restarts them; the suite's serve the tests),
then the product on them as the benchmarks do (worker/tools/bench_stack.py: gunicorn with 2 processes, debug
off; a worker with 2 processes that also runs the periodic sweep every 30 s, as in production). Each scenario
uploads --cells NIH cells (100 a request) to a new sample, breaks something, and waits until every cell is
terminal (classified or failed). It prints, scenario by scenario, cells sent, terminal, lost, duplicated
(predictions stored beyond one per classified cell; the schema also forbids a second), the answers the clients
got during the fault, unexpected 5xx (any 5xx but a 503 with Retry-After) and the seconds from the end of the
fault to the last terminal cell; the last line is one JSON object.

Scenarios: a pool child SIGKILLed mid-chunk; two workers at once; the whole worker SIGKILLed and a new one
started; PostgreSQL stopped for 20 s while tasks wait, then started; Redis SIGKILLed with its messages and
started empty; uploads while Redis is down; ten clients sending the same 100 files to one sample at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

DATABASE = "malaria_faults"
ROOT = Path(__file__).resolve().parents[2]
RECOVERY_LIMIT_S = 120  # the target: all terminal within 2 minutes of the fault
POSTGRES_OUTAGE_S = 20
REDIS_OUTAGE_S = 5


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def pause(worker: subprocess.Popen, paused: bool) -> None:
    """SIGSTOP (or SIGCONT) the worker and its pool: frozen mid-chunk, holding its claims, while the rest of the
    sample's messages wait in the broker, so the fault lands on waiting work by construction, not by timing."""
    for pid in [worker.pid, *children(worker.pid)]:
        os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)


class Postgres:
    """A throw-away cluster on its own port. PostgreSQL refuses to run as root: as root, it runs as postgres."""

    def __init__(self, port: int):
        self.port = port
        self.data = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.data, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.data, ignore_errors=True)


class Redis:
    """No persistence: a kill loses every message, as a Redis without AOF (or a failover to an empty one) does."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def own_servers() -> Iterator[tuple[Postgres, Redis]]:
    from malaria_site.auth_emulator import free_port

    postgres, redis = Postgres(free_port()), Redis(free_port())
    try:
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        if redis.process and redis.process.poll() is None:
            redis.kill()
        postgres.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/datasets/nih-malaria-cells"))
    args = parser.parse_args(argv)
    # Stopped from outside (Ctrl-C, kill): still stop the servers and processes it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    from worker.tools.bench_classifier import as_png
    from worker.tools.bench_stack import running_stack
    from worker.training.dataset import list_cells

    cells = list_cells(args.data)
    scenarios_with_own_cells = 6
    step = max(1, len(cells) // (scenarios_with_own_cells * args.cells + 100))
    pngs = [(c.path.with_suffix(".png").name, as_png(c.path)) for c in cells[::step]]
    batches = [pngs[i * args.cells : (i + 1) * args.cells] for i in range(scenarios_with_own_cells)]
    duplicates = pngs[scenarios_with_own_cells * args.cells :][:100]
    rows = []
    with (
        own_servers() as (postgres, redis),
        running_stack(
            database=DATABASE,
            redis_db=0,
            sweeper=True,
            postgres_port=postgres.port,
            redis_port=redis.port,
            production_errors=True,
        ) as stack,
    ):
        base, session = stack.base, stack.session
        answers: Counter = Counter()  # status codes the clients got since the scenario began
        unexpected: list[str] = []  # 5xx that are not a 503 with Retry-After

        def note(response) -> None:
            answers[response.status_code] += 1
            if response.status_code >= 500 and not (
                response.status_code == 503 and response.headers.get("Retry-After")
            ):
                unexpected.append(f"{response.status_code} {response.request.method} {response.url}")

        def sql(query: str) -> str:
            command = ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", DATABASE]
            return subprocess.run([*command, "-tAc", query], capture_output=True, text=True, check=True).stdout.strip()

        def new_sample(name: str) -> int:
            patient = session.post(f"{base}/patients", json={"identifier": name}).json()
            return session.post(f"{base}/samples", json={"patient": patient["id"]}).json()["id"]

        def upload(sample: int, batch: list[tuple[str, bytes]], client=None) -> None:
            for i in range(0, len(batch), 100):
                files = [("images", (n, d, "image/png")) for n, d in batch[i : i + 100]]
                note((client or session).post(f"{base}/samples/{sample}/images", files=files, timeout=120))

        def send(name: str, batch: list[tuple[str, bytes]]) -> int:
            answers.clear()
            unexpected.clear()
            sample = new_sample(name)
            upload(sample, batch)
            return sample

        def counts(sample: int) -> dict:
            response = session.get(f"{base}/samples/{sample}", timeout=30)
            note(response)
            return response.json()["counts"] if response.ok else {}

        def wait_until_processing(sample: int) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and counts(sample).get("processing", 0) == 0:
                time.sleep(0.05)

        def claim_holders(sample: int) -> list[int]:
            """The pids of the processes holding claims on the sample's cells (claimed_by is host:pid/task)."""
            rows = sql(
                "SELECT DISTINCT claimed_by FROM diagnostics_cellimage "
                f"WHERE sample_id = {int(sample)} AND status = 'processing'"
            )
            return [int(line.partition("/")[0].rpartition(":")[2]) for line in rows.splitlines() if line]

        def recover(name: str, sample: int, fault_ended: float) -> None:
            while True:
                now = counts(sample)
                terminal = now.get("classified", 0) + now.get("failed", 0)
                elapsed = time.monotonic() - fault_ended
                if (now and terminal >= now["total"]) or elapsed > 600:
                    break
                time.sleep(0.5)
            stored = int(
                sql(
                    "SELECT count(*) FROM diagnostics_prediction p JOIN diagnostics_cellimage c ON c.id = p.image_id "
                    f"WHERE c.sample_id = {int(sample)}"
                )
            )
            row = {
                "scenario": name,
                "cells_sent": now["total"],
                "terminal": terminal,
                "failed": now["failed"],
                "lost": now["total"] - terminal,
                "duplicated": max(0, stored - now["classified"]),
                "answers": {str(code): n for code, n in sorted(answers.items())},
                "unexpected_5xx": len(unexpected),
                "seconds_to_recover": round(elapsed, 1),
            }
            row["within_limit"] = (
                row["lost"] == 0 and row["duplicated"] == 0 and not unexpected and elapsed <= RECOVERY_LIMIT_S
            )
            rows.append(row)
            print(
                f"{name:44s} sent {row['cells_sent']:5d}  terminal {terminal:5d}  lost {row['lost']}  "
                f"duplicated {row['duplicated']}  unexpected 5xx {len(unexpected)}  "
                f"recovered in {row['seconds_to_recover']:6.1f} s  answers {row['answers']}",
                flush=True,
            )
            for line in unexpected[:5]:
                print(f"    {line}", flush=True)

        time.sleep(3)  # the worker loads the model after the fork

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
        fault_ended = time.monotonic()
        stack.worker = stack.start_worker(beat=True)
        recover("whole worker SIGKILLed, new one", sample, fault_ended)

        sample = send("FAULT-POSTGRES", batches[3][: args.cells - 100])
        wait_until_processing(sample)
        pause(stack.worker, True)
        postgres.stop()
        stopped = time.monotonic()
        upload(sample, batches[3][args.cells - 100 :])  # refused with a 503 while the database is away
        note(session.get(f"{base}/samples/{sample}", timeout=30))
        # The chunk in hand cannot be recorded nor released; the waiting tasks start, fail and retry.
        pause(stack.worker, False)
        time.sleep(max(0.0, POSTGRES_OUTAGE_S - (time.monotonic() - stopped)))
        postgres.start()
        fault_ended = time.monotonic()
        for _ in range(4):  # each web process's first request after the restart, on a connection that was cut
            note(session.get(f"{base}/samples/{sample}", timeout=30))
        recover(f"PostgreSQL stopped {POSTGRES_OUTAGE_S} s with tasks waiting", sample, fault_ended)

        pause(stack.worker, True)
        sample = send("FAULT-REDIS", batches[4])  # every message waits in Redis
        pause(stack.worker, False)
        deadline = time.monotonic() + 60
        while not claim_holders(sample) and time.monotonic() < deadline:
            time.sleep(0.01)
        pause(stack.worker, True)  # a chunk in hand, the rest of the messages still in Redis
        redis.kill()
        time.sleep(REDIS_OUTAGE_S)
        redis.start()
        fault_ended = time.monotonic()
        pause(stack.worker, False)
        recover("Redis killed, its messages lost", sample, fault_ended)

        answers.clear()
        unexpected.clear()
        sample = new_sample("FAULT-REDIS-DOWN")
        redis.kill()
        upload(sample, batches[5])  # accepted: the work waits in the database until the broker is back
        redis.start()
        fault_ended = time.monotonic()
        recover("uploads while Redis is down", sample, fault_ended)

        answers.clear()
        unexpected.clear()
        sample = new_sample("FAULT-DUPLICATES")
        clients = [stack.session.__class__() for _ in range(10)]
        for client in clients:
            client.headers.update(session.headers)
        threads = [threading.Thread(target=upload, args=(sample, duplicates, client)) for client in clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recover("10 clients sending the same 100 files at once", sample, started)
        rows[-1]["images_stored"] = int(sql(f"SELECT count(*) FROM diagnostics_cellimage WHERE sample_id = {sample}"))
        rows[-1]["within_limit"] &= rows[-1]["images_stored"] == len(duplicates)
        print(f"    images stored: {rows[-1]['images_stored']} of {len(duplicates)} distinct files", flush=True)
    result = {
        "limit_seconds": RECOVERY_LIMIT_S,
        "scenarios": rows,
        "all_within_limit": all(r["within_limit"] for r in rows),
    }
    print(json.dumps(result))
    return 0 if result["all_within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
