"""Point locations in a B-tree keyed by a grid cell (the R-tree keeps every other geometry).

An R-tree insert costs ~20 µs at 100,000 rows (SQLite's R*-tree splits and reinserts nodes); a row
of `entity_points` and its (cell, x, y) index entry cost a few. The cell is row-major on a 0.01°
grid (≈ 1.1 km of latitude), so a city-sized query box spans a handful of grid rows: one index
range of cells per row, whose exact x, y the index itself carries (the box test needs no row read).
"""

from __future__ import annotations

from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_points(
    seq INTEGER PRIMARY KEY, cell INTEGER NOT NULL, px REAL NOT NULL, py REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entity_points_cell ON entity_points(cell, px, py);
"""
CELL_DEGREES = 0.01
_COLUMNS = 36_000  # 360 / CELL_DEGREES
_ROWS = 18_000  # 180 / CELL_DEGREES
# A box over more grid rows than this reads one range over its whole band of rows instead
# (a bounded SQL text; such a box holds most of a city's points anyway).
MAX_RANGES = 64

BBox = tuple[float, float, float, float]


def _index(value: float, limit: int) -> int:
    # Clamped (longitude 180 and latitude 90 fall in the last cell; a query box may reach beyond
    # the valid range). Monotonic in `value`, so a point inside a box lies in the box's cell ranges.
    step = value / CELL_DEGREES
    return 0 if step < 0 else limit - 1 if step >= limit else int(step)


def cell(x: float, y: float) -> int:
    """The grid cell of a point."""
    return _index(y + 90.0, _ROWS) * _COLUMNS + _index(x + 180.0, _COLUMNS)


def row(seq: int, x: float, y: float) -> tuple[int, int, float, float]:
    """The `entity_points` row of a Point location."""
    return (seq, cell(x, y), x, y)


def in_box(bbox: BBox) -> tuple[str, list[Any], str, list[Any]]:
    """The points inside a lon/lat box (edges included) as `entity_points g`: a FROM clause (one
    index range of cells per grid row: a VALUES list drives the loop, ranges are disjoint), its
    parameters, the WHERE condition on the exact coordinates and its parameters."""
    minx, miny, maxx, maxy = bbox
    low, high = _index(miny + 90.0, _ROWS), _index(maxy + 90.0, _ROWS)
    first, last = _index(minx + 180.0, _COLUMNS), _index(maxx + 180.0, _COLUMNS)
    if high - low + 1 > MAX_RANGES:
        ranges = [(low * _COLUMNS, high * _COLUMNS + _COLUMNS - 1)]
    else:
        ranges = [(r * _COLUMNS + first, r * _COLUMNS + last) for r in range(low, high + 1)]
    values = ",".join(["(?,?)"] * len(ranges))
    return (f"(VALUES {values}) r CROSS JOIN entity_points g ON g.cell BETWEEN r.column1 AND r.column2",
            [bound for pair in ranges for bound in pair],
            "g.px BETWEEN ? AND ? AND g.py BETWEEN ? AND ?", [minx, maxx, miny, maxy])
