"""The product as benchmarks run it: a throw-away PostgreSQL database, a Redis database, the Auth emulator,
gunicorn and (optionally) a Celery worker, all started here and stopped after; one signed-in clinician."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]  # the repository: worker/tools/bench_stack.py


@dataclass
class Stack:
    base: str  # http://127.0.0.1:PORT/api/v1
    session: requests.Session  # signed in as the bench clinician
    web: subprocess.Popen
    worker: subprocess.Popen | None
    tokens: list[str]  # ID tokens of the clinician and of the extra members, in that order
    start_worker: Callable[[], subprocess.Popen]  # another worker process, as the first was started


@contextlib.contextmanager
def running_stack(
    *,
    database: str,
    redis_db: int,
    web_workers: int = 2,
    worker_concurrency: int | None = 2,
    extra_members: int = 0,
    sweeper: bool = False,
    postgres_port: int = 5432,
    redis_port: int = 6379,
    production_errors: bool = False,
) -> Iterator[Stack]:
    """sweeper: the first worker also runs the periodic sweep (Celery beat), as the scheduler does in production.
    postgres_port, redis_port: servers of the caller's own (the fault suite stops and kills them).
    production_errors: debug off, so failures answer as in production (JSON 503 with Retry-After, not Django's
    debug page); the processes then load tests/settings.py, the one module that trusts the Auth emulator with
    debug off, pointed at the same services."""
    from malaria_site.auth_emulator import AuthEmulator, free_port

    def psql(command: str, check: bool = True) -> None:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(postgres_port), "-U", "postgres", "-qc", command], check=check
        )

    psql(f"DROP DATABASE IF EXISTS {database}")
    psql(f"CREATE DATABASE {database}")
    emulator = AuthEmulator()
    var = Path(os.environ.get("MALARIA_VAR_DIR", ROOT / "var"))
    database_url = f"postgres://postgres@127.0.0.1:{postgres_port}/{database}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/{redis_db}",  # never 14 or 15: the tests' broker and cache
        "MEDIA_ROOT": str(var / f"{database}-media"),
        # Development mode is the only one that trusts the Auth emulator (see FIREBASE_AUTH_EMULATOR_TRUSTED).
        "DJANGO_DEBUG": "1",
        "FIREBASE_AUTH_EMULATOR_TRUSTED": "1",
        "FIREBASE_PROJECT_ID": "demo-malaria-detect",
        "FIREBASE_AUTH_EMULATOR_HOST": emulator.host,
        "PYTHONPATH": str(ROOT),
    }
    if production_errors:
        env |= {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TEST_DATABASE_URL": database_url,
            "TEST_REDIS_CACHE_URL": f"redis://127.0.0.1:{redis_port}/{redis_db + 1}",
            "TEST_REDIS_BROKER_URL": env["REDIS_URL"],
            "TEST_MEDIA_ROOT": env["MEDIA_ROOT"],
        }
    port = free_port()
    processes: list[subprocess.Popen] = []
    log_dir = var / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def start(name: str, command: list[str]) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 (the process writes to it until stopped)
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        return processes[-1]

    python = sys.executable
    try:
        subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        for db in (redis_db, redis_db + 1) if production_errors else (redis_db,):
            flush = ["redis-cli", "-p", str(redis_port), "-n", str(db), "FLUSHDB"]
            subprocess.run(flush, check=True, stdout=subprocess.DEVNULL)
        emails = ["bench@example.org", *(f"bench-{i}@example.org" for i in range(extra_members))]
        for email in emails:
            emulator.create_account(email)
        setup = "from accounts.services import lab_create, membership_set; lab = lab_create(name='Bench');" + "".join(
            f"membership_set(lab=lab, email='{email}', role='clinician');" for email in emails
        )
        subprocess.run([python, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True)
        gunicorn = ["-m", "gunicorn", "malaria_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(web_workers)]
        web = start("web", [python, *gunicorn, "--timeout", "120"])
        celery = ["-m", "celery", "-A", "malaria_site", "worker", "--concurrency", str(worker_concurrency or 1)]
        workers = itertools.count()

        def start_worker(beat: bool = False) -> subprocess.Popen:
            name = f"worker-{next(workers)}"
            schedule = ["-B", "--schedule", str(log_dir / f"{name}-beat-schedule")] if beat else []
            return start(name, [python, *celery, "-n", f"{name}@%h", *schedule, "-l", "WARNING"])

        worker = start_worker(beat=sweeper) if worker_concurrency else None
        base = f"http://127.0.0.1:{port}/api/v1"
        session = requests.Session()
        tokens = [emulator.sign_in(email) for email in emails]
        session.headers["Authorization"] = f"Bearer {tokens[0]}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if session.get(f"{base}/me", timeout=10).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # still starting (slow on a busy machine)
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not start")
            time.sleep(0.3)
        yield Stack(base=base, session=session, web=web, worker=worker, tokens=tokens, start_worker=start_worker)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        emulator.stop()
        psql(f"DROP DATABASE IF EXISTS {database}", check=False)
