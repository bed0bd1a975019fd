"""The one preprocessing function shared by training and serving.

A cell crop of any size and mode becomes a float32 array of shape (size, size, 3) in [0, 1]: the cell is
padded to a square with black (the background of a cropped cell) so its shape is kept, then resized.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
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


def open_cell_image(data: bytes | Image.Image) -> Image.Image:
    """Decode bytes into a fully loaded PIL image, raising CellImageError for anything unusable."""
    if isinstance(data, Image.Image):
        image = data
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLAIN_PNG_COLOUR_TYPES = (0, 2)  # greyscale and RGB: no palette, no alpha


def decode_plain_png(data: bytes) -> np.ndarray | None:
    """An 8-bit greyscale or RGB PNG without transparency, decoded by OpenCV to (h, w, 3) RGB; None otherwise.

    The serving path's fast decoder (issue 9): PNG is lossless, so for these files OpenCV's libpng gives
    Pillow's pixels exactly (tests/test_preprocessing.py checks every kind), and it releases the GIL while
    decoding, so the engine's threads decode in parallel (pyspng was as fast on one thread but holds the
    GIL: docs/decisions.md). Anything else (palette, alpha, 16 bits, a tRNS chunk, JPEG, damaged headers)
    returns None and goes to Pillow, which also stays the gatekeeper of uploads.
    """
    # Signature, then IHDR (length 13): width, height, bit depth, colour type, then the chunks before IDAT.
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 8 or colour not in PLAIN_PNG_COLOUR_TYPES or not 0 < width * height <= MAX_PIXELS:
        return None
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        return None
    offset = 33
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            break
        if kind == b"tRNS":  # a transparent colour: Pillow's rules for it apply
            return None
        offset += 12 + length
    else:
        return None
    import cv2  # here, not at the top: the web process imports this module for MAX_PIXELS and decodes nothing

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if pixels is None or pixels.shape[:2] != (height, width):
        return None  # damaged: Pillow gives the error its wording
    return pixels


def pad_array_to_square(pixels: np.ndarray) -> np.ndarray:
    """pad_to_square for an (h, w, 3) array: the same offsets, so the same pixels."""
    height, width = pixels.shape[:2]
    if height == width:
        return pixels
    side = max(height, width)
    square = np.zeros((side, side, 3), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = pixels
    return square


def prepare_cell_uint8(data: bytes | Image.Image, size: int) -> np.ndarray:
    """Bytes or a PIL image in; a (size, size, 3) uint8 array out (compact: caches and batches)."""
    pixels = decode_plain_png(data) if isinstance(data, bytes) else None
    if pixels is not None:
        image = Image.fromarray(pad_array_to_square(pixels))
    else:
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
