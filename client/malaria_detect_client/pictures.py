"""What the client needs to know about a picture before sending it: its width and height, read from the first
bytes of PNG, JPEG, BMP and WebP files (no image library: the client depends on requests and tqdm only).

The server decides whether a file is a valid image; this only sorts cells from field photographs (`--kind
auto`) and keeps each request under the server's pixel budget.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path, PurePosixPath

# Enough for a JPEG's frame header behind a large EXIF block (APP1 is at most 64 KB) and an embedded thumbnail.
HEAD_BYTES = 256 * 1024
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
# NIH cell crops are 40 to 390 px across; field photographs 1280 x 960 and up. A picture whose longest side is at
# least this is taken for a field photograph (the server accepts fields down to 320 x 240: use --kind fields).
FIELD_LONGEST_SIDE = 640
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; C4, C8 and CC are not frames


def size_from_head(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a file's first bytes, or None when the format is not one read here."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(head)
        if head.startswith(b"BM"):
            width, height = struct.unpack("<ii", head[18:26])
            return width, abs(height)
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return _webp_size(head)
    except struct.error:
        return None
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", head[position + 2 : position + 4])
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", head[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


def file_size(path: Path) -> tuple[int, int] | None:
    with open(path, "rb") as file:
        return size_from_head(file.read(HEAD_BYTES))


def first_size_in_archive(path: Path) -> tuple[int, int] | None:
    """The size of the first picture in a ZIP whose size can be read (a bounded read of each member tried)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                name = PurePosixPath(member.filename)
                if member.is_dir() or name.suffix.lower() not in IMAGE_SUFFIXES or name.name.startswith("."):
                    continue
                with archive.open(member) as file:
                    size = size_from_head(file.read(HEAD_BYTES))
                if size:
                    return size
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
        return None  # the server says what is wrong with it
    return None


def looks_like_field(size: tuple[int, int]) -> bool:
    return max(size) >= FIELD_LONGEST_SIDE
