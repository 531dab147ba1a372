"""Name every point of a scatter plot without labels running into each other or into the points:
each label takes the first free spot among positions around its point, nearest first, and a
label placed away from its point gets a thin leader line."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

# Offsets of the label from its point, in typographic points: 8 directions × growing distances.
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_DISTANCES = (5, 12, 22, 34, 48)
_LEADER_FROM = 12  # from this distance on, a line joins label and point
_CROWDED_PX = 12.0  # another point this close: always a leader line
_MARKER_PX = 4.0  # half the side of the box a marker occupies, in pixels


def place_labels(
    ax,
    points: Sequence[tuple[float, float]],
    texts: Sequence[str],
    line: Sequence[tuple[float, float]] = (),
    fontsize: float = 8,
) -> list:
    """Annotate `points` (data coordinates) with `texts`, keeping clear of the points, the legend
    and the polyline `line` (the Pareto front); returns the annotations. Call once the axes'
    limits and the figure's layout are final: positions are measured on the drawn figure."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pixels = [ax.transData.transform(p) for p in points]
    # (box, weight): another label or the legend costs most, a marker less, the line least.
    obstacles = [
        (Bbox.from_extents(x - _MARKER_PX, y - _MARKER_PX, x + _MARKER_PX, y + _MARKER_PX), 3)
        for x, y in pixels
    ]
    obstacles += [(b, 1) for b in _along(ax.transData.transform(line) if len(line) else [], Bbox)]
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append((legend.get_window_extent(renderer), 5))
    frame = ax.get_window_extent(renderer)
    placed: list = []
    labels = []
    # Crowded points first: they have the fewest free spots.
    order = sorted(range(len(points)), key=lambda i: -_neighbours(pixels, i, 60.0))
    for i in order:
        probe = ax.text(0, 0, texts[i], fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        # A point with another within a few pixels gets its label a little away, with a line:
        # next to it the label could belong to either.
        crowded = _neighbours(pixels, i, _CROWDED_PX) > 0
        distances = _DISTANCES[1:] if crowded else _DISTANCES
        best, best_cost = None, None
        for distance, (dx, dy) in itertools.product(distances, _DIRECTIONS):
            box = _box(pixels[i], dx * distance, dy * distance, extent.width, extent.height, fig.dpi)
            cost = sum(w for b, w in placed + obstacles if box.overlaps(b)) + 10 * (not _inside(box, frame))
            if best_cost is None or cost < best_cost:
                best, best_cost = (box, dx * distance, dy * distance, distance), cost
            if cost == 0:
                break
        box, dx, dy, distance = best
        labels.append(_annotate(ax, points[i], texts[i], dx, dy, fontsize, leader=distance >= _LEADER_FROM))
        placed.append((box, 5))
    return labels


def _box(pixel, dx: float, dy: float, width: float, height: float, dpi: float):
    """The box a label of `width` × `height` pixels takes at offset (dx, dy) points from `pixel`,
    aligned as `_annotate` aligns it (a little margin around the text)."""
    from matplotlib.transforms import Bbox

    x = pixel[0] + dx * dpi / 72
    y = pixel[1] + dy * dpi / 72
    x0 = x if dx > 0 else x - width if dx < 0 else x - width / 2
    y0 = y if dy > 0 else y - height if dy < 0 else y - height / 2
    return Bbox.from_bounds(x0 - 1, y0 - 1, width + 2, height + 2)


def _annotate(ax, point, text: str, dx: float, dy: float, fontsize: float, leader: bool = False):
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    arrow = {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 3} if leader else None
    return ax.annotate(
        text,
        point,
        xytext=(dx, dy),
        textcoords="offset points",
        ha=ha,
        va=va,
        fontsize=fontsize,
        arrowprops=arrow,
    )


def _along(pixels, bbox_type, step: float = 6.0) -> list:
    """Small boxes every `step` pixels along a polyline (a label may not sit on the line)."""
    boxes = []
    for (x0, y0), (x1, y1) in itertools.pairwise(pixels):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for k in range(n + 1):
            x, y = x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n
            boxes.append(bbox_type.from_extents(x - 1.5, y - 1.5, x + 1.5, y + 1.5))
    return boxes


def _inside(box, frame) -> bool:
    return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1


def _neighbours(pixels, i: int, radius: float) -> int:
    x, y = pixels[i]
    return sum(1 for j, (u, v) in enumerate(pixels) if j != i and (u - x) ** 2 + (v - y) ** 2 < radius**2)
