"""`make run`: the whole product on one machine, for trying it out and for development.

Starts the Firebase Auth emulator, migrates, seeds the demo lab and accounts, starts a Celery worker and
the web server, prints where to sign in, and stops everything on Ctrl-C. Without DATABASE_URL/REDIS_URL
it uses SQLite and a filesystem broker in var/; with them, PostgreSQL and Redis.

`python -m malaria_site.run_local manage ARGS...` (`make manage ARGS="..."`) runs a management command in
the same environment, after migrating, so that it works on a fresh clone as well as next to `make run`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from malaria_site.auth_emulator import AuthEmulator
from malaria_site.env import env_int, env_str

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(env_str("MALARIA_VAR_DIR", str(ROOT / "var")))
WEB_PORT = env_int("PORT", 8000, minimum=1)
EMULATOR = env_str("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


def wait_for(url: str, process: subprocess.Popen, name: str, seconds: int = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with status {process.returncode}; see {VAR / 'logs'}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{name} did not start within {seconds} s; see {VAR / 'logs'}")


def local_settings(*, var: Path = VAR, emulator: str = EMULATOR) -> dict[str, str]:
    """Development mode, trusting the local Auth emulator: what every process of `make run` runs with."""
    return {
        "DJANGO_DEBUG": "1",
        "FIREBASE_AUTH_EMULATOR_TRUSTED": "1",
        "FIREBASE_AUTH_EMULATOR_HOST": emulator,
        "FIREBASE_PROJECT_ID": os.environ.get("FIREBASE_PROJECT_ID", "demo-malaria-detect"),
        "MALARIA_VAR_DIR": str(var),
        "PYTHONPATH": str(ROOT),
        "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
    }


def var_folders_create(var: Path = VAR) -> None:
    """The folders of the embedded setup: logs, the filesystem broker's and local media."""
    for folder in ("logs", "broker", "broker-processed", "broker-control", "media"):
        (var / folder).mkdir(parents=True, exist_ok=True)


def celery_worker(*options: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "malaria_site", "worker", *options, "--loglevel", "INFO"]


def worker_command(var: Path = VAR) -> list[str]:
    """One Celery worker of two processes (a field's segmentation is mostly one core's work: two fields at a
    time use both), with the periodic sweeper (-B) beside it."""
    return celery_worker("-B", "--concurrency", "2", "--schedule", str(var / "celerybeat-schedule"))


def notifier_command() -> list[str]:
    """A worker for webhook deliveries only (their own queue): a slow receiver never holds up the cells worker."""
    queue = os.environ.get("WEBHOOK_QUEUE", "").strip() or "notifications"
    return celery_worker("-Q", queue, "-n", "notifier@%h", "--concurrency", "2")


def web_command(port: int = WEB_PORT) -> list[str]:
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]


def manage(arguments: list[str]) -> int:
    """`make manage ARGS="..."`: a management command as `make run` would run it, on a migrated database."""
    env = {**os.environ, **local_settings()}
    var_folders_create()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, check=False).returncode


def main() -> None:
    var_folders_create()
    env = {**os.environ, **local_settings()}
    python = sys.executable
    processes: list[subprocess.Popen] = []

    def start(name: str, command: list[str]) -> subprocess.Popen:
        log = open(VAR / "logs" / f"{name}.log", "a")  # noqa: SIM115 (open for the process's life)
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append(process)
        return process

    def stop(*_):
        # SIGTERM to each main process only: Celery shuts its own pool down (signalling the whole group hangs it).
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"Starting the Firebase Auth emulator on {EMULATOR} ...", flush=True)
        emulator = AuthEmulator(port=int(EMULATOR.rsplit(":", 1)[1]), log_path=VAR / "logs" / "auth-emulator.log")
        processes.append(emulator.process)
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        print("Demo accounts (lab 'Demo Lab'):", flush=True)
        subprocess.run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
        start("worker", worker_command())
        start("notifier", notifier_command())
        web = start("web", web_command())
        wait_for(f"http://127.0.0.1:{WEB_PORT}/api/v1/schema", web, "the web server")
        print(
            f"""
Malaria Detect is running.
  Sign in:   http://127.0.0.1:{WEB_PORT}/signin  (with a demo account above)
  API docs:  http://127.0.0.1:{WEB_PORT}/api/v1/docs  (API calls take a Firebase ID token from the Auth emulator:
             POST http://{EMULATOR}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=demo)
  Admin:     http://127.0.0.1:{WEB_PORT}/admin/  (create a superuser: make manage ARGS=createsuperuser)
  A lab and a member: make manage ARGS='create_lab "My Lab"'
                      make manage ARGS='add_member --lab "My Lab" --email you@example.org --role clinician'
  Logs in {VAR / "logs"}. Ctrl-C stops everything.""",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(1)
        print("A process stopped; see the logs. Stopping the rest.", flush=True)
    finally:
        stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["manage"]:
        sys.exit(manage(sys.argv[2:]))
    main()
