"""`pitlane bench startup`: wall time of small commands, each in a fresh process, with an empty and a warm track
geometry cache (`sim.tracks.cache`).

Every probe is a new Python process (what a user waits for when typing the command): `pitlane --help`, then
on each track `reward params`, `reward check` (the shipped example reward), `tracks show --raceline` (and
with `--png`, reported without a target) and a script that makes the gymnasium env and takes its first step. Cold runs get a new empty cache folder
each; warm runs share a folder filled by one untimed run. The best of `repeats` runs is reported (other
processes on the machine only ever add time), with the children's CPU seconds beside it.

The long track is `reInvent2019_track` stretched to 60 m (`sim.tracks.track.stretched_route`: same shape and
widths, gentler turns), written to a temporary `.npy`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.errors import StartupBenchError

#: Targets of the warm runs, seconds: `--help`, commands on reinvent_base, commands on the 60 m track.
HELP_TARGET_S = 0.3
SHORT_TRACK_TARGET_S = 1.0
LONG_TRACK_TARGET_S = 2.0
#: An organiser's admin command (one query on a migrated SQLite database): "well under a second".
ADMIN_TARGET_S = 0.75
LONG_TRACK_M = 60.0

_FIRST_STEP = """
import sys
import gymnasium
import sim
env = gymnasium.make("pitlane/TimeTrial-v0", track=sys.argv[1])
env.reset(seed=0)
env.step(env.action_space.sample())
"""


@dataclass(frozen=True)
class Probe:
    """One command to time: `argv` runs as is (its first item is an executable)."""

    name: str
    track: str
    argv: tuple[str, ...]
    target_s: float | None


@dataclass(frozen=True)
class StartupRow:
    """Best-of-n wall and CPU seconds of one probe with an empty (cold) and a filled (warm) geometry cache."""

    command: str
    track: str
    cold_s: float
    warm_s: float
    cold_cpu_s: float
    warm_cpu_s: float
    target_s: float | None

    @property
    def cold_over_warm(self) -> float:
        return self.cold_s / self.warm_s

    @property
    def meets_target(self) -> bool | None:
        """None for a probe without a target (reported for comparison only)."""
        return None if self.target_s is None else self.warm_s <= self.target_s

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "cold_over_warm": round(self.cold_over_warm, 2),
            "meets_target": self.meets_target,
        }


def _pitlane() -> list[str]:
    """The `pitlane` console script beside this interpreter, else `python -m pitlane`."""
    script = Path(sys.executable).with_name("pitlane")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pitlane"]


def long_track_file(folder: Path) -> Path:
    """Write the 60 m bench track (reInvent2019_track stretched) into `folder`; returns its path."""
    import numpy as np

    from sim.tracks.library import resolve_track
    from sim.tracks.track import stretched_route

    path = folder / f"stretched_{LONG_TRACK_M:.0f}m.npy"
    np.save(path, stretched_route(np.load(resolve_track("reInvent2019_track")), LONG_TRACK_M))
    return path


def plan(folder: Path) -> list[Probe]:
    """The probes, with the long track written into `folder` (pictures go there too)."""
    import numpy as np

    from sim.reward.examples import FOLLOW_CENTERLINE
    from sim.tracks.library import resolve_track

    pitlane = _pitlane()
    reward_file = str(FOLLOW_CENTERLINE)
    probes = [Probe("pitlane --help", "-", (*pitlane, "--help"), HELP_TARGET_S)]
    long_path = long_track_file(folder)
    for track, spec, path, target in (
        ("reinvent_base", "reinvent_base", resolve_track("reinvent_base"), SHORT_TRACK_TARGET_S),
        (f"{LONG_TRACK_M:.0f} m", str(long_path), long_path, LONG_TRACK_TARGET_S),
    ):
        x, y = (float(v) for v in np.load(path)[0, :2])  # on the start line
        png = str(folder / f"{path.stem}.png")
        probes += [
            Probe("reward params", track, (*pitlane, "reward", "params", "--x", f"{x}", "--y", f"{y}", "--track", spec), target),
            Probe("reward check", track, (*pitlane, "reward", "check", reward_file, "--track", spec), target),
            Probe("tracks show --raceline", track, (*pitlane, "tracks", "show", spec, "--raceline"), target),
            # the same with a picture: matplotlib's import and drawing, reported beside it without a target
            Probe("tracks show --raceline --png", track, (*pitlane, "tracks", "show", spec, "--raceline", "--png", png), None),
            Probe("env first step", track, (sys.executable, "-c", _FIRST_STEP, spec), target),
        ]  # fmt: skip
    db = f"sqlite:///{folder / 'league.db'}"
    subprocess.run([*pitlane, "league", "migrate", "--db", db], capture_output=True, check=True)
    admin = (*pitlane, "league", "admin", "list-races", "--db", db)
    return [*probes, Probe("league admin list-races", "-", admin, ADMIN_TARGET_S)]


def _run(probe: Probe, cache_dir: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one run of `probe` with `cache_dir` as PITLANE_CACHE_DIR."""
    env = {**os.environ, "PITLANE_CACHE_DIR": str(cache_dir), "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg"}
    before = os.times()  # children's CPU times (zero on Windows, which does not count them)
    start = time.perf_counter()
    proc = subprocess.run(probe.argv, env=env, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - start
    after = os.times()
    if proc.returncode != 0:
        raise StartupBenchError(
            f"{probe.name} on {probe.track} failed (exit {proc.returncode}): {' '.join(probe.argv)}\n"
            f"{proc.stderr.strip()[-2000:]}"
        )
    cpu_s = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall_s, cpu_s


def bench_startup(repeats: int = 3, on_run: Callable[[str, float], None] | None = None) -> list[StartupRow]:
    """Time every probe of `plan` `repeats` times cold and `repeats` times warm (plus one untimed warm-up
    run per probe that fills the warm cache); best runs per probe. `on_run(description, fraction done)` is
    called before each run."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-startup-") as tmp:
        folder = Path(tmp)
        warm_cache = folder / "warm-cache"
        probes = plan(folder)
        runs_per_probe = 2 * repeats + 1
        for i, probe in enumerate(probes):
            done = 0

            def run(kind: str, cache_dir: Path, probe: Probe = probe, i: int = i) -> tuple[float, float]:
                nonlocal done
                if on_run:
                    fraction = (i * runs_per_probe + done) / (len(probes) * runs_per_probe)
                    on_run(f"{probe.name} ({probe.track}): {kind}", fraction)
                done += 1
                return _run(probe, cache_dir)

            cold = [run(f"cold {r + 1}/{repeats}", folder / f"cold-cache-{i}-{r}") for r in range(repeats)]
            run("filling the warm cache", warm_cache)
            warm = [run(f"warm {r + 1}/{repeats}", warm_cache) for r in range(repeats)]
            rows.append(
                StartupRow(
                    probe.name,
                    probe.track,
                    cold_s=round(min(w for w, _ in cold), 3),
                    warm_s=round(min(w for w, _ in warm), 3),
                    cold_cpu_s=round(min(c for _, c in cold), 3),
                    warm_cpu_s=round(min(c for _, c in warm), 3),
                    target_s=probe.target_s,
                )
            )
    return rows
