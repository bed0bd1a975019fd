"""Whole-field smear photographs: find the red cells and cut each into a chip the classifier understands.

Pure: an RGB array in, boxes, masks and chips out (no Django, no model). The steps follow how NLM's Malaria
Screener reads a thin-smear field (docs/decisions.md, "Fields"):
1. quality flags (too dark, too bright, out of focus, no cells): flagged, never an exception;
2. the red-cell diameter estimated from the image itself (magnification differs between labs);
3. foreground by Otsu on a channel where cells stand out from the background, split into single cells by a
   marker-based watershed on the distance transform; white cells (large, dark purple nucleus) and platelets
   (small) are left out; a cell touching the image edge is classified but not counted;
4. each cell's chip is its bounding box with everything outside the cell's mask black, as the NIH crops the
   classifier was trained on are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

# Work at about this many pixels per red-cell diameter: detection is faster at half resolution and the
# watershed's markers are steadier when the cell size is the same on every microscope.
WORKING_CELL_DIAMETER = 40.0
# A cell whose area is below this share of the typical cell's is debris or a platelet; above the upper one
# it is a clump the watershed could not split (skipped and shown, never guessed).
MIN_AREA_SHARE, MAX_AREA_SHARE = 0.3, 2.6
# Quality: mean brightness outside these bounds, or too little fine detail, is flagged. Sharpness is the
# Laplacian's spread at the working scale: 9.8 - 12.6 on sharp IML fields, 2.9 - 5.5 once blurred by a
# Gaussian of sigma 2 px (measured on 10 fields).
TOO_DARK, TOO_BRIGHT = 60.0, 245.0
MIN_SHARPNESS = 6.0
# Accumulator votes for a Hough circle to count as a cell centre (lower finds more, and more false ones).
HOUGH_VOTES = 15
# Otsu's threshold on the blurred stain channel falls inside a cell's pale rim: the boxes came out about 15 %
# narrower than the cells (measured against the IML boxes, and plain on the overlays), and the rim is where
# ring stages sit. Each cell grows by this share of the diameter into unclaimed pixels around it.
RIM_GROWTH = 0.06
# Bump when a change here changes the cells found or their chips: the chips a model was trained on are named
# by it in the model card.
DETECTOR_VERSION = "otsu-distance-hough-rim/v2"

COUNTED, EDGE, WHITE_CELL, CLUMP, SMALL = "counted", "edge", "white cell", "clump", "small"


@dataclass(frozen=True)
class FoundObject:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the field's pixels (x1, y1 exclusive)
    kind: str  # COUNTED or EDGE (red cells, both classified); WHITE_CELL, CLUMP or SMALL (skipped)
    label: int  # this object's value in FieldAnalysis.labels
    at_edge: bool = False  # touches the image's edge (a red cell there is EDGE, classified but not counted)

    def as_red_cell(self) -> FoundObject:
        """This object taken for a red cell after all (a white-cell look-alike the classifier called parasitized)."""
        return replace(self, kind=EDGE if self.at_edge else COUNTED)


@dataclass(frozen=True)
class FieldAnalysis:
    width: int
    height: int
    cell_diameter: float  # estimated red-cell diameter, field pixels (0 when no cells)
    objects: list[FoundObject]
    quality: tuple[str, ...]  # empty when the photograph looks usable
    scale: float  # working pixels per field pixel
    labels: np.ndarray = field(repr=False)  # working-resolution label image (0 = background)

    @property
    def red_cells(self) -> list[FoundObject]:
        """Every red cell to classify: counted ones and those cut by the edge."""
        return [o for o in self.objects if o.kind in (COUNTED, EDGE)]

    @property
    def look_alikes(self) -> list[FoundObject]:
        """Objects the colour rule took for white cells: a red cell filled by a parasite looks like one too
        (a gametocyte or a mature trophozoite), so the classifier has the last word (field_engine)."""
        return [o for o in self.objects if o.kind == WHITE_CELL]

    def settled(self, parasitized: set[int]) -> FieldAnalysis:
        """The analysis with the look-alikes whose labels are in `parasitized` taken for red cells."""
        return replace(self, objects=[o.as_red_cell() if o.label in parasitized else o for o in self.objects])


def _stain_channel(rgb: np.ndarray) -> np.ndarray:
    """Cells darker than the background: the darker of green and blue (red cells absorb green, stain blue)."""
    return np.minimum(rgb[..., 1], rgb[..., 2])


def _sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).std())


def estimate_cell_diameter(foreground: np.ndarray) -> float:
    """Typical red-cell diameter in pixels, from the distance transform's local maxima (cell centres)."""
    distance = cv2.distanceTransform(foreground.astype(np.uint8), cv2.DIST_L2, 5)
    peaks = distance[(distance == cv2.dilate(distance, np.ones((5, 5), np.uint8))) & (distance > 2)]
    if peaks.size == 0:
        return 0.0
    # The upper half of the centre distances: single cells, not the necks between touching ones.
    radius = float(np.percentile(peaks, 75))
    return 2.0 * radius


def analyse_field(rgb: np.ndarray) -> FieldAnalysis:
    height, width = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    quality = []
    brightness = float(gray.mean())
    if brightness < TOO_DARK:
        quality.append("too dark")
    elif brightness > TOO_BRIGHT:
        quality.append("too bright")

    # First pass at a coarse scale to measure the cells, then work at the scale that makes them a fixed size.
    coarse_scale = min(1.0, 640.0 / max(width, height))
    coarse = cv2.resize(_stain_channel(rgb), None, fx=coarse_scale, fy=coarse_scale, interpolation=cv2.INTER_AREA)
    coarse_foreground = _foreground(coarse)
    coarse_diameter = estimate_cell_diameter(coarse_foreground)
    if coarse_diameter <= 0:
        return FieldAnalysis(width, height, 0.0, [], (*quality, "no cells"), 1.0, np.zeros((1, 1), np.int32))
    diameter = coarse_diameter / coarse_scale
    scale = min(1.0, WORKING_CELL_DIAMETER / diameter)
    channel = cv2.resize(_stain_channel(rgb), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if _sharpness(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)) < MIN_SHARPNESS:
        quality.append("out of focus")
    foreground = _foreground(channel)
    labels = _grow(_split_touching(foreground, diameter * scale, channel), int(round(RIM_GROWTH * diameter * scale)))
    objects = _classify_objects(rgb, labels, scale, diameter)
    if not any(o.kind in (COUNTED, EDGE) for o in objects):
        quality.append("no cells")
    return FieldAnalysis(width, height, diameter, objects, tuple(quality), scale, labels)


def _foreground(channel: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(channel, (5, 5), 0)
    _, mask = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # Pale cell centres fall above the threshold: fill holes inside cells.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # A background frame around the image, so the flood from its corner reaches all the background.
    filled = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(filled, None, (0, 0), 255)
    holes = cv2.bitwise_not(filled)[1:-1, 1:-1]
    return (mask | holes) > 0


def _split_touching(foreground: np.ndarray, diameter: float, channel: np.ndarray | None = None) -> np.ndarray:
    """Touching cells split at their necks: one marker per cell centre, and each foreground pixel given to
    its nearest marker (a watershed on the distance, for cells of one size). Centres are distance-transform
    peaks at least a radius apart, plus Hough circles of the cell's size for overlapping cells, whose
    shared outline hides the neck from the distance transform."""
    mask = foreground.astype(np.uint8)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    radius = max(diameter / 2.0, 2.0)
    size = max(3, int(radius * 0.9) | 1)
    peaks = (distance == cv2.dilate(distance, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))) & (
        distance > radius * 0.45
    )
    if channel is not None:
        circles = cv2.HoughCircles(
            cv2.GaussianBlur(channel, (5, 5), 0),
            cv2.HOUGH_GRADIENT,
            dp=1,
            minDist=radius * 1.3,
            param1=60,
            param2=HOUGH_VOTES,
            minRadius=int(radius * 0.7),
            maxRadius=int(radius * 1.3),
        )
        if circles is not None:
            centres = np.round(circles[0, :, :2]).astype(int)
            ys, xs = np.nonzero(peaks)
            for x, y in centres:
                if not (0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]) or not mask[y, x]:
                    continue
                # A circle whose centre is near an existing peak is that peak's cell.
                if len(xs) and np.min((xs - x) ** 2 + (ys - y) ** 2) < (radius * 0.8) ** 2:
                    continue
                peaks[y, x] = True
                xs, ys = np.append(xs, x), np.append(ys, y)
    count, markers = cv2.connectedComponents(peaks.astype(np.uint8))
    if count <= 1:
        return np.zeros(mask.shape, np.int32)
    # distanceTransformWithLabels labels every pixel with the connected zero-region nearest to it.
    to_marker, nearest = cv2.distanceTransformWithLabels(
        (~peaks).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP
    )
    # Its labels number the peak regions in its own order: map them back to the markers' numbers.
    lookup = np.zeros(nearest.max() + 1, np.int32)
    lookup[nearest[peaks]] = markers[peaks]
    labels = lookup[nearest]
    # A red cell reaches about a radius from its centre: what lies further is a neighbour without a marker
    # of its own (left out rather than glued to this one).
    labels[(mask == 0) | (to_marker > radius * 1.25)] = 0
    return labels


def _grow(labels: np.ndarray, pixels: int) -> np.ndarray:
    """Each label grows by `pixels` into unlabelled pixels; where two meet, either may take the pixel."""
    if pixels < 1 or not labels.any():
        return labels
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    # A grey dilation spreads the largest label nearby; float32 holds label numbers exactly up to 2**24.
    spread = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int32)
    return np.where(labels == 0, spread, labels)


def _classify_objects(rgb: np.ndarray, labels: np.ndarray, scale: float, diameter: float) -> list[FoundObject]:
    height, width = rgb.shape[:2]
    typical_area = np.pi * (diameter * scale / 2.0) ** 2
    stats = _label_stats(labels)
    if not stats:
        return []
    nucleus_share = _nucleus_share(rgb, labels)
    objects = []
    for label, (x0, y0, x1, y1, area) in stats.items():
        box = (
            int(round(x0 / scale)),
            int(round(y0 / scale)),
            min(width, int(round((x1 + 1) / scale))),
            min(height, int(round((y1 + 1) / scale))),
        )
        at_edge = x0 <= 0 or y0 <= 0 or x1 >= labels.shape[1] - 1 or y1 >= labels.shape[0] - 1
        if area < MIN_AREA_SHARE * typical_area:
            kind = SMALL
        elif nucleus_share[label] > 0.5:
            # Most of the object, so that a parasite (even a gametocyte filling its cell) does not turn a red
            # cell into a white one.
            kind = WHITE_CELL
        elif area > MAX_AREA_SHARE * typical_area:
            kind = CLUMP
        elif at_edge:
            kind = EDGE
        else:
            kind = COUNTED
        objects.append(FoundObject(box=box, kind=kind, label=label, at_edge=at_edge))
    return objects


def _label_stats(labels: np.ndarray) -> dict[int, tuple[int, int, int, int, int]]:
    """Bounding box (x0, y0, x1, y1, inclusive) and area of every label, in one pass."""
    flat = labels.ravel()
    where = np.flatnonzero(flat)
    # Labels fit in 16 bits (a field holds hundreds of cells): numpy sorts those by radix, in linear time.
    values = flat[where].astype(np.uint16)
    order = np.argsort(values, kind="stable")
    values, where = values[order], where[order]
    ys, xs = np.divmod(where, labels.shape[1])
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.zeros(0, int)
    if not len(starts):
        return {}
    x0, x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
    y0, y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    areas = np.diff(np.r_[starts, len(values)])
    return {
        int(values[s]): (int(a), int(b), int(c), int(d), int(n))
        for s, a, b, c, d, n in zip(starts, x0, y0, x1, y1, areas, strict=True)
    }


def _nucleus_share(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per label, the share of its pixels that look like a white cell's nucleus.

    Stains differ between labs and fields (pale pink to deep purple red cells): a nucleus is much darker or
    much more saturated than the field's own red cells, not a fixed colour.
    """
    hsv = cv2.cvtColor(
        cv2.resize(rgb, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV
    )
    inside = labels > 0
    saturation = float(np.median(hsv[..., 1][inside]))
    value = float(np.median(hsv[..., 2][inside]))
    nucleus = inside & ((hsv[..., 2] < 0.62 * value) | (hsv[..., 1] > saturation + 60))
    count = labels.max() + 1
    area = np.bincount(labels[inside], minlength=count)
    return np.bincount(labels[nucleus], minlength=count) / np.maximum(area, 1)


def cell_chip(rgb: np.ndarray, analysis: FieldAnalysis, found: FoundObject) -> np.ndarray:
    """The cell's bounding box from the full-resolution photograph, black outside the cell's mask."""
    x0, y0, x1, y1 = found.box
    crop = rgb[y0:y1, x0:x1].copy()
    # The cell's mask, cut from the working label image and scaled to the crop, slightly dilated so the
    # cell's rim (where ring stages sit) is kept.
    s = analysis.scale
    wx0, wy0 = int(x0 * s), int(y0 * s)
    wx1, wy1 = max(wx0 + 1, int(np.ceil(x1 * s))), max(wy0 + 1, int(np.ceil(y1 * s)))
    mask = (analysis.labels[wy0:wy1, wx0:wx1] == found.label).astype(np.uint8)
    mask = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    grow = max(1, int(round(analysis.cell_diameter * 0.04)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    crop[mask == 0] = 0
    return crop
