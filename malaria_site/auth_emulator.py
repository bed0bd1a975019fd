"""The Firebase Auth emulator (firebase-tools from npm), offline: for `make run`, the tests and the benchmarks.

Development only: the emulator's tokens are unsigned, and the settings refuse to trust them unless debug is
on, the project id starts with demo- and FIREBASE_AUTH_EMULATOR_TRUSTED is set (docs/decisions.md).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
FIREBASE = ROOT / "node_modules" / ".bin" / "firebase"
PROJECT_ID = "demo-malaria-detect"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AuthEmulator:
    def __init__(self, *, port: int | None = None, log_path: Path | None = None):
        if not FIREBASE.exists():
            raise RuntimeError(f"{FIREBASE} is missing: run `make install` (npm ci installs firebase-tools)")
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.folder = tempfile.TemporaryDirectory(prefix="auth-emulator-")
        config = Path(self.folder.name) / "firebase.json"
        config.write_text(
            json.dumps(
                {
                    "emulators": {
                        "auth": {"host": "127.0.0.1", "port": self.port},
                        "hub": {"host": "127.0.0.1", "port": free_port()},
                        "logging": {"host": "127.0.0.1", "port": free_port()},
                        "ui": {"enabled": False},
                    }
                }
            )
        )
        self.log = open(log_path or Path(self.folder.name) / "emulator.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(FIREBASE), "emulators:start", "--only", "auth", "--project", PROJECT_ID, "--config", str(config)],
            cwd=self.folder.name,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true", "CI": "true"},
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Auth emulator exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if requests.get(f"http://{self.host}/", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        raise RuntimeError("the Auth emulator did not start within 90 s")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()
        self.folder.cleanup()

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def create_account(self, email: str, password: str = "correct-horse-battery", *, verified: bool = True) -> str:
        response = requests.post(
            f"{self.base}/identitytoolkit.googleapis.com/v1/projects/{PROJECT_ID}/accounts",
            json={"email": email, "password": password, "emailVerified": verified},
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["localId"]

    def sign_in(self, email: str, password: str = "correct-horse-battery") -> str:
        """An ID token, as the browser SDK would get it."""
        response = requests.post(
            f"{self.base}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=demo-api-key",
            json={"email": email, "password": password, "returnSecureToken": True},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["idToken"]

    def update(self, uid: str, **fields) -> None:
        response = requests.post(
            f"{self.base}/identitytoolkit.googleapis.com/v1/projects/{PROJECT_ID}/accounts:update",
            json={"localId": uid, **fields},
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        response.raise_for_status()
