"""The one preprocessing function: any mode and size in, the same array shape out; bad input is a typed error."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from worker.serving.preprocessing import CellImageError, decode_plain_png, prepare_cell, prepare_cell_uint8

pytestmark = pytest.mark.pure

SIZE = 64


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def cell_like(mode: str, size=(120, 140)) -> Image.Image:
    rgb = Image.new("RGB", size, (0, 0, 0))
    rgb.paste((200, 120, 150), (10, 10, size[0] - 10, size[1] - 10))
    if mode == "I;16":
        return rgb.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    if mode == "P":
        return rgb.quantize(8)
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "1"])
def test_every_mode_becomes_rgb_in_unit_range(mode):
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I") else "PNG"
    array = prepare_cell(encode(cell_like(mode), fmt), SIZE)
    assert array.shape == (SIZE, SIZE, 3)
    assert array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert array.max() > 0.2, "the cell must not come out black"


def test_transparency_becomes_black_background():
    image = Image.new("RGBA", (50, 50), (255, 255, 255, 0))
    image.paste((200, 100, 100, 255), (20, 20, 30, 30))
    array = prepare_cell(encode(image), SIZE)
    assert array[0, 0].tolist() == [0.0, 0.0, 0.0]
    assert array[SIZE // 2, SIZE // 2, 0] > 0.7


@pytest.mark.parametrize("size", [(1, 1), (5, 300), (300, 5), (64, 64), (394, 394), (1000, 800)])
def test_any_size_is_padded_square_and_resized(size):
    assert prepare_cell(encode(cell_like("RGB", size)), SIZE).shape == (SIZE, SIZE, 3)


def test_aspect_ratio_is_kept_by_black_padding():
    tall = Image.new("RGB", (50, 100), (255, 255, 255))
    array = prepare_cell(tall, SIZE)
    assert array[SIZE // 2, 2].max() == 0.0, "the sides of a tall cell are padding"
    assert array[SIZE // 2, SIZE // 2].min() == 1.0


def test_bytes_and_pil_image_give_the_same_array():
    image = cell_like("RGB")
    np.testing.assert_array_equal(prepare_cell(image, SIZE), prepare_cell(encode(image), SIZE))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_decode(fmt):
    assert prepare_cell(encode(cell_like("RGB"), fmt), SIZE).shape == (SIZE, SIZE, 3)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge image in its header: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, not a cell", "not a readable image"),
        (encode(cell_like("RGB"))[:200], "not a readable image"),
        (png_header_only(30000, 30000), "decompression bomb"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a readable image"),
    ],
    ids=["empty", "text", "truncated", "bomb", "garbage-after-signature"],
)
def test_bad_input_is_a_clear_typed_error(data, message):
    with pytest.raises(CellImageError, match=message):
        prepare_cell(data, SIZE)


# -- the serving path's fast PNG decoder (OpenCV) against Pillow ----------------------------------------------
def pillow_only(data: bytes, size: int = SIZE) -> np.ndarray:
    """The reference: a PIL image always takes Pillow's path through prepare_cell_uint8."""
    return prepare_cell_uint8(Image.open(io.BytesIO(data)), size)


def png_kinds() -> dict[str, tuple[bytes, bool]]:
    """Every kind of PNG an upload can be, and whether the fast decoder should take it."""
    rgb = cell_like("RGB", (131, 117))
    rgb.putpixel((40, 50), (1, 254, 77))  # not only the three flat colours of cell_like

    def png(image, **options):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        return buffer.getvalue()

    def with_ancillary_chunks(data: bytes) -> bytes:
        # Significant bits, gamma and an ICC profile: decoders that honoured them would change the pixels.
        chunks = [
            (b"sBIT", b"\x05\x05\x05"),
            (b"gAMA", struct.pack(">I", 100000)),
            (b"iCCP", b"x\0\0" + zlib.compress(b"icc")),
        ]
        extra = b"".join(
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
            for kind, body in chunks
        )
        return data[:33] + extra + data[33:]

    return {
        "rgb": (png(rgb), True),
        "rgb-ancillary-chunks": (with_ancillary_chunks(png(rgb)), True),
        "rgb-uncompressed": (png(rgb, compress_level=0), True),
        "rgb-optimized": (png(rgb, optimize=True), True),
        "grey": (png(rgb.convert("L")), True),
        "square": (png(rgb.resize((97, 97))), True),
        "one-pixel": (png(Image.new("RGB", (1, 1), (12, 200, 33))), True),
        "thin": (png(rgb.resize((5, 300))), True),
        "rgb-transparent-colour": (png(rgb, transparency=(0, 0, 0)), False),
        "grey-transparent-level": (png(rgb.convert("L"), transparency=0), False),
        "rgba": (png(cell_like("RGBA")), False),
        "grey-alpha": (png(cell_like("LA")), False),
        "palette": (png(cell_like("P")), False),
        "palette-transparent": (png(cell_like("P"), transparency=0), False),
        "16-bit": (png(cell_like("I;16")), False),
        "1-bit": (png(cell_like("1")), False),
    }


@pytest.mark.parametrize("kind", list(png_kinds()))
def test_the_fast_png_decoder_gives_pillows_pixels_or_leaves_the_file_to_pillow(kind):
    data, plain = png_kinds()[kind]
    assert (decode_plain_png(data) is not None) == plain
    np.testing.assert_array_equal(prepare_cell_uint8(data, SIZE), pillow_only(data))
    if plain:
        np.testing.assert_array_equal(decode_plain_png(data), np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_real_cells_decode_to_pillows_pixels():
    from tests.cells import as_png, shared_cells_or_skip
    from worker.training.dataset import list_cells

    cells = list_cells(shared_cells_or_skip())
    pngs = [as_png(cell.path) for cell in cells[:: len(cells) // 300][:300]]
    assert all(decode_plain_png(data) is not None for data in pngs)  # the fast path is the one measured
    for data in pngs:
        np.testing.assert_array_equal(prepare_cell_uint8(data, 48), pillow_only(data, 48))


@pytest.mark.parametrize(
    "data",
    [
        encode(cell_like("RGB"))[:200],  # cut inside the image data
        png_header_only(30000, 30000),  # more pixels than a cell: never given to OpenCV
        encode(cell_like("RGB"))[:16] + b"\0" * 17 + encode(cell_like("RGB"))[33:],  # a damaged header
    ],
    ids=["truncated", "bomb", "damaged-header"],
)
def test_damaged_or_oversized_pngs_are_left_to_pillow(data):
    assert decode_plain_png(data) is None
