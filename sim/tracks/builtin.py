"""Built-in tracks, authored by this project from straights and arcs.

A design is a loop of pieces — straights and circular arcs (+ angle = left turn) whose angles add up to
+360° (counter-clockwise). Its curvature profile is smoothed with a periodic Gaussian (easement curves
instead of curvature jumps, which only lowers the peak curvature), integrated into a centre line, and closed
exactly by solving (least squares) for the lengths of two straights. Waypoints are evenly spaced (~0.17 m, like
DeepRacer's route files); borders sit at ±width/2 along the curve's exact normal and the centre line is
their midpoint. Every design is checked: counter-clockwise, the centre line's turning radius everywhere at
least width/2 + 0.15 m (so the inner border never folds), no border crossing itself or the other, and at
least 0.1 m of ground between separate parts of the road.

`python -m sim.tracks.builtin --write` regenerates `sim/tracks/data/<name>.npy`; without `--write` it only
builds and checks the designs.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import TrackError
from sim.tracks.library import DATA_DIR

log = logging.getLogger(__name__)

#: Target distance between consecutive waypoints, metres (DeepRacer's files use ~0.15-0.2 m).
WAYPOINT_SPACING_M = 0.17
#: Integration steps per waypoint interval (~5 mm steps).
_SUBSTEPS = 32
#: Standard deviation of the Gaussian that smooths the curvature profile, metres of arc length.
EASEMENT_SIGMA_M = 0.25
#: The centre line's turning radius must stay at least width/2 + this, metres.
MIN_RADIUS_MARGIN_M = 0.15
#: Ground required between separate parts of the road (border to border), metres.
MIN_GAP_M = 0.1
#: Distance from the lowest/leftmost border point to the x and y axes, metres.
_OFFSET_M = 0.3


@dataclass(frozen=True)
class Straight:
    """A straight piece, `length_m` metres long."""

    length_m: float


@dataclass(frozen=True)
class Arc:
    """A circular arc of `radius_m` metres turning `angle_deg` degrees (+ = left, - = right)."""

    radius_m: float
    angle_deg: float

    @property
    def length_m(self) -> float:
        return self.radius_m * math.radians(abs(self.angle_deg))


Piece = Straight | Arc


@dataclass(frozen=True)
class TrackDesign:
    """A built-in track: pieces driven from the start line (waypoint 0, heading +x).

    `closing` names two straights (indices into `pieces`) whose lengths are adjusted so the loop closes
    exactly (best of different directions; parallel ones suffice for a design symmetric about x); their
    lengths in `pieces` are first guesses.
    """

    name: str
    width_m: float
    pieces: tuple[Piece, ...]
    closing: tuple[int, int]
    description: str


def _hairpin_pieces() -> tuple[Piece, ...]:
    return (
        Straight(1.8),  # first half of the start/finish straight (east)
        Arc(1.1, 90),
        Straight(1.5),  # closing (north)
        Arc(1.1, 90),
        Straight(1.8),
        Arc(0.65, 180),  # the hairpin: back east, 1.3 m between the centres of the straights either side
        Straight(0.6),
        Arc(0.75, -90),
        Straight(0.2),
        Arc(0.75, -90),
        Straight(1.5),  # closing (west)
        Arc(0.8, 90),
        Arc(0.8, 90),
        Straight(1.8),
    )


def _long_straight_pieces() -> tuple[Piece, ...]:
    return (
        Straight(4.5),  # first half of the start/finish straight: ~8 m with its easements
        Arc(1.3, 90),
        Straight(2.5),  # closing (north)
        Arc(1.2, 90),
        Straight(0.3),
        Arc(0.85, 90),
        Straight(0.4),
        Arc(0.85, -90),
        Straight(1.5),  # closing (west)
        Arc(0.85, -90),
        Straight(0.4),
        Arc(0.85, 90),
        Straight(0.3),
        Arc(1.3, 90),
        Straight(1.0),
        Arc(1.3, 90),
        Straight(4.5),  # second half of the start/finish straight
    )


def _technical_pieces() -> tuple[Piece, ...]:
    return (
        Straight(2.0),
        Arc(0.8, 90),
        Straight(0.8),
        Arc(0.5, 90),
        Arc(0.6, -90),
        Straight(0.6),
        Arc(0.7, 135),
        Straight(0.6),
        Arc(0.5, -90),
        Arc(0.8, 135),
        Straight(1.0),  # closing (south)
        Arc(0.6, -90),
        Straight(0.4),
        Arc(0.6, 90),
        Arc(0.55, 90),
        Straight(0.8),
        Arc(0.6, -45),
        Arc(0.6, 45),
        Straight(1.5),  # closing (east)
    )


DESIGNS: dict[str, TrackDesign] = {
    d.name: d
    for d in (
        TrackDesign(
            "oval",
            0.76,
            (Straight(1.7), Arc(1.8, 180), Straight(3.4), Arc(1.8, 180), Straight(1.7)),
            (0, 2),  # both straights run along x: y closes by symmetry, least squares shares the x gap
            "A stadium oval: two 3.4 m straights and two 1.8 m-radius half circles. ~18 m, 0.76 m wide.",
        ),
        TrackDesign(
            "tiny_loop",
            0.76,
            (
                Straight(0.35),
                Arc(0.85, 90),
                Straight(0.7),
                Arc(0.85, 90),
                Straight(0.7),
                Arc(0.85, 90),
                Straight(0.7),
                Arc(0.85, 90),
                Straight(0.35),
            ),
            (0, 2),
            "A rounded square for quick tests. ~8 m, 0.76 m wide.",
        ),
        TrackDesign(
            "hairpin",
            0.9,
            _hairpin_pieces(),
            (2, 10),
            "A 180-degree hairpin of 0.65 m radius, a wider 180-degree right-hander and two sweepers. "
            "~22 m, 0.9 m wide.",
        ),
        TrackDesign(
            "long_straight",
            1.07,
            _long_straight_pieces(),
            (2, 8),
            "A ~8 m start/finish straight between two 1.3 m-radius corners, and an infield U of four "
            "0.85 m-radius bends. ~31 m, 1.07 m wide.",
        ),
        TrackDesign(
            "technical",
            0.6,
            _technical_pieces(),
            (10, 18),
            "Many corners of 0.5-0.8 m radius in both directions, short straights. ~20 m, 0.6 m wide.",
        ),
    )
}

BUILTIN_NAMES: tuple[str, ...] = tuple(DESIGNS)


# --------------------------------------------------------------------------- centre line


def _with_lengths(
    pieces: tuple[Piece, ...], closing: tuple[int, int], lengths_m: np.ndarray
) -> tuple[Piece, ...]:
    out = list(pieces)
    for index, length in zip(closing, lengths_m, strict=True):
        out[index] = Straight(float(length))
    return tuple(out)


def _turn_per_step(pieces: tuple[Piece, ...], n_steps: int) -> tuple[np.ndarray, float]:
    """Smoothed turning angle of each of `n_steps` equal arc-length steps (rad) and the step length (m)."""
    from scipy.ndimage import gaussian_filter1d  # only needed to (re)generate the built-in tracks

    lengths = np.array([p.length_m for p in pieces])
    angles = np.array([math.radians(p.angle_deg) if isinstance(p, Arc) else 0.0 for p in pieces])
    bounds = np.concatenate([[0.0], np.cumsum(lengths)])
    total_turn = np.concatenate([[0.0], np.cumsum(angles)])  # piecewise linear in s: exact per step
    step_m = bounds[-1] / n_steps
    turn = np.diff(np.interp(np.arange(n_steps + 1) * step_m, bounds, total_turn))
    turn = gaussian_filter1d(turn, EASEMENT_SIGMA_M / step_m, mode="wrap")
    return turn * (2 * math.pi / turn.sum()), step_m


def _integrate(pieces: tuple[Piece, ...], n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (n_steps + 1, 2) and headings (n_steps + 1,) along the curve, starting at (0, 0) heading +x."""
    turn, step_m = _turn_per_step(pieces, n_steps)
    heading = np.concatenate([[0.0], np.cumsum(turn)])
    mid = heading[:-1] + 0.5 * turn
    steps = step_m * np.column_stack([np.cos(mid), np.sin(mid)])
    return np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)]), heading


def _closed_pieces(design: TrackDesign, n_steps: int) -> tuple[Piece, ...]:
    """The design's pieces with the closing straights' lengths solved (Newton, least squares) so the
    integrated curve ends where it starts, to well under a micrometre."""
    lengths = np.array([design.pieces[i].length_m for i in design.closing], dtype=np.float64)

    def gap(ls: np.ndarray) -> np.ndarray:
        return _integrate(_with_lengths(design.pieces, design.closing, ls), n_steps)[0][-1]

    for _ in range(20):
        err = gap(lengths)
        if np.hypot(*err) < 1e-9:
            break
        jac = np.column_stack([(gap(lengths + 1e-6 * e) - err) / 1e-6 for e in np.eye(len(lengths))])
        lengths = lengths - np.linalg.lstsq(jac, err, rcond=None)[0]
    else:
        raise TrackError(f"builtin:{design.name}: the design does not close (gap {np.hypot(*err):.3g} m)")
    if (lengths <= 0).any():
        raise TrackError(f"builtin:{design.name}: closing needs a straight of negative length {lengths}")
    return _with_lengths(design.pieces, design.closing, lengths)


def build_route(design: TrackDesign) -> np.ndarray:
    """The design's route array (N + 1, 6), float64, metres, first row repeated at the end."""
    turning = sum(p.angle_deg for p in design.pieces if isinstance(p, Arc))
    if not math.isclose(turning, 360.0, abs_tol=1e-9):
        raise TrackError(f"builtin:{design.name}: arcs turn {turning} degrees in total, expected +360")
    n_waypoints = max(8, round(sum(p.length_m for p in design.pieces) / WAYPOINT_SPACING_M))
    n_steps = n_waypoints * _SUBSTEPS
    points, heading = _integrate(_closed_pieces(design, n_steps), n_steps)
    centre, heading = points[:-1:_SUBSTEPS], heading[:-1:_SUBSTEPS]
    left = np.column_stack([-np.sin(heading), np.cos(heading)])
    inner = centre + 0.5 * design.width_m * left  # counter-clockwise: the inside of the loop is on the left
    outer = centre - 0.5 * design.width_m * left
    shift = _OFFSET_M - np.vstack([inner, outer]).min(axis=0)
    inner, outer = inner + shift, outer + shift
    route = np.column_stack([0.5 * (inner + outer), inner, outer])
    return np.vstack([route, route[:1]])


# --------------------------------------------------------------------------- checks


def _circumradius_m(ring: np.ndarray) -> np.ndarray:
    """Radius of the circle through each waypoint and its two neighbours (inf on straights), metres."""
    a = np.roll(ring, 1, axis=0)
    c = np.roll(ring, -1, axis=0)
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((a, ring), (ring, c), (c, a)))
    cross = np.abs(_orient(a, ring, c))
    with np.errstate(divide="ignore"):
        return ab * bc * ca / (2 * cross)


def _orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangles (p, q, r), m² (+ = counter-clockwise); points (..., 2)."""
    pq, pr = q - p, r - p
    return pq[..., 0] * pr[..., 1] - pq[..., 1] * pr[..., 0]


def _crossings(ring_a: np.ndarray, ring_b: np.ndarray, same: bool) -> list[tuple[int, int]]:
    """Pairs (i, j) of segments of closed rings (k+1, 2) that properly cross; neighbours skipped if `same`.

    Collinear neighbours along a straight (orientations within rounding of 0) do not count; a border that
    merely touches another is caught by the gap check instead."""
    a0, a1 = ring_a[:-1, None, :], ring_a[1:, None, :]
    b0, b1 = ring_b[None, :-1, :], ring_b[None, 1:, :]

    def opposite(o1: np.ndarray, o2: np.ndarray) -> np.ndarray:
        return (o1 * o2 < 0) & (np.abs(o1) > 1e-12) & (np.abs(o2) > 1e-12)

    hit = opposite(_orient(a0, a1, b0), _orient(a0, a1, b1))
    hit &= opposite(_orient(b0, b1, a0), _orient(b0, b1, a1))
    if same:
        n = len(ring_a) - 1
        i, j = np.indices(hit.shape)
        hit &= np.minimum((i - j) % n, (j - i) % n) > 1
    return [(int(i), int(j)) for i, j in np.argwhere(hit) if not same or i < j]


def _min_gap_m(centre: np.ndarray, width_m: float) -> float:
    """Smallest border-to-border gap between parts of the road more than 3 widths apart along it, metres."""
    seg = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])[:-1]
    length = seg.sum()
    along = np.abs(s[:, None] - s[None, :])
    along = np.minimum(along, length - along)
    dist = np.linalg.norm(centre[:-1, None, :] - centre[None, :-1, :], axis=2)
    far = along > 3 * width_m
    return float(dist[far].min() - width_m) if far.any() else math.inf


def check_route(route: np.ndarray, width_m: float, name: str) -> None:
    """Raise TrackError unless the route is a well-formed built-in track (see the module docstring)."""
    centre, inner, outer = route[:, 0:2], route[:, 2:4], route[:, 4:6]
    problems = []
    x, y = centre[:-1, 0], centre[:-1, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) <= 0:
        problems.append("the centre line runs clockwise")
    spacing = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    if spacing.min() < 0.1 or spacing.max() > 0.25:
        problems.append(f"waypoint spacing {spacing.min():.3f}-{spacing.max():.3f} m is outside 0.1-0.25 m")
    radius = _circumradius_m(centre[:-1]).min()
    if radius < width_m / 2 + MIN_RADIUS_MARGIN_M - 1e-3:
        problems.append(f"turning radius {radius:.3f} m < width/2 + {MIN_RADIUS_MARGIN_M} m")
    for label, a, b, same in (
        ("inner", inner, inner, True),
        ("outer", outer, outer, True),
        ("inner/outer", inner, outer, False),
    ):
        if hits := _crossings(a, b, same):
            problems.append(f"{label} border segments cross: {hits[:3]}")
    if (gap := _min_gap_m(centre, width_m)) < MIN_GAP_M:
        problems.append(f"separate parts of the road are only {gap:.3f} m apart")
    if problems:
        raise TrackError(f"builtin:{name}: " + "; ".join(problems))


# --------------------------------------------------------------------------- files


def builtin_route(name: str) -> np.ndarray:
    """Build and check the built-in track `name`: route array (N + 1, 6), metres."""
    if name not in DESIGNS:
        raise TrackError(f"no built-in track design {name!r}; designs: {', '.join(BUILTIN_NAMES)}")
    design = DESIGNS[name]
    route = build_route(design)
    check_route(route, design.width_m, name)
    return route


def write_builtin_tracks(directory: Path = DATA_DIR) -> list[Path]:
    """(Re)generate `<directory>/<name>.npy` for every built-in design; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in BUILTIN_NAMES:
        path = directory / f"{name}.npy"
        np.save(path, builtin_route(name))
        paths.append(path)
    return paths


def _describe(name: str, route: np.ndarray) -> str:
    centre = route[:, 0:2]
    length = np.linalg.norm(np.diff(centre, axis=0), axis=1).sum()
    radius = _circumradius_m(centre[:-1]).min()
    return (
        f"{name}: {length:.2f} m, {len(route)} rows, width {DESIGNS[name].width_m} m, "
        f"min turning radius {radius:.2f} m"
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.tracks.builtin [--write] [--out DIR]`: build and check the designs, write with --write.

    Returns the exit status (0 ok, 1 a design failed its checks)."""
    parser = argparse.ArgumentParser(prog="python -m sim.tracks.builtin", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write <name>.npy files (default: check only)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=f"output folder (default {DATA_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.write:
            for path in write_builtin_tracks(args.out):
                log.info("wrote %s (%s)", path, _describe(path.stem, np.load(path)))
        else:
            for name in BUILTIN_NAMES:
                log.info("ok %s", _describe(name, builtin_route(name)))
    except TrackError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
