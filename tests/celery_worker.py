"""A real Celery worker process for end-to-end tests, on the test database and the machine's Redis."""

from __future__ import annotations

import contextlib
import json
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
# Webhook deliveries go to a queue of their own (settings.WEBHOOK_QUEUE), consumed by a worker of their own.
NOTIFICATIONS_QUEUE = f"notifications-test-{os.getpid()}"
DELIVER_TASK = "worker.tasks.deliver_webhook"
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
        "WEBHOOK_QUEUE": NOTIFICATIONS_QUEUE,
    }


class CeleryWorker:
    def __init__(self, *, pause_after_claim: bool = False, queue: str | None = None, beat: bool = True, **env):
        """`env` sets the worker's settings; with pause_after_claim, its first claim holds until kill().
        `queue`: the one queue it consumes (NOTIFICATIONS_QUEUE for a notifications worker), else QUEUE;
        `beat`: whether the periodic sweeps run in it (-B)."""
        self.queue = queue
        self.beat = beat
        self.folder = tempfile.mkdtemp(prefix="celery-worker-")
        self.log_path = Path(self.folder) / "worker.log"
        self.app = "malaria_site"
        self.claim_marker = Path(self.folder) / "claimed.json"
        if pause_after_claim:
            from tests.celery_app import PAUSE_AFTER_CLAIM

            self.app = "tests.celery_app"  # production's app with a pause (see there); never run outside tests
            env[PAUSE_AFTER_CLAIM] = self.claim_marker
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
                self.app,
                "worker",
                *(["-B", "--schedule", str(Path(self.folder) / "beat-schedule")] if self.beat else []),
                *(["-Q", self.queue, "-n", f"{self.queue}@%h"] if self.queue else []),
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

    def paused_claim(self, timeout: float = 60) -> list[int]:
        """The ids of the chunk a pause_after_claim worker has claimed and now holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.claim_marker.exists():
                return json.loads(self.claim_marker.read_text())
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"the worker claimed nothing within {timeout} s:\n{self.log()[-3000:]}")

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
        if name in (QUEUE, NOTIFICATIONS_QUEUE, "celery") or name.startswith("unacked") or name.startswith("_kombu"):
            client.delete(key)


def queued_tasks() -> list[tuple[str, list]]:
    """The tasks waiting in this session's queue on the broker, oldest first: (task name, args)."""
    import base64

    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    tasks = []
    for raw in reversed(client.lrange(QUEUE, 0, -1)):  # Kombu pushes on the left and pops on the right
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks


@contextlib.contextmanager
def broker_unreachable():
    """This process's tasks go to a port where nothing answers, as when Redis is down, then back."""
    from malaria_site.auth_emulator import free_port
    from malaria_site.celery import app

    def forget_connections():
        # The app keeps its pools for the URL it first used; Kombu's registry keeps one per URL, left open.
        app._pool = None  # noqa: SLF001
        app.amqp._producer_pool = None  # noqa: SLF001

    working = app.conf.broker_url
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    forget_connections()
    # Both spellings, as in use_session_queue: Celery 5.6 reads CELERY_BROKER_URL before broker_url.
    app.conf.update(broker_url=unreachable, CELERY_BROKER_URL=unreachable)
    try:
        yield
    finally:
        forget_connections()
        app.conf.update(broker_url=working, CELERY_BROKER_URL=working)


def use_session_queue() -> None:
    """Send this process's tasks to the session's queue (see QUEUE)."""
    from malaria_site.celery import app

    routes = {DELIVER_TASK: {"queue": NOTIFICATIONS_QUEUE}}
    # Both spellings: the app reads Django's settings under the CELERY_ namespace, and Celery 5.6 reads the
    # prefixed key first (a change to the plain name alone is not seen).
    app.conf.update(
        task_default_queue=QUEUE, CELERY_TASK_DEFAULT_QUEUE=QUEUE, task_routes=routes, CELERY_TASK_ROUTES=routes
    )
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)  # a router made before holds the old routes


def stop_all() -> None:
    """Kill every worker this session started, whatever state the tests left them in."""
    for worker in _started:
        worker.kill()


def wait_until(condition, timeout: float = 90, message: str = "condition") -> None:
    """Poll until `condition()` is true (a worker's outcome reaching the database), or fail saying what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
