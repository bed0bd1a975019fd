"""From paths on the command line to upload requests within the server's limits.

Files named on the command line are always sent (the server says what is wrong with one that is not an image);
folders are walked for pictures (PNG, JPEG, TIFF, BMP, WebP by extension; dot-files and other files are left
out and counted); a ZIP goes as the request's `archive`, alone, as the API takes one archive per request.
Loose pictures are grouped into requests under the batch limits below, which stay well inside the server's
default limits per request (UploadLimits and UPLOAD_MAX_REQUEST_BYTES in the product) so that a request is
never refused for its size and a retried request costs little.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from urllib3 import encode_multipart_formdata  # requests' own dependency

from malaria_detect_client import pictures
from malaria_detect_client.errors import UsageError

MB = 1024 * 1024
KINDS = ("fields", "cells")


@dataclass(frozen=True)
class BatchLimits:
    files: int
    bytes: int
    pixels: int


# The server takes up to 2,000 cells, 200 MB and 150 megapixels per request, and up to 200 field photographs.
BATCH_LIMITS = {
    "cells": BatchLimits(files=500, bytes=32 * MB, pixels=100_000_000),
    "fields": BatchLimits(files=20, bytes=64 * MB, pixels=20 * 4000 * 3000),
}
# The API's multipart field for loose files, by kind (diagnostics/api.py).
FORM_FIELD = {"cells": "images", "fields": "fields"}


@dataclass
class Upload:
    """One file to send: a picture, or a ZIP sent as the request's archive."""

    path: Path
    size: int
    is_archive: bool = False
    pixels: int = 0  # width x height when it could be read

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Inputs:
    uploads: list[Upload] = field(default_factory=list)
    left_out: list[Path] = field(default_factory=list)  # files in folders that are not pictures

    @property
    def bytes(self) -> int:
        return sum(upload.size for upload in self.uploads)


def is_zip(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"PK\x03\x04" or path.suffix.lower() == ".zip"


def collect(paths: list[str]) -> Inputs:
    inputs, seen = Inputs(), set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        inputs.uploads.append(Upload(path=path, size=path.stat().st_size, is_archive=is_zip(path)))

    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = 0
            for root, folders, files in os.walk(path):
                folders[:] = sorted(name for name in folders if not name.startswith("."))
                for name in sorted(files):
                    candidate = Path(root) / name
                    if name.startswith(".") or candidate.suffix.lower() not in pictures.IMAGE_SUFFIXES:
                        inputs.left_out.append(candidate)
                        continue
                    add(candidate)
                    found += 1
            if not found:
                raise UsageError(f"{path} holds no pictures (PNG, JPEG, TIFF, BMP or WebP files).")
        elif path.is_file():
            add(path)
        elif path.exists():
            raise UsageError(f"{path} is neither a file nor a folder.")
        else:
            raise UsageError(f"{path} does not exist.")
    if not inputs.uploads:
        raise UsageError("Give at least one picture, folder or ZIP to upload.")
    return inputs


def read_sizes(inputs: Inputs) -> None:
    for upload in inputs.uploads:
        if not upload.is_archive:
            size = pictures.file_size(upload.path)
            upload.pixels = size[0] * size[1] if size else 0


def kind_of(inputs: Inputs) -> str:
    """`--kind auto`: fields or cells, from the first picture (or ZIP member) whose size can be read."""
    for upload in inputs.uploads:
        size = pictures.first_size_in_archive(upload.path) if upload.is_archive else pictures.file_size(upload.path)
        if size:
            return "fields" if pictures.looks_like_field(size) else "cells"
    raise UsageError(
        "Cannot tell whether these are field photographs or single cells (no PNG, JPEG, BMP or WebP size could be "
        "read): give --kind fields or --kind cells."
    )


def batches(uploads: list[Upload], limits: BatchLimits) -> Iterator[list[Upload]]:
    """Requests in the order given: each ZIP alone; pictures together while under every limit."""
    batch: list[Upload] = []
    size = pixels = 0
    for upload in uploads:
        if upload.is_archive:
            if batch:
                yield batch
                batch, size, pixels = [], 0, 0
            yield [upload]
            continue
        if batch and (
            len(batch) + 1 > limits.files or size + upload.size > limits.bytes or pixels + upload.pixels > limits.pixels
        ):
            yield batch
            batch, size, pixels = [], 0, 0
        batch.append(upload)
        size += upload.size
        pixels += upload.pixels
    if batch:
        yield batch


def multipart(batch: list[Upload], kind: str) -> tuple[bytes, str]:
    """The request body and its content type: pictures in the kind's field, a ZIP in `archive`."""
    parts = []
    for upload in batch:
        name = "archive" if upload.is_archive else FORM_FIELD[kind]
        content_type = "application/zip" if upload.is_archive else "application/octet-stream"
        parts.append((name, (upload.name, upload.path.read_bytes(), content_type)))
    return encode_multipart_formdata(parts)


class ProgressBody(io.BytesIO):
    """A request body that moves a progress bar as the connection reads it, in the files' bytes."""

    def __init__(self, data: bytes, bar, file_bytes: int):
        super().__init__(data)
        self.bar, self.length, self.file_bytes, self.reported = bar, len(data), file_bytes, 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self._report()
        return chunk

    def rewind(self) -> None:
        self.seek(0)
        self._report()

    def _report(self) -> None:
        done = round(self.tell() * self.file_bytes / self.length) if self.length else self.file_bytes
        if done != self.reported:
            self.bar.update(done - self.reported)
            self.reported = done
