"""Validation of uploaded cell images, one file at a time, before anything is stored.

Everything is decided from the bytes; the file name and the browser's content type are never trusted. Every
problem with the input becomes a `RejectedFile` with a sentence a clinician can act on; nothing here raises
for bad input (only programming errors raise). This module needs neither Django nor a database.

Rules for one image (`validate_image`):

- an empty file, or one over `max_file_bytes`, is rejected before it is parsed;
- Pillow identifies the format from the bytes, trying only the allowed plugins (PNG, JPEG, TIFF, BMP, WebP);
  anything else is rejected, named when it is recognisable (GIF, ICO, PDF, ZIP, HTML, SVG, text, ...);
- the declared width x height is checked against `max_pixels` before any pixel is decoded, and Pillow's own
  decompression-bomb warning is turned into an error;
- the image is fully decoded (`load()`, after `verify()` where the format has checksums, such as PNG's CRCs),
  so truncated or corrupt files are rejected; `ImageFile.LOAD_TRUNCATED_IMAGES` must stay False (a
  configuration error that would let truncated images through raises RuntimeError);
- images with more than one frame or page (multi-page TIFF, animated WebP or PNG) are rejected: one upload
  is one cell;
- polyglots (a valid image that also carries another file) are rejected:
  - PNG: any byte after the IEND chunk (found by walking the chunks, not by searching);
  - JPEG: more than 16 bytes after the end-of-image marker (found by walking the segments and the
    entropy-coded data, or the last FFD9 when the walk fails);
  - WebP: any byte after the length the RIFF header declares;
  - every format: a ZIP local-header or end-of-central-directory signature anywhere in the file, or
    `<script`, `<html` or `<?php` (any case) anywhere in the file.

Rules for a ZIP archive (`validate_archive`; nothing is extracted to disk):

- the archive must start with a ZIP signature (so an image with a ZIP appended is not an archive either);
  its central directory is walked by hand before `zipfile` reads it: a directory declaring or holding more
  than `max_archive_members` entries or more bytes than they can need, or entries whose bytes overlap (many
  entries pointing at one member), reject the whole archive, in time and memory bounded by the limit;
- it must open with `zipfile`; declared uncompressed sizes summing to more than
  `max_archive_uncompressed_bytes` reject the whole archive;
- directories, `__MACOSX/` entries and dot-files (including `._` resource forks) are skipped silently;
- a member with an unsafe path (`..`, an absolute path, a drive letter), an encrypted member, a nested archive,
  a member over `max_file_bytes` or with a compression ratio over `max_compression_ratio` is rejected alone;
- members are read with a bounded read, and the bytes actually read count towards the archive's limit, so a
  lying header cannot exhaust memory; a CRC or decompression error rejects only that member;
- each remaining member goes through `validate_image`; accepted cells are named by the member's basename,
  rejected members by "<archive>/<member path as written>" so the clinician can find them.

A request (`validate_upload`) is the loose files followed by the archive's members: at most `max_files` cells
are considered (the rest are rejected unread), and a cell whose bytes repeat an earlier one is rejected as a
duplicate. Accepted cells keep the order they were given in.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import re
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from PIL import Image, ImageFile

from worker.serving.preprocessing import MAX_PIXELS as CELL_MAX_PIXELS

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "TIFF", "BMP", "WEBP"})

# Pillow's open() wants a list or tuple; a fixed order keeps identification deterministic.
_ALLOWED_PLUGINS = tuple(sorted(ALLOWED_FORMATS))
_ACCEPTED_LIST = "PNG, JPEG, TIFF, BMP or WebP"
_MAX_NAME_CHARS = 255
# Some JPEG writers pad after the end-of-image marker; more than this is a payload.
_JPEG_TRAILING_ALLOWED = 16
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_MARKUP = re.compile(rb"<(?:script|html|\?php)", re.IGNORECASE)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MB = 1024 * 1024


@dataclass(frozen=True)
class ValidatedCell:
    filename: str
    data: bytes
    sha256: str
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class RejectedFile:
    filename: str
    error: str


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = 10 * 1024 * 1024
    # Per image; also the decompression-bomb limit. A cell crop is 100-300 pixels across; a megapixel is
    # ample, and keeps one image's decoding to milliseconds. The worker decodes under the same limit.
    max_pixels: int = CELL_MAX_PIXELS
    max_files: int = 2000  # cells per request, archive members included
    max_archive_members: int = 5000
    max_archive_uncompressed_bytes: int = 500 * 1024 * 1024
    max_compression_ratio: float = 100.0  # per member: uncompressed/compressed, above it = zip bomb
    # Pixels decoded per request, whatever becomes of each image: bounds the seconds one request costs (a
    # few hundred bytes of lossless WebP decode to megapixels).
    max_request_pixels: int = 150_000_000
    min_width: int = 1  # the smallest picture, either way round (a field photograph needs room for cells)
    min_height: int = 1
    formats: frozenset[str] = ALLOWED_FORMATS
    item: str = "cell"  # what one image is, in the messages


# Whole-field photographs (a phone on the eyepiece or a microscope camera: 1280 x 960 up to 4000 x 3000).
# 4000 x 3000 is the largest camera the issue names; more pixels would be a decompression bomb here, and the
# worker decodes fields under the same limit.
FIELD_MAX_PIXELS = 4000 * 3000
# An uncompressed 12 MP RGB TIFF is 36 MB; JPEGs and PNGs of a smear are far smaller.
FIELD_MAX_FILE_BYTES = 40 * 1024 * 1024
# Under 320 x 240 a field at x100 holds too few whole red cells to be worth counting (about 20 px a cell).
FIELD_MIN_WIDTH, FIELD_MIN_HEIGHT = 320, 240
# Fields per request: a smear needs tens of fields (500 to 2,000 red cells), not thousands.
FIELD_MAX_FILES = 200
FIELD_FORMATS = frozenset({"JPEG", "PNG", "TIFF"})
FIELD_LIMITS = UploadLimits(
    max_file_bytes=FIELD_MAX_FILE_BYTES,
    max_pixels=FIELD_MAX_PIXELS,
    max_files=FIELD_MAX_FILES,
    max_archive_members=FIELD_MAX_FILES * 2,
    max_archive_uncompressed_bytes=FIELD_MAX_FILES * FIELD_MAX_FILE_BYTES,
    max_request_pixels=FIELD_MAX_FILES * FIELD_MAX_PIXELS,
    min_width=FIELD_MIN_WIDTH,
    min_height=FIELD_MIN_HEIGHT,
    formats=FIELD_FORMATS,
    item="field photograph",
)


_Outcome = ValidatedCell | RejectedFile
# A shared default instance: the dataclass is frozen, so sharing it is safe.
_DEFAULT_LIMITS = UploadLimits()


class _Rejection(Exception):
    """Internal: carries a clinician-readable reason out of a check."""


class PixelBudget:
    """The pixels one request may still decode (UploadLimits.max_request_pixels), spent before decoding."""

    def __init__(self, limits: UploadLimits):
        self.limits, self.left = limits, limits.max_request_pixels

    def spend(self, pixels: int) -> None:
        if pixels > self.left:
            self.left = 0
            raise _Rejection(
                f"this upload holds more than {self.limits.max_request_pixels / 1e6:,.0f} megapixels of images; "
                "send the rest in another upload"
            )
        self.left -= pixels


# --- names -----------------------------------------------------------------------------------------------


def _strip_controls(text: str) -> str:
    # Cc covers NUL and ASCII controls; Cf covers invisible bidi overrides that can disguise an extension.
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def _truncate(name: str) -> str:
    if len(name) <= _MAX_NAME_CHARS:
        return name
    suffix = PurePosixPath(name).suffix
    # Keep a short extension visible so the clinician still recognises the file.
    if 0 < len(suffix) <= 16:
        return name[: _MAX_NAME_CHARS - len(suffix)] + suffix
    return name[:_MAX_NAME_CHARS]


def safe_filename(filename: str) -> str:
    """A display name: the basename (after "/" or "\\"), without control characters, at most 255 chars."""
    base = re.split(r"[/\\]", filename)[-1]
    name = _strip_controls(base).strip()
    if name in ("", ".", ".."):
        return "unnamed"
    return _truncate(name)


def _member_display(archive_name: str, member_name: str) -> str:
    # The path as written in the archive (sanitised, not resolved) so the clinician can find the member.
    path = _strip_controls(member_name).strip() or "unnamed"
    return _truncate(f"{archive_name}/{path}")


def _size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < _MB:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size / _MB:.1f}".removesuffix(".0") + " MB"


def _too_big_message(size: int, limit: int) -> str:
    shown, limit_shown = _size_text(size), _size_text(limit)
    if shown == limit_shown:
        # Rounding would print "10 MB, over the 10 MB limit"; give exact counts instead.
        shown, limit_shown = f"{size:,} bytes", f"{limit:,}-byte"
    return f"file is {shown}, over the {limit_shown} limit"


# --- identification of what is not an allowed image ---------------------------------------------------------


def _describe_unrecognised(data: bytes) -> str:
    """Name what the bytes are, for files Pillow's allowed plugins cannot open."""
    head = data[:1024]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF images are not accepted; use " + _ACCEPTED_LIST
    if head.startswith(b"\x00\x00\x01\x00"):
        return "ICO icons are not accepted; use " + _ACCEPTED_LIST
    if head.startswith(b"%PDF-"):
        return "not an image: the file is a PDF document"
    if head.startswith(_ZIP_SIGNATURES):
        return "not an image: the file is a ZIP archive (upload archives in the archive field)"
    lowered = head.lower().lstrip(b"\xef\xbb\xbf \t\r\n")
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered or b"<script" in lowered:
        return "not an image: the file is a web page (HTML)"
    if b"<svg" in lowered:
        return "not an image: the file is an SVG drawing; use " + _ACCEPTED_LIST
    if _looks_like_text(data[:8192]):
        return "not an image: the file is text"
    name = _pillow_format_name(data)
    if name:
        return f"{name} images are not accepted; use {_ACCEPTED_LIST}"
    return "not an image: the file type was not recognised; use " + _ACCEPTED_LIST


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sample's end is still text.
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def _pillow_format_name(data: bytes) -> str | None:
    # Header-only open with every plugin, just to name the format; nothing is decoded.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return image.format
    except Exception:  # any plugin may fail in any way on bytes it does not own
        return None


# --- polyglot checks -----------------------------------------------------------------------------------------


def _png_end(data: bytes) -> int | None:
    """Offset just past the IEND chunk, found by walking the chunk lengths; None if there is none."""
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length
        if chunk_type == b"IEND":
            return pos if pos <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Offset just past the first top-level EOI marker, walking segments and entropy-coded data."""
    size = len(data)
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos < size:
        if data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers carry no length
            continue
        if pos + 2 > size:
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            return None
        pos += length
        if marker != 0xDA:
            continue
        # Start of scan: entropy-coded data runs until an 0xFF that is not stuffing (00) or a restart marker.
        while True:
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= size:
                return None
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break
    return None


def _check_polyglot(data: bytes, image_format: str) -> None:
    if image_format == "PNG":
        end = _png_end(data)
        if end is None:
            raise _Rejection("the PNG image is incomplete (it has no end chunk)")
        if end < len(data):
            raise _Rejection(
                f"{len(data) - end} bytes of extra data follow the end of the image (possibly a hidden file)"
            )
    elif image_format == "JPEG":
        end = _jpeg_end(data)
        if end is None:
            # Unusual structure that the decoder tolerated: fall back to the last end-of-image marker.
            last = data.rfind(b"\xff\xd9")
            end = last + 2 if last >= 0 else None
        if end is None:
            raise _Rejection("the JPEG image is incomplete (it has no end-of-image marker)")
        if len(data) - end > _JPEG_TRAILING_ALLOWED:
            raise _Rejection(
                f"{len(data) - end} bytes of extra data follow the end of the image (possibly a hidden file)"
            )
    elif image_format == "WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        declared += declared % 2  # RIFF pads odd-sized chunks
        if len(data) > declared:
            raise _Rejection(
                f"{len(data) - declared} bytes of extra data follow the end of the image (possibly a hidden file)"
            )
    if any(signature in data for signature in _ZIP_SIGNATURES):
        raise _Rejection("the image contains an embedded ZIP archive (possibly a hidden file)")
    if _MARKUP.search(data):
        raise _Rejection("the image contains embedded web page or script code")


# --- one image ------------------------------------------------------------------------------------------------


def _accepted_list(formats: frozenset[str]) -> str:
    if formats == ALLOWED_FORMATS:
        return _ACCEPTED_LIST
    names = sorted("WebP" if f == "WEBP" else f for f in formats)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _open(data: bytes) -> ImageFile.ImageFile:
    return Image.open(io.BytesIO(data), formats=_ALLOWED_PLUGINS)


def _decode(data: bytes, limits: UploadLimits, budget: PixelBudget) -> tuple[int, int, str]:
    """Open, check and fully decode; returns (width, height, format) or raises _Rejection."""
    with warnings.catch_warnings():
        # Pillow warns (rather than fails) between 1x and 2x its own limit; a warning is a rejection here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = _open(data)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _Rejection("the image's declared size is far too large (possible decompression bomb)") from None
        except Image.UnidentifiedImageError:
            raise _Rejection(_describe_unrecognised(data)) from None
        except Exception:  # Pillow raises many exception types for malformed headers
            raise _Rejection("the image is damaged and its header could not be read") from None
        with image:
            image_format = image.format or ""
            if image_format not in limits.formats:
                # e.g. a JPEG with a multi-picture extension is opened as MPO
                kind = f"{image_format} images are" if image_format else "this kind of image is"
                raise _Rejection(f"{kind} not accepted; use {_accepted_list(limits.formats)}")
            width, height = image.size
            if width < 1 or height < 1:
                raise _Rejection("the image has no pixels")
            shorter, longer = sorted((width, height))
            if shorter < min(limits.min_width, limits.min_height) or longer < max(limits.min_width, limits.min_height):
                raise _Rejection(
                    f"image is {width} x {height} pixels, under the {limits.min_width} x {limits.min_height} "
                    f"minimum for a {limits.item}"
                )
            if width * height > limits.max_pixels:
                raise _Rejection(
                    f"image is {width} x {height} pixels, over the {limits.max_pixels:,}-pixel limit "
                    "(possible decompression bomb)"
                )
            try:
                frames = getattr(image, "n_frames", 1)
            except Exception:  # counting pages walks the file, which may be damaged
                raise _Rejection("the image is damaged and could not be read") from None
            if frames > 1:
                raise _Rejection(f"the image has {frames} frames or pages; upload one {limits.item} per image")
            budget.spend(width * height)
            try:
                # verify() checks what load() skips (PNG chunk CRCs); it leaves the image unusable, so reopen.
                image.verify()
                with _open(data) as decoded:
                    decoded.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise _Rejection("the image's declared size is far too large (possible decompression bomb)") from None
            except Exception:  # truncated or corrupt pixel data surfaces as many exception types
                raise _Rejection("the image is damaged or incomplete and could not be read") from None
    return width, height, image_format


def validate_image(
    filename: str, data: bytes, limits: UploadLimits = _DEFAULT_LIMITS, budget: PixelBudget | None = None
) -> _Outcome:
    """Check one uploaded file; every problem with the bytes becomes a RejectedFile."""
    name = safe_filename(filename)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Some code switched Pillow to accept truncated files: refuse to validate rather than let them through.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; uploads cannot be validated")
    if not data:
        return RejectedFile(name, "empty file")
    if len(data) > limits.max_file_bytes:
        return RejectedFile(name, _too_big_message(len(data), limits.max_file_bytes))
    try:
        width, height, image_format = _decode(data, limits, budget or PixelBudget(limits))
        _check_polyglot(data, image_format)
    except _Rejection as rejection:
        return RejectedFile(name, str(rejection))
    return ValidatedCell(
        filename=name,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        format=image_format,
    )


# --- archives -------------------------------------------------------------------------------------------------

# What zipfile raises for malformed archives or members (CRC, truncated streams, unsupported methods).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error)
_DRIVE = re.compile(r"^[A-Za-z]:")


# A central-directory entry is 46 bytes plus its name, extra field and comment; names are at most 255
# characters here, so 1 KB an entry is generous. Bounding the directory's size before zipfile reads it
# bounds what zipfile allocates (it builds one ZipInfo per entry, whatever the end record says).
_CENTRAL_ENTRY_MAX_BYTES = 1024
_U32, _U16 = 0xFFFFFFFF, 0xFFFF


def _zip64_extra(extra: bytes, needed: list[str]) -> dict[str, int]:
    """The 64-bit values of a central-directory entry's ZIP64 extra field, in the order the format gives."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = int.from_bytes(extra[pos : pos + 2], "little"), int.from_bytes(extra[pos + 2 : pos + 4], "little")
        if tag == 0x0001:
            body, values = extra[pos + 4 : pos + 4 + size], {}
            for index, name in enumerate(needed):
                if 8 * index + 8 > len(body):
                    break
                values[name] = int.from_bytes(body[8 * index : 8 * index + 8], "little")
            return values
        pos += 4 + size
    return {}


def _central_directory_problem(data: bytes, limits: UploadLimits) -> str | None:
    """Why the archive's central directory must not be handed to zipfile, or None.

    Read by hand, bounded, before zipfile builds its entries: the directory's declared size and entry count
    must fit the member limit, and no two entries may share or overlap their bytes (CVE-2024-0450's zip
    bomb, where many entries point at one compressed member; refused whatever Python's own fix).
    """
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0 or eocd + 22 > len(data):
        return "the ZIP archive is damaged and could not be opened"
    count = int.from_bytes(data[eocd + 10 : eocd + 12], "little")
    size = int.from_bytes(data[eocd + 12 : eocd + 16], "little")
    start = eocd - size
    if count == _U16 or size == _U32:
        locator = eocd - 20
        if locator < 0 or data[locator : locator + 4] != b"PK\x06\x07":
            return "the ZIP archive is damaged and could not be opened"
        record = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if data[record : record + 4] != b"PK\x06\x06":
            return "the ZIP archive is damaged and could not be opened"
        count = int.from_bytes(data[record + 32 : record + 40], "little")
        size = int.from_bytes(data[record + 40 : record + 48], "little")
        start = record - size
    if count > limits.max_archive_members:
        return f"the archive has {count:,} entries, over the {limits.max_archive_members:,} limit"
    if size > limits.max_archive_members * _CENTRAL_ENTRY_MAX_BYTES:
        return (
            f"the archive's directory is {_size_text(size)}, more than {limits.max_archive_members:,} entries "
            "can need (possible zip bomb)"
        )
    if start < 0:
        return "the ZIP archive is damaged and could not be opened"
    extents, pos, end = [], start, start + size
    while pos < end:
        if data[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > len(data):
            return "the ZIP archive is damaged and could not be opened"
        if len(extents) >= limits.max_archive_members:
            return f"the archive has more than {limits.max_archive_members:,} entries, over the limit"
        field = {
            "file_size": int.from_bytes(data[pos + 24 : pos + 28], "little"),
            "compress_size": int.from_bytes(data[pos + 20 : pos + 24], "little"),
            "offset": int.from_bytes(data[pos + 42 : pos + 46], "little"),
        }
        name_length, extra_length, comment_length = (
            int.from_bytes(data[pos + at : pos + at + 2], "little") for at in (28, 30, 32)
        )
        wide = [name for name in ("file_size", "compress_size", "offset") if field[name] == _U32]
        if wide:
            extra = data[pos + 46 + name_length : pos + 46 + name_length + extra_length]
            field.update(_zip64_extra(extra, wide))
        local = field["offset"]
        if data[local : local + 4] != b"PK\x03\x04" or local + 30 > len(data):
            return "the ZIP archive is damaged and could not be opened"
        header = 30 + int.from_bytes(data[local + 26 : local + 28], "little")
        header += int.from_bytes(data[local + 28 : local + 30], "little")
        extents.append((local, local + header + field["compress_size"]))
        pos += 46 + name_length + extra_length + comment_length
    extents.sort()
    for (_, first_end), (second_start, _) in zip(extents, extents[1:], strict=False):
        if second_start < first_end:
            return "entries of the archive overlap each other (a zip bomb technique)"
    if extents and extents[-1][1] > start:
        return "entries of the archive overlap its directory (a zip bomb technique)"
    return None


def _is_unsafe_path(name: str) -> bool:
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _is_metadata(name: str) -> bool:
    parts = [part for part in re.split(r"[/\\]", name) if part]
    return "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("."))


class _MappedFile:
    """An mmap as zipfile wants a file: mmap has read, seek and tell but no seekable()."""

    def __init__(self, mapped: mmap.mmap):
        self._mapped = mapped

    def seekable(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self._mapped, name)


def _archive_outcomes(
    filename: str, data: bytes | mmap.mmap, limits: UploadLimits, budget: int, pixels: PixelBudget
) -> Iterator[tuple[str, _Outcome]]:
    """Outcomes for an archive, in member order, each with its display name; at most `budget` cells are read.

    `data` may be a read-only mmap of the uploaded file: members are then read from the disk one at a time.
    """
    archive_name = safe_filename(filename)

    def whole(error: str) -> Iterator[tuple[str, _Outcome]]:
        yield archive_name, RejectedFile(archive_name, error)

    if not len(data):
        yield from whole("empty file")
        return
    if bytes(data[:4]) not in _ZIP_SIGNATURES:
        yield from whole("not a ZIP archive")
        return
    problem = _central_directory_problem(data, limits)
    if problem:
        yield from whole(problem)
        return
    try:
        archive = zipfile.ZipFile(_MappedFile(data) if isinstance(data, mmap.mmap) else io.BytesIO(data))
        infos = archive.infolist()
    except _ZIP_ERRORS:
        yield from whole("the ZIP archive is damaged and could not be opened")
        return
    with archive:
        if len(infos) > limits.max_archive_members:
            yield from whole(f"the archive has {len(infos):,} entries, over the {limits.max_archive_members:,} limit")
            return
        declared_total = sum(info.file_size for info in infos)
        if declared_total > limits.max_archive_uncompressed_bytes:
            yield from whole(
                f"the archive would unpack to {_size_text(declared_total)}, over the "
                f"{_size_text(limits.max_archive_uncompressed_bytes)} limit (possible zip bomb)"
            )
            return
        yielded = 0
        read_total = 0
        for info in infos:
            member = info.filename
            display = _member_display(archive_name, member)

            def reject(error: str, display: str = display) -> tuple[str, _Outcome]:
                return display, RejectedFile(display, error)

            if info.is_dir() or member.endswith("\\"):
                continue
            if _is_unsafe_path(member):
                yielded += 1
                yield reject("unsafe path in archive")
                continue
            if _is_metadata(member):
                continue
            if budget <= 0:
                yielded += 1
                yield reject(f"more than {limits.max_files} {limits.item}s in one upload")
                continue
            budget -= 1
            if info.flag_bits & 0x1:
                yielded += 1
                yield reject("encrypted (password-protected) files are not accepted")
                continue
            if member.lower().endswith(".zip"):
                yielded += 1
                yield reject("nested archives are not accepted")
                continue
            if info.file_size > limits.max_file_bytes:
                yielded += 1
                yield reject(_too_big_message(info.file_size, limits.max_file_bytes))
                continue
            if info.file_size and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
                yielded += 1
                yield reject(f"the file is compressed over {limits.max_compression_ratio:g} times (possible zip bomb)")
                continue
            try:
                with archive.open(info) as stream:
                    # Bounded: a header that lies about the size cannot make us read more than this.
                    content = stream.read(limits.max_file_bytes + 1)
            except _ZIP_ERRORS:
                yielded += 1
                yield reject("the file is damaged inside the archive and could not be read")
                continue
            if len(content) > limits.max_file_bytes:
                yielded += 1
                yield reject(f"file is over the {_size_text(limits.max_file_bytes)} limit")
                continue
            read_total += len(content)
            if read_total > limits.max_archive_uncompressed_bytes:
                yielded += 1
                yield reject(
                    f"the archive unpacks to more than {_size_text(limits.max_archive_uncompressed_bytes)} "
                    "(possible zip bomb)"
                )
                continue
            if content.startswith(_ZIP_SIGNATURES):
                yielded += 1
                yield reject("nested archives are not accepted")
                continue
            outcome = validate_image(PurePosixPath(member.replace("\\", "/")).name, content, limits, pixels)
            if isinstance(outcome, RejectedFile):
                outcome = replace(outcome, filename=display)
            yielded += 1
            yield display, outcome
    if not yielded:
        yield from whole("the archive contains no image files")


def _split(outcomes: list[tuple[str, _Outcome]]) -> tuple[list[ValidatedCell], list[RejectedFile]]:
    accepted = [outcome for _, outcome in outcomes if isinstance(outcome, ValidatedCell)]
    rejected = [outcome for _, outcome in outcomes if isinstance(outcome, RejectedFile)]
    return accepted, rejected


def validate_archive(
    filename: str,
    data: bytes,
    limits: UploadLimits = _DEFAULT_LIMITS,
) -> tuple[list[ValidatedCell], list[RejectedFile]]:
    """Check every member of a ZIP archive without extracting it; returns (accepted, rejected)."""
    return _split(list(_archive_outcomes(filename, data, limits, limits.max_files, PixelBudget(limits))))


def iter_upload(
    files: Sequence[tuple[str, Callable[[], bytes]]],
    archive: tuple[str, bytes | mmap.mmap] | None,
    limits: UploadLimits = _DEFAULT_LIMITS,
) -> Iterator[_Outcome]:
    """Judge one request, one file at a time: loose files (each read only when its turn comes, by its
    reader), then the archive's members. Yields each outcome as soon as it is known, so a caller can store an
    accepted image and let go of its bytes before the next is read: memory stays bounded by one file.
    At most `max_files` cells are considered; a cell whose bytes repeat an earlier one is a duplicate.
    """
    budget, pixels = limits.max_files, PixelBudget(limits)
    first_seen: dict[str, str] = {}

    def once(display: str, outcome: _Outcome) -> _Outcome:
        if isinstance(outcome, ValidatedCell):
            if outcome.sha256 in first_seen:
                return RejectedFile(display, f"duplicate of {first_seen[outcome.sha256]} in this upload")
            first_seen[outcome.sha256] = display
        return outcome

    for filename, read in files:
        name = safe_filename(filename)
        if budget <= 0:
            yield RejectedFile(name, f"more than {limits.max_files} {limits.item}s in one upload")
            continue
        budget -= 1
        yield once(name, validate_image(filename, read(), limits, pixels))
    if archive is not None:
        for display, outcome in _archive_outcomes(archive[0], archive[1], limits, budget, pixels):
            yield once(display, outcome)


def validate_upload(
    files: list[tuple[str, bytes]],
    archive: tuple[str, bytes] | None,
    limits: UploadLimits = _DEFAULT_LIMITS,
) -> tuple[list[ValidatedCell], list[RejectedFile]]:
    """iter_upload on bytes already in memory, as (accepted, rejected); accepted keep the order given."""
    readers = [(name, (lambda data=data: data)) for name, data in files]
    outcomes = list(iter_upload(readers, archive, limits))
    return (
        [o for o in outcomes if isinstance(o, ValidatedCell)],
        [o for o in outcomes if isinstance(o, RejectedFile)],
    )
