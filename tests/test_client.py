"""The command-line client (client/, `malaria-detect`) end to end: the installed console script run as a
subprocess against the product served over HTTP (pytest-django's live server on the test database), signing
in with the Firebase Auth emulator, with a real Celery worker segmenting and classifying with the real model.

Real pictures come from ../shared/datasets (IML field photographs, NIH cells; tests/cells.py): those tests skip,
saying why, where the folder is absent (and fail in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.celery_worker import CeleryWorker, purge_queue
from tests.cells import shared_cells_or_skip, shared_fields_or_skip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIENT = Path(sys.executable).parent / "malaria-detect"
PASSWORD = "correct-horse-battery"  # the cast's accounts in the Auth emulator (tests/conftest.py)
EXIT_AUTH, EXIT_REFUSED = 3, 4


class Client:
    """`malaria-detect` as a user runs it, with its own config folder (XDG_CONFIG_HOME) and home."""

    def __init__(self, home: Path, server: str):
        if not CLIENT.exists():
            pytest.fail(f"{CLIENT} is missing: `make install-dev` installs the client (pip install -e ./client)")
        self.config = home / "config"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("MALARIA_DETECT_") and key != "XDG_CONFIG_HOME"
        }
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(self.config), MALARIA_DETECT_SERVER=server)
        self.home = home

    @property
    def credentials(self) -> Path:
        return self.config / "malaria-detect" / "credentials.json"

    def run(self, *args: str, password: str | None = None, env: dict | None = None, timeout: float = 240):
        extra = {"MALARIA_DETECT_PASSWORD": password} if password is not None else {}
        return subprocess.run(
            [str(CLIENT), *args],
            env={**self.env, **extra, **(env or {})},
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def login(self, person) -> None:
        done = self.run("login", "--email", person.email, password=PASSWORD)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def client_for(tmp_path, live_server, auth_emulator):
    def make(name: str = "home") -> Client:
        home = tmp_path / name
        home.mkdir()
        return Client(home, live_server.url)

    return make


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        purge_queue()
        process = CeleryWorker().start()
    yield process
    process.stop()


def create_patient(person, identifier: str) -> dict:
    response = person.client().post("/api/v1/patients", {"identifier": identifier}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_login_keeps_only_a_refresh_token_in_a_private_file(client_for, clinician, lab_a):
    client = client_for()
    done = client.run("login", "--email", clinician.email, password=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert f"as {clinician.email}, clinician in {lab_a.name}" in done.stderr

    assert stat.S_IMODE(client.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(client.credentials.parent.stat().st_mode) == 0o700
    text = client.credentials.read_text()
    assert PASSWORD not in text
    kept = json.loads(text)
    assert kept["email"] == clinician.email and kept["refresh_token"]
    assert set(kept) == {"server", "email", "api_key", "refresh_token", "emulator"}

    # A fresh ID token is exchanged from the refresh token alone, by the next command.
    assert client.run("result", "999999").stderr.strip().endswith("Not found.")

    client.credentials.chmod(0o644)
    exposed = client.run("result", "1")
    assert exposed.returncode == EXIT_AUTH and "can be read by other users" in exposed.stderr

    assert client.run("logout").returncode == 0
    assert not client.credentials.exists()
    signed_out = client.run("result", "1")
    assert signed_out.returncode == EXIT_AUTH and "You are not signed in" in signed_out.stderr


def test_a_wrong_password_exits_with_the_auth_status_and_keeps_nothing(client_for, clinician):
    client = client_for()
    done = client.run("login", "--email", clinician.email, password="not-the-password")
    assert done.returncode == EXIT_AUTH, done.stderr
    assert "The email or password is not right." in done.stderr
    assert not client.credentials.exists()


def test_a_person_in_no_lab_is_told_at_login_and_nothing_is_kept(client_for, pending_user):
    client = client_for()
    done = client.run("login", "--email", pending_user.email, password=PASSWORD)
    assert done.returncode == EXIT_AUTH, done.stderr
    assert "The server refused access (HTTP 403)" in done.stderr
    assert not client.credentials.exists()


def test_a_development_server_needs_the_emulator_to_be_asked_for(client_for, clinician, auth_emulator):
    client = client_for()
    env = {key: value for key, value in client.env.items() if key != "FIREBASE_AUTH_EMULATOR_HOST"}
    client.env = env
    done = client.run("login", "--email", clinician.email, password=PASSWORD)
    assert done.returncode == 2
    assert f"give --emulator {auth_emulator.host}" in done.stderr


def test_an_unknown_patient_is_refused_unless_creating_it_is_asked_for(client_for, clinician, tmp_path):
    client = client_for()
    client.login(clinician)
    picture = tmp_path / "note.txt"
    picture.write_text("not a picture")
    done = client.run("submit", "--patient", "MRN-NOBODY", "--kind", "cells", str(picture))
    assert done.returncode == EXIT_REFUSED
    assert "There is no patient 'MRN-NOBODY' in your lab" in done.stderr
    assert clinician.client().get("/api/v1/patients?search=MRN-NOBODY").json()["count"] == 0


def test_a_bad_file_exits_non_zero_with_the_servers_message(client_for, clinician, sample):
    client = client_for()
    client.login(clinician)
    create_patient(clinician, "MRN-BAD")
    bad = client.home / "smear.jpg"
    bad.write_bytes(b"<html><body>not a photograph</body></html>")
    # What the server says about this file, asked directly.
    with open(bad, "rb") as handle:
        direct = clinician.client().post(f"/api/v1/samples/{sample['id']}/fields", {"fields": [handle]})
    reason = direct.json()["rejected"][0]["error"]

    done = client.run("submit", "--patient", "MRN-BAD", "--kind", "fields", str(bad))
    assert done.returncode == EXIT_REFUSED, done.stderr
    assert f"Rejected smear.jpg: {reason}" in done.stderr
    assert "Nothing was accepted" in done.stderr


def test_a_request_over_the_servers_limit_is_refused_naming_the_sample(client_for, clinician, settings):
    settings.UPLOAD_MAX_REQUEST_BYTES = 4096
    client = client_for()
    client.login(clinician)
    create_patient(clinician, "MRN-BIG")
    photograph = client.home / "field.png"
    photograph.write_bytes(os.urandom(8192))  # the size is what counts: refused before it is read

    done = client.run("submit", "--patient", "MRN-BIG", "--kind", "fields", str(photograph))
    assert done.returncode == EXIT_REFUSED, done.stderr
    assert "(HTTP 413): The upload is over the" in done.stderr
    assert re.search(r"Sample \d+ holds what was accepted before this: http://\S+/samples/\d+", done.stderr)


def test_submit_a_zip_of_cells_waits_out_the_upload_throttle(client_for, clinician, worker, monkeypatch):
    from diagnostics.throttles import UploadThrottle

    cells_folder = shared_cells_or_skip()
    # One upload a second: the client's second request (the ZIP after the loose cells) is answered 429.
    monkeypatch.setattr(UploadThrottle, "THROTTLE_RATES", {"uploads": "1/s"})
    client = client_for()
    client.login(clinician)
    cells = [sorted((cells_folder / label).iterdir())[:6] for label in ("Parasitized", "Uninfected")]
    cells = cells[0] + cells[1]
    loose = client.home / "loose"
    loose.mkdir()
    for path in cells[:4]:
        shutil.copy(path, loose / path.name)
    archive = client.home / "cells.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in cells[4:]:
            zipped.write(path, f"cells/{path.name}")

    done = client.run("submit", "--patient", "MRN-2", "--create-patient", "--json", str(loose), str(archive))
    assert done.returncode == 0, done.stderr
    assert "Created patient MRN-2." in done.stderr
    assert "The server is busy (Request was throttled." in done.stderr
    sample = json.loads(done.stdout)
    assert sample["patient_identifier"] == "MRN-2" and sample["status"] == "complete"
    assert sample["counts"] == {"total": 12, "queued": 0, "processing": 0, "classified": 12, "failed": 0}
    assert sample["field_count"] == 0


def test_another_labs_sample_does_not_exist_for_the_client(client_for, clinician, lab_b):
    from tests.factories import SampleFactory

    theirs = SampleFactory(patient__lab=lab_b)
    client = client_for()
    client.login(clinician)
    done = client.run("result", str(theirs.pk))
    assert done.returncode == EXIT_REFUSED
    assert "(HTTP 404): Not found." in done.stderr


def test_submit_a_folder_of_field_photographs_prints_the_result(client_for, clinician, worker):
    fields = shared_fields_or_skip() / "fields"
    client = client_for()
    client.login(clinician)
    patient = create_patient(clinician, "MRN-1")
    folder = client.home / "smear"
    folder.mkdir()
    for path in sorted(fields.iterdir())[:2]:
        shutil.copy(path, folder / path.name)
    (folder / "notes.txt").write_text("left out: not a picture")

    done = client.run("submit", "--patient", "MRN-1", "--collected", "2026-11-28", str(folder))
    assert done.returncode == 0, done.stderr
    assert "Left out 1 file(s)" in done.stderr
    assert "Uploading" in done.stderr and "Classifying" in done.stderr and "100%" in done.stderr

    samples = clinician.client().get(f"/api/v1/patients/{patient['id']}/samples").json()["results"]
    assert len(samples) == 1
    sample = clinician.client().get(f"/api/v1/samples/{samples[0]['id']}").json()
    assert sample["status"] == "complete" and sample["field_count"] == 2 and sample["collected_at"] == "2026-11-28"
    assert sample["counts"]["classified"] > 50
    out = done.stdout
    assert f"Sample {sample['id']}, patient MRN-1, collected 2026-11-28: complete" in out
    assert f"Result:       {sample['result']} (automatic)" in out
    assert "Final result: not yet reviewed: preliminary" in out
    assert f"Parasitemia:  {100 * sample['parasitemia']:.2f} % (95 % interval" in out
    assert f"Red cells:    {sample['counts']['classified']} classified: {sample['parasitized']} parasitized" in out
    assert f"/samples/{sample['id']}" in out

    as_json = client.run("result", str(sample["id"]), "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == sample

    saved = client.run("report", str(sample["id"]), "-o", "report.pdf")
    assert saved.returncode == 0, saved.stderr
    assert (client.home / "report.pdf").read_bytes().startswith(b"%PDF-")
