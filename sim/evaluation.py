"""Time-trial evaluation of a policy on one car, with DeepRacer's evaluation semantics and `contracts.race` rules.

The car starts at rest on the start line and drives `rules.laps` consecutive laps without stopping: crossing
the start line (progress 100) finishes a lap and the clock runs straight into the next. When the car leaves
the track (all wheels off), is reversed or immobilised, it is put back at rest on the centre line at the
point of its last measured progress, facing the driving direction (DeepRacer places it back near where it
went off); an off-track adds `rules.offtrack_penalty_s` to that lap's time. The reset beyond
`rules.max_resets` ends the evaluation, as does `max_time_s` of simulated time.

The policy is `policy(obs) -> action` for one car's observation, as a gymnasium env gives it. A scripted
driver that reads the simulator (PurePursuitDriver) is wrapped in `SimPolicy`, which is built once the
simulator exists (`pure_pursuit_policy()`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contracts.race import LapRecord, RaceRules, make_lap, rank_key, summarise
from sim.envs.setup import ActionSpaceSpec, EnvParts, build_parts, run_step
from sim.observations import ObservationSpec, batch_take
from sim.reward.sources import RewardSpec
from sim.rules import STATUS_LABELS, EpisodeStatus
from sim.simtrace import SimTraceWriter

if TYPE_CHECKING:
    from sim.measure import Measurements

log = logging.getLogger(__name__)

Policy = Callable[[Any], Any]
_CAR = np.array([0])
#: a per-run limit far beyond any evaluation: the sim's own time-up rule must never fire, we time the race
_NO_SIM_TIME_LIMIT_S = 1e9
_TRAJECTORY_KEYS = ("x", "y", "speed", "steering", "progress", "reward", "lap", "status", "time")
#: ends of a training episode that put the car back on the track during a race
_RESET_STATUSES = (EpisodeStatus.OFF_TRACK, EpisodeStatus.REVERSED, EpisodeStatus.IMMOBILIZED)


@dataclass(frozen=True)
class SimPolicy:
    """A policy made from the evaluation's parts once they exist (scripted drivers that read the sim)."""

    make: Callable[[EnvParts], Policy]


def pure_pursuit_policy(**driver_kwargs: Any) -> SimPolicy:
    """PurePursuitDriver as a `policy(obs) -> action` (the obs is ignored: it reads the sim's state),
    encoded into the evaluation's action space (nearest discrete action, or the normalised continuous one)."""
    from sim.drivers import PurePursuitDriver

    def make(parts: EnvParts) -> Policy:
        driver = PurePursuitDriver(parts.sim, **driver_kwargs)

        def policy(_obs: Any) -> Any:
            steer, speed = driver(parts.sim.standing(_CAR))
            return parts.actions.encode_nearest(steer, speed)[0]

        return policy

    return SimPolicy(make)


@dataclass
class EvaluationResult:
    """What an evaluation produced. Times in s, speeds m/s, steering deg, progress %.

    trajectory: per-step arrays: x, y (m, DeepRacer's point 0.14 m ahead of the chassis), speed (measured,
    m/s), steering (commanded, deg), progress (% of the current lap), reward, lap (index), status (labels).
    steering_smoothness_deg: mean |change of the steering command| per step. mean_progress: mean over the
    laps driven of each lap's progress (a completed lap counts 100). ended: why driving stopped
    (`laps_done`, `max_resets`, `time_window`, `max_time`). perturbation: the domain-randomisation values
    drawn for this evaluation (quantity -> value, units as `sim.randomization.RandomizationPreset`; empty for
    the `none` preset).
    """

    track: str
    rules: RaceRules
    laps: list[LapRecord]
    summary: dict[str, Any]
    trajectory: dict[str, np.ndarray]
    steering_smoothness_deg: float
    mean_progress: float
    ended: str
    rank_key: tuple[float, ...] | None
    track_xy: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    perturbation: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the race summary (laps, completed_laps, best_lap_s, mean_lap_s, completion_rate, ...)
        plus mean_progress, steering_smoothness_deg, ended, rank_key, track and rules."""
        return {
            **self.summary,
            "mean_progress": self.mean_progress,
            "steering_smoothness_deg": self.steering_smoothness_deg,
            "ended": self.ended,
            "rank_key": None if self.rank_key is None else list(self.rank_key),
            "track": self.track,
            "rules": self.rules.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def plot(self, path: str | Path) -> Path:
        """Write a PNG: the trajectory on the track coloured by speed, beside progress and reward per step."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tr = self.trajectory
        fig, (ax_map, ax_curve) = plt.subplots(1, 2, figsize=(13, 5.5))
        for name in ("inner", "outer"):
            border = self.track_xy[name]
            ax_map.plot(border[:, 0], border[:, 1], color="0.3", lw=1)
        centre = self.track_xy["centre"]
        ax_map.plot(centre[:, 0], centre[:, 1], color="0.7", lw=0.8, ls="--")
        points = ax_map.scatter(tr["x"], tr["y"], c=tr["speed"], cmap="viridis", s=4)
        fig.colorbar(points, ax=ax_map, label="speed (m/s)")
        off = tr["status"] == "off_track"
        if off.any():
            ax_map.scatter(tr["x"][off], tr["y"][off], marker="x", color="tab:red", s=40, label="off track")
            ax_map.legend(loc="upper right", fontsize=8)
        ax_map.set_aspect("equal")
        ax_map.set_title(
            f"{self.track}: {self.summary['completed_laps']} lap(s), {self.summary['offtrack']} off-track"
        )
        ax_map.set_xlabel("x (m)")
        ax_map.set_ylabel("y (m)")
        t = tr["time"]
        ax_curve.plot(t, tr["progress"], color="tab:blue", label="lap progress (%)")
        ax_curve.set_xlabel("time (s)")
        ax_curve.set_ylabel("lap progress (%)")
        ax_reward = ax_curve.twinx()
        ax_reward.plot(t, tr["reward"], color="tab:orange", lw=0.8, label="reward")
        ax_reward.set_ylabel("reward")
        best = self.summary["best_lap_s"]
        ax_curve.set_title("best lap: " + ("-" if best is None else f"{best:.2f} s"))
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


class _Race:
    """The counters of one evaluation: the current lap's clock, off-tracks and resets, and the laps done."""

    def __init__(self, rules: RaceRules, dt_s: float) -> None:
        self.rules = rules
        self.dt_s = dt_s
        self.laps: list[LapRecord] = []
        self.lap_steps = 0  # counted, not summed: lap times stay exact multiples of the control period
        self.offtrack = 0
        self.resets = 0
        self.total_resets = 0

    def finish_lap(self, *, completed: bool, progress: float) -> None:
        lap = make_lap(
            self.lap_time_s, self.offtrack, self.resets, self.rules, completed=completed, progress=progress
        )
        self.laps.append(lap)
        self.lap_steps, self.offtrack, self.resets = 0, 0, 0

    @property
    def lap_time_s(self) -> float:
        return round(self.lap_steps * self.dt_s, 9)

    def finish_unfinished(self, rows: dict[str, list[Any]]) -> None:
        """Record the lap driving stopped in (if it had started) as not completed."""
        if self.lap_steps:
            self.finish_lap(completed=False, progress=float(rows["progress"][-1]))

    def over_reset_limit(self) -> bool:
        limit = self.rules.max_resets
        if limit is None:
            return False
        return (self.resets if self.rules.max_resets_scope == "lap" else self.total_resets) > limit

    def elapsed_s(self) -> float:
        """Race clock with penalties: laps done plus the current lap so far."""
        penalty = self.offtrack * self.rules.offtrack_penalty_s
        return sum(lap.lap_time_s for lap in self.laps) + self.lap_time_s + penalty


class _EvaluationTrace:
    """`evaluation-simtrace/0-iteration.csv` as DeepRacer's evaluation writes it, so its log-analysis tools
    read the laps pitlane counts: a `prepare` row, then the laps as episodes 0, 1, ... with steps and clock
    running on; a lap that is not the last ends `in_progress` at progress 100, the race's last row is `done`.
    An off-track row carries the penalty as `pause_duration`, and the clock (`tstamp`) runs on through it as
    DeepRacer's does while the car is held, so a lap's time in the file is its time with penalties."""

    def __init__(self, out_dir: str | Path, penalty_s: float, dt_s: float) -> None:
        self.writer = SimTraceWriter(Path(out_dir) / "evaluation-simtrace" / "0-iteration.csv")
        self.penalty_s = penalty_s
        self.dt_s = dt_s
        self.steps = 1  # the prepare step
        self.held_s = 0.0

    def prepare(self, params: Measurements, action: np.ndarray) -> None:
        self.writer.write_prepare(params, action, episode=0, tstamp_s=0.0)

    def step(
        self,
        params: Measurements,
        status: EpisodeStatus,
        action: np.ndarray,
        rewards: np.ndarray,
        *,
        lap: int,
        final: bool,
    ) -> None:
        self.steps += 1
        pause_s = self.penalty_s if status is EpisodeStatus.OFF_TRACK else 0.0
        lap_goes_on = status is EpisodeStatus.LAP_COMPLETE and not final
        label = EpisodeStatus.IN_PROGRESS.label if lap_goes_on else status.label
        self.writer.write(
            params,
            np.array([status], dtype=np.int8),
            action,
            rewards,
            episode=lap,
            done=np.array([final]),
            pause_duration_s=pause_s,
            steps=self.steps,
            tstamp_s=(self.steps - 1) * self.dt_s + self.held_s,
            labels=(label,),
        )
        self.held_s += pause_s

    def close(self) -> None:
        self.writer.close()


def _place_back(parts: EnvParts, progress: float) -> None:
    """After an off-track (or reversed, immobilised) car: back on the centre line where it left."""
    parts.sim.place_back(0, progress)


def _start_next_lap(parts: EnvParts, projection_m: float) -> None:
    """The car crossed the start line and drives on into the next lap."""
    parts.sim.continue_lap(0, projection_m)


def evaluate(
    policy: Policy | SimPolicy,
    *,
    track: Any = "reinvent_base",
    car: Any = "deepracer",
    laps: int | None = None,
    rules: RaceRules | None = None,
    observation: ObservationSpec = "state",
    action_space: ActionSpaceSpec = None,
    reward: RewardSpec = "centerline",
    reverse: bool = False,
    seed: int = 0,
    max_time_s: float | None = None,
    out_dir: str | Path | None = None,
    randomization: str = "none",
) -> EvaluationResult:
    """Drive `policy` for a time trial on one car and judge it by `rules` (default RaceRules(): 3 laps, 2 s
    off-track penalty, unlimited resets, best lap). `laps` overrides `rules.laps`.

    max_time_s: simulated seconds after which the evaluation stops (default 180 s per lap, or the window of
    `most_laps_in` plus 180 s). out_dir: write `evaluation-simtrace/0-iteration.csv` there. randomization: a
    domain-randomisation preset (`sim.randomization`), its draws fixed by `seed`.
    """
    rules = rules or RaceRules()
    if laps is not None and laps != rules.laps:
        rules = RaceRules(**{**rules.to_dict(), "laps": laps})
    window = rules.time_window_s if rules.ranking == "most_laps_in" else None
    if max_time_s is None:
        max_time_s = (window + 180.0) if window else 180.0 * rules.laps
    parts = build_parts(
        1,
        track=track,
        car=car,
        observation=observation,
        action_space=action_space,
        reward=reward,
        start="start_line",
        reverse=reverse,
        time_limit_s=_NO_SIM_TIME_LIMIT_S,
        randomization=randomization,
    )
    if isinstance(policy, SimPolicy):
        policy = policy.make(parts)
    sim = parts.sim
    sim.seed(0, np.random.default_rng(seed))
    sim.reset(_CAR)
    perturbation = _drawn(parts)
    race = _Race(rules, sim.options.dt_s)
    trace = _EvaluationTrace(out_dir, rules.offtrack_penalty_s, sim.options.dt_s) if out_dir else None
    try:
        rows, ended = _drive(parts, policy, race, trace, window, max_time_s)
    finally:
        if trace is not None:
            trace.close()
    result = _result(parts, car, rules, race, rows, ended)
    result.perturbation = perturbation
    return result


def _drawn(parts: EnvParts) -> dict[str, float]:
    """The randomisation values the car's episode drew at its reset (empty when nothing is drawn)."""
    rnd = parts.sim.randomization
    if rnd.neutral:
        return {}
    return {q: float(getattr(rnd, q)[0]) for q in rnd.preset.quantities}


def _drive(
    parts: EnvParts,
    policy: Policy,
    race: _Race,
    trace: _EvaluationTrace | None,
    window_s: float | None,
    max_time_s: float,
) -> tuple[dict[str, list[Any]], str]:
    """The race loop: step, count resets and laps, put the car back, until the race ends.

    Returns the per-step rows and why it ended."""
    sim, rules = parts.sim, race.rules
    obs = batch_take(parts.observe(sim.standing(_CAR), slice(0, 1)), 0)
    rows: dict[str, list[Any]] = {k: [] for k in _TRAJECTORY_KEYS}
    dt = sim.options.dt_s
    steps = 0
    while steps * dt < max_time_s - 1e-9:
        action = np.asarray(policy(obs))
        if trace is not None and steps == 0:
            trace.prepare(sim.standing(_CAR), action[None, ...])
        next_obs, rewards, outcome = run_step(parts, action[None, ...])
        obs = batch_take(next_obs, 0)
        params, status = outcome.params, EpisodeStatus(int(outcome.status[0]))
        steps += 1
        race.lap_steps += 1
        progress = float(params.progress[0])
        is_reset = status in _RESET_STATUSES
        if is_reset:
            race.resets += 1
            race.total_resets += 1
            race.offtrack += status is EpisodeStatus.OFF_TRACK
        if trace is not None:
            final = (
                status is EpisodeStatus.LAP_COMPLETE and window_s is None and len(race.laps) + 1 >= rules.laps
            ) or (is_reset and race.over_reset_limit())
            trace.step(params, status, action[None, ...], rewards, lap=len(race.laps), final=final)
        for key, value in zip(
            _TRAJECTORY_KEYS,
            (
                params.x[0],
                params.y[0],
                sim.state.speed_mps[0],
                params.steering_angle[0],
                progress,
                rewards[0],
                len(race.laps),
                STATUS_LABELS[status],
                steps * dt,
            ),
            strict=True,
        ):
            rows[key].append(value)
        if status is EpisodeStatus.LAP_COMPLETE:
            race.finish_lap(completed=True, progress=100.0)
            if window_s is None and len(race.laps) >= rules.laps:
                return rows, "laps_done"
            _start_next_lap(parts, float(params.projection_distance[0]))
        elif is_reset:
            if race.over_reset_limit():
                race.finish_lap(completed=False, progress=progress)
                return rows, "max_resets"
            log.debug("reset after %s at %.1f %% of lap %d", status.label, progress, len(race.laps) + 1)
            _place_back(parts, progress)
            obs = batch_take(parts.observe(sim.standing(_CAR), slice(0, 1)), 0)
        if window_s is not None and race.elapsed_s() >= window_s:
            race.finish_unfinished(rows)
            return rows, "time_window"
    race.finish_unfinished(rows)
    return rows, "max_time"


def _versus_limit(parts: EnvParts, car: Any, best_lap_s: float | None) -> dict[str, float | None]:
    """The physical limit of this car on this track (`sim.raceline`: the fastest lap the car model can do) and
    how close the best lap came; None for a car given as an object rather than a name or file."""
    if not isinstance(car, str | Path):
        return {"limit_lap_s": None, "best_over_limit": None}
    from sim.raceline import race_line  # a QP per (track, car): only when an evaluation reports

    track = parts.sim.backward if parts.sim.is_reversed[0] else parts.sim.forward
    limit_s = race_line(track, str(car)).lap_time_s
    return {"limit_lap_s": limit_s, "best_over_limit": None if best_lap_s is None else best_lap_s / limit_s}


def _result(
    parts: EnvParts, car: Any, rules: RaceRules, race: _Race, rows: dict[str, list[Any]], ended: str
) -> EvaluationResult:
    trajectory = {k: np.asarray(v) for k, v in rows.items()}
    steering = trajectory["steering"]
    smoothness = float(np.mean(np.abs(np.diff(steering)))) if len(steering) > 1 else 0.0
    mean_progress = float(np.mean([lap.progress for lap in race.laps])) if race.laps else 0.0
    track = parts.sim.forward
    planned = None if rules.ranking == "most_laps_in" else rules.laps
    summary = summarise(race.laps, laps_planned=planned)
    summary.update(_versus_limit(parts, car, summary["best_lap_s"]))
    log.info(
        "evaluation on %s: %d/%s laps, best %s s, %d off-track, ended: %s",
        track.name,
        summary["completed_laps"],
        planned or "-",
        summary["best_lap_s"],
        summary["offtrack"],
        ended,
    )
    return EvaluationResult(
        track=track.name,
        rules=rules,
        laps=race.laps,
        summary=summary,
        trajectory=trajectory,
        steering_smoothness_deg=smoothness,
        mean_progress=mean_progress,
        ended=ended,
        rank_key=rank_key(race.laps, rules),
        track_xy={"centre": track.waypoints, "inner": track.inner, "outer": track.outer},
    )
