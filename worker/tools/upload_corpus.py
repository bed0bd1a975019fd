"""Hostile and broken uploads, made in memory: the corpus test refuses each, and `make bench-uploads` times them.

Each entry is (name, field, filename, bytes, the reason's words): `field` is the multipart field the file is
sent in (`images` for a cell, `archive` for a ZIP); the words are part of the message the product must give.
Only the standard library and Pillow: the bombs are built from their specification, not downloaded.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Hostile:
    name: str
    field: str
    filename: str
    data: bytes
    reason: str


def _png(width: int = 100, height: int = 120) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 140)).save(buffer, "PNG")
    return buffer.getvalue()


def _png_with_text(text: bytes) -> bytes:
    """A valid PNG carrying `text` in a tEXt chunk before its end (a polyglot a browser might run)."""
    png = _png()
    body = b"Comment\x00" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:-12] + chunk + png[-12:]


def _local_header(name: bytes, compressed: bytes, size: int, crc: int, method: int = 8) -> bytes:
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(compressed), size, len(name), 0)


def _central_entry(name: bytes, compressed_size: int, size: int, crc: int, offset: int, method: int = 8) -> bytes:
    return (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0,
            crc,
            compressed_size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def _end_record(entries: int, directory_size: int, directory_offset: int) -> bytes:
    return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries, entries, directory_size, directory_offset, 0)


def central_directory_bomb(entries: int = 1_000_000) -> bytes:
    """The end record declares 1 entry; the directory lists `entries` (zipfile builds every one first)."""
    member, name = _png(), b"cell.png"
    compressed = zlib.compress(member)[2:-4]
    crc = zlib.crc32(member)
    local = _local_header(name, compressed, len(member), crc) + name + compressed
    one = _central_entry(name, len(compressed), len(member), crc, 0)
    directory = one * entries
    return local + directory + _end_record(1, len(directory), len(local))


def overlapping_entries_bomb(entries: int = 49, member_bytes: int = 9_700_000) -> bytes:
    """`entries` directory entries all pointing at one highly compressed member (CVE-2024-0450's shape)."""
    member = b"\x00" * member_bytes
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = compressor.compress(member) + compressor.flush()
    crc = zlib.crc32(member)
    name = b"cell.png"
    local = _local_header(name, compressed, len(member), crc) + name + compressed
    directory = b"".join(
        _central_entry(f"cell-{i}.png".encode(), len(compressed), len(member), crc, 0) for i in range(entries)
    )
    return local + directory + _end_record(entries, len(directory), len(local))


def classic_zip_bomb(member_bytes: int = 200 * 1024 * 1024) -> bytes:
    """One member of zeros compressed about 1,000 times."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("cell.png", "w", force_zip64=True) as stream,
    ):
        chunk = b"\x00" * (1 << 20)
        for _ in range(member_bytes >> 20):
            stream.write(chunk)
    return buffer.getvalue()


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive of these members, written by zipfile (the tests' well-formed archives too)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def lossless_webp(side: int = 4096) -> bytes:
    """A few hundred bytes that decode to side x side pixels (slow to decode, tiny to send)."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (255, 255, 255)).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def png_bomb(side: int = 60_000) -> bytes:
    """A PNG header declaring side x side pixels, with a tiny compressed body of zeros."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def multipage_tiff() -> bytes:
    buffer = io.BytesIO()
    pages = [Image.new("RGB", (80, 80), colour) for colour in ((200, 0, 0), (0, 200, 0))]
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def hostile_uploads() -> list[Hostile]:
    """The corpus: every entry must be refused with its reason, nothing stored, and no 5xx."""
    png = _png()
    return [
        Hostile("central directory bomb", "archive", "cells.zip", central_directory_bomb(), "entries"),
        Hostile("overlapping entries", "archive", "cells.zip", overlapping_entries_bomb(), "overlap"),
        Hostile("classic zip bomb", "archive", "cells.zip", classic_zip_bomb(), "limit"),
        Hostile("nested archive", "archive", "cells.zip", zipped({"inner.zip": zipped({"a.png": png})}), "nested"),
        Hostile("path traversal", "archive", "cells.zip", zipped({"../../etc/cell.png": png}), "unsafe path"),
        Hostile("absolute path", "archive", "cells.zip", zipped({"/tmp/cell.png": png}), "unsafe path"),
        Hostile("not a zip", "archive", "cells.zip", png, "not a ZIP"),
        Hostile("lossless WebP of 16 megapixels", "images", "cell.webp", lossless_webp(), "pixel"),
        Hostile("PNG decompression bomb", "images", "cell.png", png_bomb(), "decompression bomb"),
        Hostile("PNG with a ZIP appended", "images", "cell.png", png + zipped({"x.txt": b"payload"}), "extra data"),
        Hostile(
            "PNG with a script inside", "images", "cell.png", _png_with_text(b"<script>alert(1)</script>"), "script"
        ),
        Hostile("truncated PNG", "images", "cell.png", png[: len(png) // 2], "damaged"),
        Hostile("zero bytes", "images", "cell.png", b"", "empty"),
        Hostile("text named .png", "images", "cell.png", b"patient: Ada\n" * 20, "text"),
        Hostile("PDF named .png", "images", "cell.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        Hostile("SVG", "images", "cell.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        Hostile("HTML", "images", "cell.html", b"<!doctype html><html><script>alert(1)</script></html>", "HTML"),
        Hostile("multi-page TIFF", "images", "cell.tiff", multipage_tiff(), "pages"),
        Hostile("GIF", "images", "cell.gif", b"GIF89a" + bytes(40), "GIF"),
        Hostile("oversize file", "images", "cell.png", png + bytes(11 * 1024 * 1024), "limit"),
    ]
