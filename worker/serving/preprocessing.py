"""The one preprocessing function shared by training and serving.

A cell crop of any size and mode becomes a float32 array of shape (size, size, 3) in [0, 1]: the cell is
padded to a square with black (the background of a cropped cell) so its shape is kept, then resized.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pyspng
from PIL import Image

# Bump when the function below changes what it returns: the model card records it, and a model trained
# with another version refuses to load.
PREPROCESSING_VERSION = "pad-square-black/bilinear/rgb01/v1"

# A single red blood cell is a few hundred pixels across at most; anything much larger is not a cell
# crop and, past this, possibly a decompression bomb. Uploads are refused past it too (diagnostics.uploads),
# so the worker and the web process apply one limit.
MAX_PIXELS = 1024 * 1024


class CellImageError(ValueError):
    """The input is not a usable cell image (corrupt, not an image, empty or too large)."""


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 8-bit PNG colour types libspng decodes to exactly Pillow's pixels, and the Pillow mode of each. Palette,
# 16-bit and greyscale-with-alpha files, and any file with a tRNS chunk (Pillow keeps it aside, libspng may
# apply it), are left to Pillow.
_FAST_PNG_MODES = {0: "L", 2: "RGB", 6: "RGBA"}


def _decode_png_fast(data: bytes) -> Image.Image | None:
    """The serving path's PNG decoder: libspng (pyspng) decodes a cell PNG in about half Pillow's time, and
    decoding, not the network, is most of the engine's time. Same pixels as Pillow (tests/test_preprocessing.py
    checks it on NIH cells and on every colour type). None when the file is not one it decodes identically, or
    when libspng fails: Pillow then decodes it, or gives the error the user sees. Uploads are validated by
    Pillow before anything is stored (diagnostics.uploads), so this only ever reads files Pillow accepted."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    bit_depth, colour_type = data[24], data[25]
    mode = _FAST_PNG_MODES.get(colour_type)
    if bit_depth != 8 or mode is None or b"tRNS" in data:
        return None
    if width * height > MAX_PIXELS:
        return None  # Pillow refuses it from the header alone, with the message users already get
    try:
        pixels = pyspng.load(data)
    except Exception:  # noqa: BLE001 (any libspng failure: Pillow decides)
        return None
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.dtype != np.uint8 or pixels.shape[:2] != (height, width) or channels != len(mode):
        return None
    return Image.fromarray(pixels, mode)


def open_cell_image(data: bytes | Image.Image) -> Image.Image:
    """Decode bytes into a fully loaded PIL image, raising CellImageError for anything unusable."""
    if isinstance(data, Image.Image):
        image = data
    elif (fast := _decode_png_fast(data)) is not None:
        image = fast
    else:
        if not data:
            raise CellImageError("empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
                if image.width * image.height > MAX_PIXELS:
                    raise CellImageError(f"image is {image.width}x{image.height} pixels, more than a cell crop can be")
                image.load()
        except CellImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise CellImageError("the image's declared size is far too large (possible decompression bomb)") from exc
        except Exception as exc:  # Pillow raises many types for corrupt data; its wording is not for users
            raise CellImageError("not a readable image (damaged or not an image)") from exc
    if image.width < 1 or image.height < 1:
        raise CellImageError("image has no pixels")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency becomes the black cell background."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit greyscale: rescale to 8 bits by its own range rather than clipping to white.
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def pad_to_square(image: Image.Image) -> Image.Image:
    if image.width == image.height:
        return image
    side = max(image.width, image.height)
    square = Image.new("RGB", (side, side), (0, 0, 0))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square


def prepare_cell_uint8(data: bytes | Image.Image, size: int) -> np.ndarray:
    """Bytes or a PIL image in; a (size, size, 3) uint8 array out (compact: caches and batches)."""
    image = pad_to_square(to_rgb(open_cell_image(data)))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(image, dtype=np.uint8)


def to_network_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (one cell or a batch) -> float32 in [0, 1], as the network takes them."""
    return pixels.astype(np.float32) * np.float32(1.0 / 255.0)


def prepare_cell(data: bytes | Image.Image, size: int) -> np.ndarray:
    """Bytes or a PIL image in; the network's input, a (size, size, 3) float32 array in [0, 1], out."""
    return to_network_input(prepare_cell_uint8(data, size))
