"""`make run` as a new user runs it: SQLite and the filesystem broker, the web server and a worker writing at once.

Real processes started as run_local starts them (its settings, its worker and web commands), the Auth
emulator's tokens, uploads one sample after another from two clients while the worker records predictions.
No upload may fail ("database is locked" was a 500), and every cell is classified.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from malaria_site.auth_emulator import free_port
from malaria_site.run_local import ROOT, local_settings, var_folders_create, web_command, worker_command
from tests.cells import generated_cells
from tests.environments import bare_environment

pytestmark = pytest.mark.slow

SAMPLES = 20
CELLS_PER_SAMPLE = 40
EMAIL = "sqlite-clinician@example.org"


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "a") as handle:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(check, *, seconds: float, what: str, processes=(), logs=()) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            break
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen:\n" + "\n".join(log.read_text()[-3000:] for log in logs))


def test_uploads_while_the_worker_writes_never_fail_on_sqlite(tmp_path, auth_emulator):
    var = tmp_path / "var"
    var_folders_create(var)
    env = bare_environment(**local_settings(var=var, emulator=auth_emulator.host), CLASSIFY_CHUNK_SIZE="20")

    def manage(*arguments: str) -> None:
        subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, check=True, capture_output=True)

    manage("migrate", "--noinput")
    manage("create_lab", "SQLite Lab")
    manage("add_member", "--lab", "SQLite Lab", "--email", EMAIL, "--role", "clinician")
    auth_emulator.create_account(EMAIL)
    token = auth_emulator.sign_in(EMAIL)

    port = free_port()
    worker_log, web_log = var / "logs" / "worker.log", var / "logs" / "web.log"
    worker = start(worker_command(var), env, worker_log)
    web = start(web_command(port), env, web_log)
    processes, logs = (worker, web), (worker_log, web_log)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"

        def answers() -> bool:
            try:
                return requests.get(f"{base}/schema", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_for(answers, seconds=60, what="the web server answering", processes=processes, logs=logs)
        wait_for(
            lambda: " ready." in worker_log.read_text(),
            seconds=60,
            what="the worker ready",
            processes=processes,
            logs=logs,
        )
        headers = {"Authorization": f"Bearer {token}"}
        patient = requests.post(f"{base}/patients", json={"identifier": "SQL-1"}, headers=headers, timeout=30)
        assert patient.status_code == 201, patient.text
        cells = generated_cells(CELLS_PER_SAMPLE)

        def upload_one_sample(_) -> tuple[int, int, int]:
            sample = requests.post(
                f"{base}/samples", json={"patient": patient.json()["id"]}, headers=headers, timeout=60
            )
            if sample.status_code != 201:
                return sample.status_code, 0, 0
            files = [("images", (name, data, "image/png")) for name, data in cells]
            response = requests.post(
                f"{base}/samples/{sample.json()['id']}/images", files=files, headers=headers, timeout=60
            )
            return sample.status_code, response.status_code, sample.json()["id"]

        with ThreadPoolExecutor(max_workers=2) as clients:
            answered = list(clients.map(upload_one_sample, range(SAMPLES)))
        assert [(created, uploaded) for created, uploaded, _ in answered] == [(201, 202)] * SAMPLES, (
            web_log.read_text()[-3000:]
        )

        def every_cell_classified() -> bool:
            counts = [
                requests.get(f"{base}/samples/{sample_id}", headers=headers, timeout=30).json()["counts"]
                for _, _, sample_id in answered
            ]
            return all(count["classified"] == CELLS_PER_SAMPLE for count in counts)

        wait_for(every_cell_classified, seconds=180, what="every cell classified", processes=processes, logs=logs)
        assert "database is locked" not in worker_log.read_text() + web_log.read_text()
    finally:
        for process in processes:
            stop(process)
