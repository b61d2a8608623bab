"""A resolution chart: bar groups, a slanted knife edge, a pad and open beam.

:func:`resolution_chart` builds a thin slab like a gold-on-membrane test chart (JIMA
type) as a :class:`~lowdose_bluesky.phantoms.Phantom`, for measuring the resolution
of a camera model (blur, binning) and of super-resolution from its projection at
0 degrees. Every element is of one material (value :data:`CHART_VALUE`), centred on
``y = 0``:

- line-pair groups: three bars of width ``w`` sensor pixels with spaces of ``w``, in
  two orientations ("vertical" bars vary along ``x``, "horizontal" bars along ``z``),
  :data:`BAR_THICKNESS` voxels thick;
- a slanted knife edge (ISO 12233): a block :data:`EDGE_THICKNESS` voxels thick (it
  transmits less, "opaque-ish") whose right edge leans :data:`EDGE_ANGLE_DEG` from the
  column axis, built from boxes one row tall;
- a pad of the bars' thickness (their dark level) and an open background.

With :func:`~lowdose_bluesky.devices.sim.make_sim_txm`'s default attenuation (the
thickest projection at 0 or 45 degrees transmits 10 %, here the knife-edge block at
45 degrees, ``EDGE_THICKNESS * sqrt(2)`` voxels), bars and pad transmit
``10 ** (-BAR_THICKNESS / (EDGE_THICKNESS * sqrt(2)))`` = 44 % and the knife-edge
block 20 % at 0 degrees, whatever :data:`CHART_VALUE`.

The layout is in ``phantom.params["chart"]`` (JSON, so it goes into a run's start
document with ``phantom.describe()``); :func:`chart_layout` reads it back as a
:class:`ChartLayout`. Coordinates are those of the projection at 0 degrees and offset
0 on the sensor grid: rows ``z``, columns ``x``, pixel ``(i, j)`` centred at ``(i, j)``;
ROIs are half-open ``[z0, z1, x0, x1]`` (``image[z0:z1, x0:x1]``).

Layout (all lengths in sensor pixels, ``s = min(H, W)``): elements are kept
``gap = max(8, round(s / 25.6))`` apart (10 at 256), so that an image blurred by a
Gaussian of sigma up to about ``gap / 3`` does not mix neighbours, and
``max(4, round(s / 32))`` from the border; they are packed in shelves, tallest first
(the two orientations of a bar width side by side), and the room left is shared out
evenly between them, so the chart spreads over the field. Bar widths are
:data:`BAR_WIDTHS_PX` at every size (the blur is in sensor pixels too); the widest
groups that do not fit are dropped (the chart keeps widths 1-5 px at 128, all of them
from 256 on). Bars are ``max(12, 5 w)`` long. The knife-edge ROI is
``max(32, round(s / 4))`` rows tall, with at least ``max(16, round(s / 16))`` columns on
each side of the edge in every row; pad and background ROIs are
``max(16, round(s / 8))`` square, and the pad's ROI keeps ``gap`` from its borders.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .phantoms import Phantom, _shape_of

__all__ = ["BAR_THICKNESS", "BAR_WIDTHS_PX", "CHART_VALUE", "EDGE_ANGLE_DEG", "EDGE_THICKNESS",
           "ChartGroup", "ChartLayout", "chart_layout", "resolution_chart"]

#: Bar widths (sensor pixels) of the line-pair groups, narrowest first.
BAR_WIDTHS_PX = (1, 2, 3, 4, 5, 6, 8, 10, 12)
#: The narrowest groups a chart must hold, else the size is too small.
_MIN_WIDTHS = 4
#: Bars per group.
N_BARS = 3
#: Angle (degrees) of the knife edge from the column (z) axis.
EDGE_ANGLE_DEG = 5.0
#: Value (attenuation relative to ``mu``) of the chart's material.
CHART_VALUE = 1.0
#: Thickness (voxels along y) of the bars and the pad.
BAR_THICKNESS = 2.0
#: Thickness (voxels along y) of the knife-edge block.
EDGE_THICKNESS = 4.0

Roi = tuple[int, int, int, int]


@dataclass(frozen=True)
class ChartGroup:
    """One line-pair group of a :class:`ChartLayout`.

    Attributes
    ----------
    bar_width_px
        Width of a bar (and of a space) in the layout's pixels (sensor pixels divided
        by :attr:`ChartLayout.binning`).
    orientation
        ``"vertical"`` (bars along z, varying along x) or ``"horizontal"`` (bars
        along x, varying along z).
    n_bars
        Number of bars.
    roi
        ``(z0, z1, x0, x1)``, the tight box around the bars.
    bar_centres
        Centre of each bar along the varying axis (x for vertical bars, z for
        horizontal ones), pixel centres being at integers.
    """

    bar_width_px: float
    orientation: str
    n_bars: int
    roi: Roi
    bar_centres: tuple[float, ...]

    @property
    def space_centres(self) -> tuple[float, ...]:
        """Centres of the spaces between the bars, along the varying axis."""
        c = self.bar_centres
        return tuple((a + b) / 2 for a, b in itertools.pairwise(c))


@dataclass(frozen=True)
class ChartLayout:
    """Where the elements of a :func:`resolution_chart` lie in a frame.

    Coordinates are of the projection at 0 degrees, offset 0: rows ``z``, columns
    ``x``, the pixel ``(i, j)`` centred at ``(i, j)``; ROIs are half-open
    ``(z0, z1, x0, x1)``. :meth:`scaled` maps them to binned frames.

    Attributes
    ----------
    shape
        ``(rows, columns)`` of the frame.
    groups
        The line-pair groups.
    edge_roi
        Region holding the slanted edge, at least 16 sensor pixels of material
        (left) and of open beam (right) in every row.
    edge_angle_deg
        Angle of the edge from the column axis; positive: the edge moves to larger
        ``x`` at larger ``z``.
    edge_centre
        ``(z, x)`` of the edge line in the middle row of :attr:`edge_roi`: the edge
        is at ``x = edge_centre[1] + (z - edge_centre[0]) * tan(edge_angle_deg)``.
    pad
        ROI of uniform material (the bars' thickness).
    background
        ROI of open beam.
    gap_px
        Least distance between elements (and between :attr:`pad` and the pad's
        border).
    binning
        Sensor pixels per pixel of this layout along each axis (1: the sensor grid).
    """

    shape: tuple[int, int]
    groups: tuple[ChartGroup, ...]
    edge_roi: Roi
    edge_angle_deg: float
    edge_centre: tuple[float, float]
    pad: Roi
    background: Roi
    gap_px: float
    binning: int = 1

    def group(self, bar_width_px: int, orientation: str) -> ChartGroup:
        """The group of bars ``bar_width_px`` *sensor* pixels wide in ``orientation``.

        Raises
        ------
        KeyError
            If the chart has no such group.
        """
        for g in self.groups:
            if (g.orientation == orientation
                    and round(g.bar_width_px * self.binning) == bar_width_px):
                return g
        raise KeyError(f"no {orientation} group of {bar_width_px} px bars; the chart has "
                       f"{sorted({round(g.bar_width_px * self.binning) for g in self.groups})}")

    def scaled(self, binning: int) -> ChartLayout:
        """This layout in frames binned ``binning x binning``.

        A pixel centre ``i`` maps to ``(i - (binning - 1) / 2) / binning`` (the centre of
        binned pixel ``k`` is the mean of its sensor pixels' centres ``k * binning ...
        k * binning + binning - 1``); ROIs keep the binned pixels lying wholly inside:
        ``[ceil(z0 / b), floor(z1 / b), ceil(x0 / b), floor(x1 / b)]``. Scalings
        compose: ``scaled(2).scaled(2) == scaled(4)``.

        Raises
        ------
        ValueError
            For a ``binning`` that is not an integer >= 1.
        """
        if isinstance(binning, bool) or not isinstance(binning, int | np.integer) or binning < 1:
            raise ValueError(f"binning must be an integer >= 1, got {binning!r}")
        b = int(binning)

        def point(c: float) -> float:
            return (c - (b - 1) / 2) / b

        def roi(r: Roi) -> Roi:
            z0, z1, x0, x1 = r
            return (-(-z0 // b), z1 // b, -(-x0 // b), x1 // b)

        groups = tuple(replace(g, bar_width_px=g.bar_width_px / b, roi=roi(g.roi),
                               bar_centres=tuple(point(c) for c in g.bar_centres))
                       for g in self.groups)
        return ChartLayout(
            shape=(self.shape[0] // b, self.shape[1] // b), groups=groups,
            edge_roi=roi(self.edge_roi), edge_angle_deg=self.edge_angle_deg,
            edge_centre=(point(self.edge_centre[0]), point(self.edge_centre[1])),
            pad=roi(self.pad), background=roi(self.background), gap_px=self.gap_px / b,
            binning=self.binning * b)


def chart_layout(phantom: Phantom | Mapping[str, Any]) -> ChartLayout:
    """The layout of a resolution chart on the sensor grid.

    Parameters
    ----------
    phantom
        A :func:`resolution_chart`, or its ``describe()`` (e.g. from a run's start
        document, ``start["simulation"]["phantom"]``).

    Raises
    ------
    ValueError
        If ``phantom`` carries no chart layout.
    """
    if isinstance(phantom, Phantom):
        chart, shape = phantom.params.get("chart"), phantom.shape
    else:
        chart, shape = phantom.get("chart"), phantom.get("shape")
    if not isinstance(chart, Mapping) or shape is None:
        name = phantom.name if isinstance(phantom, Phantom) else phantom.get("name")
        raise ValueError(f"phantom {name!r} has no resolution-chart layout (params['chart'])")
    edge = chart["edge"]
    groups = tuple(
        ChartGroup(bar_width_px=float(g["bar_width_px"]), orientation=str(g["orientation"]),
                   n_bars=int(g["n_bars"]), roi=_roi(g["roi"]),
                   bar_centres=tuple(float(c) for c in g["bar_centres"]))
        for g in chart["groups"])
    return ChartLayout(shape=(int(shape[0]), int(shape[-1])), groups=groups,
                       edge_roi=_roi(edge["roi"]), edge_angle_deg=float(edge["angle_deg"]),
                       edge_centre=(float(edge["centre"][0]), float(edge["centre"][1])),
                       pad=_roi(chart["pad"]), background=_roi(chart["background"]),
                       gap_px=float(chart["gap_px"]))


def _roi(r: Any) -> Roi:
    z0, z1, x0, x1 = (int(v) for v in r)
    return (z0, z1, x0, x1)


# ------------------------------------------------------------------ building
@dataclass
class _Item:
    """A rectangle to place: ``kind``, its size and (once packed) its corner."""

    kind: str
    height: int
    width: int
    width_px: int = 0
    z0: int = 0
    x0: int = 0


def _pack(items: list[_Item], rows: int, cols: int, gap: int) -> bool:
    """Place ``items`` in ``rows x cols``, at least ``gap`` apart; False if they do not fit.

    Shelf packing, tallest first (each item goes to the first shelf with room, else
    opens one below); then the room left is shared out evenly, between and around the
    shelves and between and around the items of each shelf.
    """
    shelves: list[list[int]] = []  # item indices per shelf
    heights: list[int] = []
    used: list[int] = []  # width taken, gaps included
    order = sorted(range(len(items)), key=lambda k: (-items[k].height, -items[k].width, k))
    for k in order:
        item = items[k]
        for n, members in enumerate(shelves):
            if item.height <= heights[n] and used[n] + gap + item.width <= cols:
                members.append(k)
                used[n] += gap + item.width
                break
        else:
            if item.width > cols or sum(heights) + gap * len(shelves) + item.height > rows:
                return False
            shelves.append([k])
            heights.append(item.height)
            used.append(item.width)
    z = _spare(rows - sum(heights) - gap * (len(shelves) - 1), len(shelves))
    z0 = z[0]
    for n, members in enumerate(shelves):
        x = _spare(cols - used[n], len(members))
        x0 = x[0]
        for m, k in enumerate(members):
            items[k].z0, items[k].x0 = z0, x0
            x0 += items[k].width + gap + x[m + 1]
        z0 += heights[n] + gap + z[n + 1]
    return True


def _spare(room: int, n: int) -> list[int]:
    """``room`` pixels shared out over the ``n + 1`` spaces before, between and after ``n``."""
    return [room * (k + 1) // (n + 1) - room * k // (n + 1) for k in range(n + 1)]


def _box(z0: float, z1: float, x0: float, x1: float, thickness: float,
         centre: tuple[float, float]) -> list[float]:
    """A box table row spanning ``[z0, z1] x [x0, x1]`` (pixel coordinates, boundaries)."""
    zc, xc = centre
    return [(z0 + z1) / 2 - zc, 0.0, (x0 + x1) / 2 - xc, (z1 - z0) / 2, thickness / 2,
            (x1 - x0) / 2, 0.0, CHART_VALUE]


def resolution_chart(size: int | tuple[int, int], *, seed: int | None = None) -> Phantom:
    """A resolution test chart: line-pair groups, a slanted knife edge, a pad, open beam.

    See the module's description for the elements, the thicknesses and the layout
    rules.

    Parameters
    ----------
    size
        Slice width ``W`` (volume ``(W, W, W)``), or ``(height, width)`` for a volume
        ``(height, width, width)``; at least 128 or so.
    seed
        Recorded only: the chart is deterministic (the argument lets
        :func:`~lowdose_bluesky.phantoms.phantom_from_name` treat all phantoms alike).

    Returns
    -------
    Phantom
        Named ``"resolution_chart"``; ``params["chart"]`` holds the layout (see
        :func:`chart_layout`).

    Raises
    ------
    ValueError
        If the size cannot hold the knife edge, the pad, the background and the
        groups of bar widths 1 to 4 px.
    """
    height, width = _shape_of(size)
    s = min(height, width)
    margin = max(4, round(s / 32))
    gap = max(8, round(s / 25.6))
    edge_rows = max(32, round(s / 4))
    edge_side = max(16, round(s / 16))
    square = max(16, round(s / 8))
    tan = math.tan(math.radians(EDGE_ANGLE_DEG))
    edge_cols = 2 * edge_side + 2 * math.ceil((edge_rows - 1) * tan / 2) + 2  # even
    rows, cols = height - 2 * margin, width - 2 * margin

    for n_widths in range(len(BAR_WIDTHS_PX), _MIN_WIDTHS - 1, -1):
        items = [_Item("edge", edge_rows + 2 * gap, gap + edge_cols),
                 _Item("pad", square + 2 * gap, square + 2 * gap),
                 _Item("background", square, square)]
        for w in BAR_WIDTHS_PX[:n_widths]:  # both orientations side by side
            extent, length = (2 * N_BARS - 1) * w, max(12, 5 * w)
            items.append(_Item("bars", max(extent, length), extent + gap + length, w))
        if _pack(items, rows, cols, gap):
            break
    else:
        raise ValueError(
            f"size {size!r} is too small for the resolution chart: a {height} x {width} "
            f"projection cannot hold the knife edge ({edge_rows + 2 * gap} x "
            f"{gap + edge_cols} px), the pad, the background and the groups of bars "
            f"{BAR_WIDTHS_PX[0]}-{BAR_WIDTHS_PX[_MIN_WIDTHS - 1]} px wide, {gap} px apart; "
            "use a size of 128 or more")
    for item in items:
        item.z0 += margin
        item.x0 += margin

    centre = ((height - 1) / 2, (width - 1) / 2)
    boxes: list[list[float]] = []
    groups: list[dict[str, Any]] = []
    chart: dict[str, Any] = {"gap_px": gap}
    for item in items:
        z0, x0 = item.z0, item.x0
        if item.kind == "bars":  # vertical bars, then horizontal ones to their right
            w = item.width_px
            extent, length = (2 * N_BARS - 1) * w, max(12, 5 * w)
            starts = [2 * k * w for k in range(N_BARS)]
            xh = x0 + extent + gap
            for orientation, roi, spans, centres in (
                    ("vertical", [z0, z0 + length, x0, x0 + extent],
                     [(z0, z0 + length, x0 + a, x0 + a + w) for a in starts],
                     [x0 + a + (w - 1) / 2 for a in starts]),
                    ("horizontal", [z0, z0 + extent, xh, xh + length],
                     [(z0 + a, z0 + a + w, xh, xh + length) for a in starts],
                     [z0 + a + (w - 1) / 2 for a in starts])):
                boxes += [_box(a - 0.5, b - 0.5, c - 0.5, d - 0.5, BAR_THICKNESS, centre)
                          for a, b, c, d in spans]
                groups.append({"bar_width_px": w, "orientation": orientation,
                               "n_bars": N_BARS, "roi": roi, "bar_centres": centres})
        elif item.kind == "pad":
            boxes.append(_box(z0 - 0.5, z0 + item.height - 0.5, x0 - 0.5,
                              x0 + item.width - 0.5, BAR_THICKNESS, centre))
            chart["pad"] = [z0 + gap, z0 + item.height - gap, x0 + gap, x0 + item.width - gap]
        elif item.kind == "background":
            chart["background"] = [z0, z0 + item.height, x0, x0 + item.width]
        else:  # the knife edge: material from x0 to the slanted edge, one box per row
            roi = [z0 + gap, z0 + gap + edge_rows, x0 + gap, x0 + gap + edge_cols]
            z_mid = (roi[0] + roi[1] - 1) / 2
            x_mid = (roi[2] + roi[3] - 1) / 2  # half-integer: no row's edge on a pixel centre
            for z in range(z0, z0 + item.height):
                boxes.append(_box(z - 0.5, z + 0.5, x0 - 0.5, x_mid + (z - z_mid) * tan,
                                  EDGE_THICKNESS, centre))
            chart["edge"] = {"roi": roi, "angle_deg": EDGE_ANGLE_DEG, "centre": [z_mid, x_mid]}
    groups.sort(key=lambda g: (g["orientation"] != "vertical", g["bar_width_px"]))
    chart["groups"] = groups
    return Phantom(
        shape=(height, width, width), boxes=np.array(boxes), ellipsoids=np.empty((0, 8)),
        name="resolution_chart",
        params={"seed": seed, "value": CHART_VALUE, "bar_thickness": BAR_THICKNESS,
                "edge_thickness": EDGE_THICKNESS,
                "bar_widths_px": sorted({g["bar_width_px"] for g in groups}), "chart": chart})
