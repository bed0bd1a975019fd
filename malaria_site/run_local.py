"""`make run`: the whole product on one machine, for trying it out and for development.

Starts the Firebase Auth emulator, migrates, seeds the demo lab and accounts, starts a Celery worker and
the web server, prints where to sign in, and stops everything on Ctrl-C. Without DATABASE_URL/REDIS_URL
it uses SQLite and a filesystem broker in var/; with them, PostgreSQL and Redis.
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

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("MALARIA_VAR_DIR", ROOT / "var"))
WEB_PORT = int(os.environ.get("PORT", "8000"))
EMULATOR = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or "127.0.0.1:9099"


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


def main() -> None:
    for folder in ("logs", "broker", "broker-processed", "broker-control", "media"):
        (VAR / folder).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1"),
        "FIREBASE_AUTH_EMULATOR_HOST": EMULATOR,
        "FIREBASE_PROJECT_ID": os.environ.get("FIREBASE_PROJECT_ID", "demo-malaria-detect"),
        "PYTHONPATH": str(ROOT),
        "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
    }
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
        start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "malaria_site",
                "worker",
                "-B",
                "--concurrency",
                "1",
                "--schedule",
                str(VAR / "celerybeat-schedule"),
                "--loglevel",
                "INFO",
            ],
        )
        web = start("web", [python, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"])
        wait_for(f"http://127.0.0.1:{WEB_PORT}/api/v1/schema", web, "the web server")
        print(
            f"""
Malaria Detect is running.
  Sign in:   http://127.0.0.1:{WEB_PORT}/signin  (with a demo account above)
  API docs:  http://127.0.0.1:{WEB_PORT}/api/v1/docs  (API calls take a Firebase ID token from the Auth emulator:
             POST http://{EMULATOR}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=demo)
  Admin:     http://127.0.0.1:{WEB_PORT}/admin/  (create a superuser: .venv/bin/python manage.py createsuperuser)
  Logs in {VAR / "logs"}. Ctrl-C stops everything.""",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(1)
        print("A process stopped; see the logs. Stopping the rest.", flush=True)
    finally:
        stop()


if __name__ == "__main__":
    main()
