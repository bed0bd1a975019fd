"""The command-line client's own rules, without a server: batches within the limits, picture sizes read from
their first bytes, Retry-After, the server's errors in words, and the credentials file kept private."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from malaria_detect_client import api, auth, pictures, uploads
from malaria_detect_client.errors import AuthError, UsageError
from PIL import Image

pytestmark = pytest.mark.pure


def picture(path: Path, size: tuple[int, int], image_format: str = "PNG") -> Path:
    Image.new("RGB", size, (200, 120, 130)).save(path, format=image_format)
    return path


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "BMP", "WEBP"])
def test_a_pictures_size_is_read_from_its_first_bytes(image_format):
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 960)).save(buffer, format=image_format)
    assert pictures.size_from_head(buffer.getvalue()[: pictures.HEAD_BYTES]) == (1280, 960)


def test_a_lossless_webp_cell_is_read_and_taken_for_a_cell():
    buffer = io.BytesIO()
    Image.new("RGB", (142, 131)).save(buffer, format="WEBP", lossless=True)
    size = pictures.size_from_head(buffer.getvalue())
    assert size == (142, 131) and not pictures.looks_like_field(size)


def test_auto_kind_comes_from_the_first_readable_picture_or_zip_member(tmp_path):
    field = picture(tmp_path / "field.jpg", (1280, 960), "JPEG")
    assert uploads.kind_of(uploads.collect([str(field)])) == "fields"
    archive = tmp_path / "cells.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("__MACOSX/._a.png", b"junk")
        zipped.write(picture(tmp_path / "a.png", (130, 128)), "cells/a.png")
    assert uploads.kind_of(uploads.collect([str(archive)])) == "cells"
    unreadable = tmp_path / "cell.txt"
    unreadable.write_text("text")
    with pytest.raises(UsageError, match="--kind fields or --kind cells"):
        uploads.kind_of(uploads.collect([str(unreadable)]))


def test_folders_give_their_pictures_in_order_and_leave_the_rest_out(tmp_path):
    folder = tmp_path / "smear"
    (folder / "day2").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for path in (folder / "b.png", folder / "a.JPG", folder / "day2" / "c.webp", folder / ".hidden" / "d.png"):
        path.write_bytes(b"x")
    (folder / "notes.txt").write_text("notes")
    (folder / ".DS_Store").write_bytes(b"x")
    inputs = uploads.collect([str(folder), str(folder / "b.png")])  # a file named twice is sent once
    assert [upload.path.relative_to(folder).as_posix() for upload in inputs.uploads] == [
        "a.JPG",
        "b.png",
        "day2/c.webp",
    ]
    assert sorted(path.name for path in inputs.left_out) == [".DS_Store", "notes.txt"]
    with pytest.raises(UsageError, match="does not exist"):
        uploads.collect([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no pictures"):
        uploads.collect([str(tmp_path / "empty")])


def test_batches_keep_under_every_limit_and_send_each_zip_alone():
    limits = uploads.BatchLimits(files=3, bytes=100, pixels=1000)

    def one(name, size=10, pixels=100, archive=False):
        return uploads.Upload(path=Path(name), size=size, pixels=pixels, is_archive=archive)

    files = [one("1"), one("2"), one("3"), one("4"), one("z.zip", 500, archive=True), one("5", 60), one("6", 60)]
    files += [one("7", 10, 600), one("8", 10, 600), one("big", 300)]
    names = [[upload.name for upload in batch] for batch in uploads.batches(files, limits)]
    assert names == [["1", "2", "3"], ["4"], ["z.zip"], ["5"], ["6", "7"], ["8"], ["big"]]


def test_the_upload_body_moves_the_bar_by_the_files_bytes_and_back_on_a_retry():
    class Bar:
        n = 0

        def update(self, step):
            self.n += step

    bar = Bar()
    body = uploads.ProgressBody(b"x" * 1000, bar, file_bytes=800)
    body.read(500)
    assert bar.n == 400
    body.read()
    assert bar.n == 800
    body.rewind()
    assert bar.n == 0


def response(status: int, body=None, headers=None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if body is not None else b"<html>oops</html>"
    answer.headers.update(headers or {})
    return answer


def test_retry_after_is_honoured_in_seconds_or_as_a_date_and_capped():
    assert api.retry_after_seconds(response(429, headers={"Retry-After": "7"}), 0) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= api.retry_after_seconds(response(503, headers={"Retry-After": later}), 0) <= 30
    assert api.retry_after_seconds(response(429, headers={"Retry-After": "86400"}), 0) == api.MAX_RETRY_WAIT_SECONDS
    assert api.retry_after_seconds(response(503), 3) == 8  # none given: 1, 2, 4, 8 s


def test_the_servers_json_errors_become_one_line():
    assert api.error_text(response(404, {"detail": "Not found."})) == "Not found."
    fields = {"collected_at": ["The date cannot be in the future."], "detail": "Check the sample."}
    assert api.error_text(response(400, fields)) == "collected_at: The date cannot be in the future.; Check the sample."
    assert api.error_text(response(502)) == "HTTP 502"


def test_credentials_are_kept_private_and_refused_when_others_can_read_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    kept = auth.Credentials(server="https://lab.example.org", email="a@example.org", api_key="k", refresh_token="r")
    path = auth.credentials_save(kept)
    assert path == tmp_path / "config" / "malaria-detect" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert auth.credentials_load() == kept
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temporary file left behind
    path.chmod(0o640)
    with pytest.raises(AuthError, match="can be read by other users"):
        auth.credentials_load()
    assert auth.credentials_remove() and not path.exists()
    with pytest.raises(AuthError, match="not signed in"):
        auth.credentials_load()


def test_firebase_refusals_are_said_in_words():
    class Session:
        def post(self, url, **kwargs):
            return response(400, {"error": {"message": "TOO_MANY_ATTEMPTS_TRY_LATER : Access disabled"}})

    with pytest.raises(AuthError, match="Too many attempts"):
        auth.firebase_post(Session(), "https://identitytoolkit.googleapis.com/v1/accounts:signInWithPassword")


@pytest.mark.parametrize(
    ("server", "refused"),
    [
        ("https://malaria.example.org/", False),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("http://malaria.example.org", True),
        ("http://10.0.0.5:8000", True),
        ("ftp://malaria.example.org", True),
    ],
)
def test_a_sign_in_token_never_travels_in_clear_beyond_this_machine(server, refused):
    from malaria_detect_client.auth import check_server_url
    from malaria_detect_client.errors import UsageError

    if refused:
        with pytest.raises(UsageError):
            check_server_url(server)
    else:
        assert check_server_url(server) == server.rstrip("/")
