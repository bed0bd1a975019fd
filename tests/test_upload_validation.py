"""Upload validation: every file is judged by its bytes alone. The corpus is generated here, not read from disk."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image, ImageFile

from diagnostics.uploads import (
    ALLOWED_FORMATS,
    RejectedFile,
    UploadLimits,
    ValidatedCell,
    validate_archive,
    validate_image,
    validate_upload,
)
from worker.tools.upload_corpus import zipped

pytestmark = pytest.mark.pure

# --- corpus ---------------------------------------------------------------------------------------------------


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 60, 90)) -> bytes:
    image = Image.new("RGB", size, colour)
    # A gradient stripe so encoders produce real entropy-coded data, not a trivial stream.
    for x in range(size[0]):
        image.putpixel((x, size[1] // 2), (x * 5 % 256, 255 - x * 3 % 256, 17))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    return zipped(members, compression)


PNG = image_bytes("PNG")


def rejected(outcome: ValidatedCell | RejectedFile) -> str:
    assert isinstance(outcome, RejectedFile), f"expected a rejection, got {outcome!r}"
    return outcome.error


# --- single images: accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "WEBP"])
def test_valid_images_are_accepted_with_their_size_format_and_digest(fmt: str) -> None:
    data = image_bytes(fmt, size=(40, 30))
    outcome = validate_image(f"cell.{fmt.lower()}", data)
    assert isinstance(outcome, ValidatedCell), outcome
    assert (outcome.width, outcome.height, outcome.format) == (40, 30, fmt)
    assert outcome.data == data
    assert outcome.sha256 == hashlib.sha256(data).hexdigest()
    assert outcome.filename == f"cell.{fmt.lower()}"
    assert outcome.format in ALLOWED_FORMATS


def test_format_comes_from_bytes_not_the_name() -> None:
    outcome = validate_image("cell.png", image_bytes("JPEG"))
    assert isinstance(outcome, ValidatedCell)
    assert outcome.format == "JPEG"


# --- single images: rejected ----------------------------------------------------------------------------------


def test_empty_file() -> None:
    assert rejected(validate_image("cell.png", b"")) == "empty file"


def test_text_named_png() -> None:
    assert rejected(validate_image("cell.png", b"patient 12, smear 3\nlooks fine\n" * 20)) == (
        "not an image: the file is text"
    )


def test_html_named_png() -> None:
    html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    assert "web page (HTML)" in rejected(validate_image("cell.png", html))


def test_truncated_png() -> None:
    assert "damaged or incomplete" in rejected(validate_image("cell.png", PNG[: len(PNG) // 2]))


def test_truncated_jpeg() -> None:
    jpeg = image_bytes("JPEG", size=(64, 64))
    cut = (jpeg.index(b"\xff\xda") + len(jpeg)) // 2  # halfway through the pixel data, past the headers
    assert "damaged or incomplete" in rejected(validate_image("cell.jpg", jpeg[:cut]))


def test_gif_is_not_an_allowed_format() -> None:
    assert rejected(validate_image("cell.png", image_bytes("GIF"))).startswith("GIF images are not accepted")


def test_declared_50000_square_is_a_decompression_bomb() -> None:
    # 2.5 gigapixels: Pillow itself refuses it while reading the header.
    assert "decompression bomb" in rejected(validate_image("bomb.png", png_declaring(50_000, 50_000)))


def test_declared_size_over_our_pixel_limit_is_rejected_before_decoding() -> None:
    # 25 megapixels: under Pillow's own limit, over ours; the tiny IDAT proves nothing was decoded.
    error = rejected(validate_image("big.png", png_declaring(5000, 5000)))
    assert error.startswith("image is 5000 x 5000 pixels, over the 1,048,576-pixel limit")


def test_pillow_bomb_warning_is_an_error() -> None:
    # 100 megapixels is between Pillow's warning and error thresholds; our own limit is raised out of the way.
    limits = UploadLimits(max_pixels=10**12)
    assert "decompression bomb" in rejected(validate_image("big.png", png_declaring(10_000, 10_000), limits))


def test_file_over_size_limit_names_both_sizes() -> None:
    data = image_bytes("BMP", size=(64, 64))  # uncompressed: about 12 KB
    error = rejected(validate_image("cell.bmp", data, UploadLimits(max_file_bytes=4096)))
    assert error == "file is 12.1 KB, over the 4 KB limit"


def test_multi_page_tiff() -> None:
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (20, 20), "red"), Image.new("RGB", (20, 20), "blue")
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    assert "2 frames or pages" in rejected(validate_image("stack.tif", buffer.getvalue()))


def test_animated_webp() -> None:
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (20, 20), "red"), Image.new("RGB", (20, 20), "blue")
    first.save(buffer, "WEBP", save_all=True, append_images=[second], lossless=True)
    assert "2 frames or pages" in rejected(validate_image("anim.webp", buffer.getvalue()))


def test_png_with_zip_appended() -> None:
    polyglot = PNG + zip_bytes({"payload.txt": b"hidden"})
    assert "extra data follow the end of the image" in rejected(validate_image("cell.png", polyglot))


def test_jpeg_with_zip_appended() -> None:
    polyglot = image_bytes("JPEG") + zip_bytes({"payload.txt": b"hidden"})
    assert "extra data follow the end of the image" in rejected(validate_image("cell.jpg", polyglot))


def test_jpeg_with_zip_hidden_in_a_comment() -> None:
    # Inside a COM segment, before EOI: only the signature scan sees it.
    jpeg = image_bytes("JPEG")
    payload = zip_bytes({"payload.txt": b"hidden"})
    polyglot = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]
    assert "embedded ZIP archive" in rejected(validate_image("cell.jpg", polyglot))


def test_png_with_script_in_a_text_chunk() -> None:
    script = png_chunk(b"tEXt", b"Comment\x00<SCRIPT>fetch('/steal')</script>")
    polyglot = PNG[:33] + script + PNG[33:]  # after the 8-byte signature and the 25-byte IHDR chunk
    assert rejected(validate_image("cell.png", polyglot)) == "the image contains embedded web page or script code"


def test_jpeg_padding_after_end_marker_is_tolerated() -> None:
    assert isinstance(validate_image("cell.jpg", image_bytes("JPEG") + b"\x00" * 8), ValidatedCell)


def test_webp_with_trailing_data() -> None:
    error = rejected(validate_image("cell.webp", image_bytes("WEBP") + b"<?php system($_GET[0]); ?>"))
    assert "extra data follow the end of the image" in error


def test_truncated_images_setting_is_refused() -> None:
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
            validate_image("cell.png", PNG)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../x/evil\x00.png", "evil.png"),
        ("C:\\Users\\lab\\cell\u202egnp.exe", "cellgnp.exe"),
        ("/etc/", "unnamed"),
        ("a/..", "unnamed"),
        ("x" * 300 + ".png", "x" * 251 + ".png"),
    ],
)
def test_filename_is_sanitised(given: str, expected: str) -> None:
    assert validate_image(given, PNG).filename == expected


# --- archives -------------------------------------------------------------------------------------------------


def test_archive_with_valid_and_bad_members() -> None:
    archive = zip_bytes({"sub/a.png": PNG, "sub/b.png": b"not an image at all\n"})
    accepted, rejects = validate_archive("cells.zip", archive)
    assert [(cell.filename, cell.width) for cell in accepted] == [("a.png", 40)]
    assert rejects == [RejectedFile("cells.zip/sub/b.png", "not an image: the file is text")]


def test_archive_traversal_member() -> None:
    accepted, rejects = validate_archive("cells.zip", zip_bytes({"ok.png": PNG, "../../etc/passwd.png": PNG}))
    assert [cell.filename for cell in accepted] == ["ok.png"]
    assert rejects == [RejectedFile("cells.zip/../../etc/passwd.png", "unsafe path in archive")]


@pytest.mark.parametrize("name", ["/abs/cell.png", "\\\\server\\cell.png", "C:/cells/cell.png"])
def test_archive_absolute_member(name: str) -> None:
    # zipfile.writestr strips leading slashes, so the name is set on a ZipInfo directly.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("ok.png")
        archive.writestr(info, PNG)
        info = zipfile.ZipInfo("placeholder")
        info.filename = name
        archive.writestr(info, image_bytes("PNG", colour=(1, 2, 3)))
    accepted, rejects = validate_archive("cells.zip", buffer.getvalue())
    assert len(accepted) == 1
    assert [r.error for r in rejects] == ["unsafe path in archive"]


def test_nested_archive() -> None:
    inner = zip_bytes({"a.png": PNG})
    archive = zip_bytes({"inner.zip": inner, "renamed.png": inner, "ok.png": PNG})
    accepted, rejects = validate_archive("cells.zip", archive)
    assert [cell.filename for cell in accepted] == ["ok.png"]
    assert [(r.filename, r.error) for r in rejects] == [
        ("cells.zip/inner.zip", "nested archives are not accepted"),
        ("cells.zip/renamed.png", "nested archives are not accepted"),
    ]


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """One member of 50 MB of zeros, deflated to about 50 KB, written in chunks to stay light on memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("bomb.png", "w") as member:
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(50):
            member.write(chunk)
    return buffer.getvalue()


def test_zip_bomb_by_compression_ratio(zip_bomb: bytes) -> None:
    # The per-file size limit is raised out of the way so the ratio check is what fires.
    limits = UploadLimits(max_file_bytes=100 * 1024 * 1024, max_compression_ratio=100)
    accepted, rejects = validate_archive("cells.zip", zip_bomb, limits)
    assert accepted == []
    assert len(rejects) == 1
    assert rejects[0].filename == "cells.zip/bomb.png"
    assert rejects[0].error == "the file is compressed over 100 times (possible zip bomb)"


def test_zip_bomb_by_member_size(zip_bomb: bytes) -> None:
    accepted, rejects = validate_archive("cells.zip", zip_bomb)
    assert accepted == []
    assert [r.error for r in rejects] == ["file is 50 MB, over the 10 MB limit"]


def test_zip_bomb_by_total_size(zip_bomb: bytes) -> None:
    limits = UploadLimits(max_archive_uncompressed_bytes=20 * 1024 * 1024)
    accepted, rejects = validate_archive("cells.zip", zip_bomb, limits)
    assert accepted == []
    assert rejects == [
        RejectedFile("cells.zip", "the archive would unpack to 50 MB, over the 20 MB limit (possible zip bomb)")
    ]


def test_too_many_members() -> None:
    members = {f"{i}.png": image_bytes("PNG", colour=(i, 0, 0)) for i in range(4)}
    accepted, rejects = validate_archive("cells.zip", zip_bytes(members), UploadLimits(max_archive_members=3))
    assert accepted == []
    assert rejects == [RejectedFile("cells.zip", "the archive has 4 entries, over the 3 limit")]


@pytest.mark.parametrize("data", [b"", b"just some text", PNG, PNG + zip_bytes({"a.png": PNG})])
def test_not_a_zip(data: bytes) -> None:
    accepted, rejects = validate_archive("cells.zip", data)
    assert accepted == []
    assert len(rejects) == 1
    assert rejects[0].filename == "cells.zip"
    assert rejects[0].error in ("not a ZIP archive", "empty file")


def test_corrupt_zip() -> None:
    archive = zip_bytes({"a.png": PNG})
    assert validate_archive("cells.zip", archive[:-30]) == (
        [],
        [RejectedFile("cells.zip", "the ZIP archive is damaged and could not be opened")],
    )


def test_crc_error_rejects_only_that_member() -> None:
    archive = bytearray(zip_bytes({"a.png": PNG, "b.png": image_bytes("PNG", colour=(9, 9, 9))}))
    start = archive.index(b"IDAT")  # the first member's pixel data, stored uncompressed
    archive[start + 8] ^= 0xFF
    accepted, rejects = validate_archive("cells.zip", bytes(archive))
    assert [cell.filename for cell in accepted] == ["b.png"]
    assert rejects == [RejectedFile("cells.zip/a.png", "the file is damaged inside the archive and could not be read")]


def test_encrypted_member() -> None:
    archive = bytearray(zip_bytes({"a.png": PNG}))
    # Set the "encrypted" flag in both the local and the central header.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = archive.index(signature) + offset
        archive[at] |= 0x01
    assert validate_archive("cells.zip", bytes(archive))[1] == [
        RejectedFile("cells.zip/a.png", "encrypted (password-protected) files are not accepted")
    ]


def test_macos_metadata_and_directories_are_skipped() -> None:
    archive = zip_bytes(
        {
            "cells/": b"",
            "cells/a.png": PNG,
            "__MACOSX/cells/._a.png": b"\x00\x05\x16\x07 resource fork",
            "cells/._a.png": b"\x00\x05\x16\x07",
            "cells/.DS_Store": b"\x00\x00\x00\x01Bud1",
        }
    )
    accepted, rejects = validate_archive("cells.zip", archive)
    assert [cell.filename for cell in accepted] == ["a.png"]
    assert rejects == []


def test_archive_with_only_metadata() -> None:
    archive = zip_bytes({"__MACOSX/._a.png": b"x"})
    assert validate_archive("cells.zip", archive) == (
        [],
        [RejectedFile("cells.zip", "the archive contains no image files")],
    )


# --- a whole request ------------------------------------------------------------------------------------------


def test_duplicates_in_one_request() -> None:
    other = image_bytes("PNG", colour=(1, 2, 3))
    archive = zip_bytes({"sub/copy.png": PNG, "sub/new.png": other})
    accepted, rejects = validate_upload([("a.png", PNG), ("b.png", PNG)], ("cells.zip", archive))
    assert [cell.filename for cell in accepted] == ["a.png", "new.png"]
    assert rejects == [
        RejectedFile("b.png", "duplicate of a.png in this upload"),
        RejectedFile("cells.zip/sub/copy.png", "duplicate of a.png in this upload"),
    ]


def test_max_files_counts_archive_members() -> None:
    colours = [(i, 100, 100) for i in range(5)]
    files = [(f"{i}.png", image_bytes("PNG", colour=c)) for i, c in enumerate(colours[:2])]
    archive = zip_bytes({f"z{i}.png": image_bytes("PNG", colour=c) for i, c in enumerate(colours[2:])})
    accepted, rejects = validate_upload(files, ("cells.zip", archive), UploadLimits(max_files=3))
    assert [cell.filename for cell in accepted] == ["0.png", "1.png", "z0.png"]
    assert rejects == [
        RejectedFile("cells.zip/z1.png", "more than 3 cells in one upload"),
        RejectedFile("cells.zip/z2.png", "more than 3 cells in one upload"),
    ]


def test_max_files_on_loose_files() -> None:
    files = [(f"{i}.png", image_bytes("PNG", colour=(i, 0, 0))) for i in range(3)]
    accepted, rejects = validate_upload(files, None, UploadLimits(max_files=2))
    assert [cell.filename for cell in accepted] == ["0.png", "1.png"]
    assert rejects == [RejectedFile("2.png", "more than 2 cells in one upload")]
