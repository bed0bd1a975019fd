"""A real Celery worker process for end-to-end tests, on the test database and the machine's Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
# A queue of this test session's own: a worker left over from an interrupted run cannot take its tasks.
QUEUE = f"cells-test-{os.getpid()}"
_started: list[CeleryWorker] = []


def test_database_url() -> str:
    """The database the tests are using (pytest-django's test_ copy), as a URL."""
    db = connection.settings_dict
    user = f"{db['USER']}:{db['PASSWORD']}" if db["PASSWORD"] else db["USER"]
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def harness_environment() -> dict[str, str]:
    """The environment of a process started by a test: the harness's settings, on this session's services."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE_URL": test_database_url(),
        "TEST_REDIS_CACHE_URL": settings.CACHES["default"]["LOCATION"],
        "TEST_REDIS_BROKER_URL": settings.CELERY_BROKER_URL,
        "TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": str(ROOT),
        "CELERY_QUEUE": QUEUE,
    }


class CeleryWorker:
    def __init__(self, **env):
        self.folder = tempfile.mkdtemp(prefix="celery-worker-")
        self.log_path = Path(self.folder) / "worker.log"
        self.env = {**harness_environment(), **{key: str(value) for key, value in env.items()}}
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        _started.append(self)
        log = open(self.log_path, "a")  # noqa: SIM115 (kept open for the process's life)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "malaria_site",
                "worker",
                "-B",
                "--schedule",
                str(Path(self.folder) / "beat-schedule"),
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.log()[-3000:]}")
            if " ready." in self.log():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not become ready:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no cleanup, no acknowledgements."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # the main process stops its pool; signalling the group hangs the shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def purge_queue() -> None:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter("*"):
        name = key.decode()
        if name in (QUEUE, "celery") or name.startswith("unacked") or name.startswith("_kombu"):
            client.delete(key)


def use_session_queue() -> None:
    """Send this process's tasks to the session's queue (see QUEUE)."""
    from malaria_site.celery import app

    app.conf.task_default_queue = QUEUE


def stop_all() -> None:
    """Kill every worker this session started, whatever state the tests left them in."""
    for worker in _started:
        worker.kill()
