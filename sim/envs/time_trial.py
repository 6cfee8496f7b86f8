"""`pitlane/TimeTrial-v0`: one car, one track, DeepRacer's time-trial rules."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from contracts.car_file import CarConfig
from sim.core import BatchedSim
from sim.envs.setup import build_parts, run_step
from sim.errors import EnvConfigError
from sim.fastmath import SCALARS
from sim.observations import Observer
from sim.reward.params import params_dicts
from sim.rules import STATUS_LABELS, EpisodeStatus


class TimeTrialEnv(gym.Env):
    """Drive a model car around a track as fast as the reward teaches it — DeepRacer's time trial.

    ## Description
    A car model (a `firmware_configs/*.toml`, default `deepracer`) drives a closed track (a built-in or imported
    name, or a DeepRacer route `.npy`; default `reinvent_base`, the re:Invent 2018 track). The physics is a
    kinematic bicycle with steering-rate, acceleration and grip limits and actuation latency, stepped at
    `control_rate_hz` (15 Hz, as DeepRacer). The reward is a DeepRacer `reward_function(params)` file, a
    built-in batched reward, or a callable; it receives DeepRacer's exact params.

    ## Action space
    DeepRacer's: a discrete list of {steering_angle (deg), speed (m/s)} — `Discrete(n)` — or a continuous
    range — `Box(-1, 1, (2,))`, normalised steering and speed mapped linearly onto [low, high]. Give it as
    `action_space=` a DeepRacer `model_metadata.json` path, its `action_space` JSON (list or dict), or a
    `sim.action_space` object. Default: five steering angles x two speeds.

    ## Observation space
    `observation="state"` (default): `Box(11,)` float32 — speed (m/s), wheel angle (rad), sin/cos of the
    heading error, lateral offset (half track widths), and centre-line curvature (1/m) 0.25 to 3 m ahead.
    `"camera"`: the car's camera, `Box(0, 255, (H, W), uint8)` grayscale (160x120 for `deepracer`),
    rendered from the car config's `[camera]`; `"stereo_camera"` `(H, W, 2)`; `"lidar"`,
    `"sector_lidar"`, `"discretized_sector_lidar"` (DeepRacer's) and `"scan"` (F1TENTH-style); several kinds
    joined with "+" give a `Dict` (keys `state`, `camera`, `lidar`). See `sim.observations`.

    ## Rewards
    Whatever the reward function returns; None, NaN, inf, |r| > 1e5 or an exception stop with an error naming
    the reward file, line and params.

    ## Starting state
    At rest on the centre line, facing the next waypoint. `start="round_robin"` (default): each episode
    starts 5 % of a lap further on than the last, from a slot the seed picks; `start="start_line"`: always at
    the start line. `reverse=True` drives the other way; `alternate_direction=True` flips every episode.

    ## Episode end
    Terminated: lap complete (progress 100), off track (all four wheels off the road), reversed (progress fell
    15 steps running), immobilised (moved < 0.3 mm on 15 steps running). Truncated: `time_limit_s`
    (180 s) of simulated time. `info["episode_status"]` names the end as DeepRacer's logs do.

    ## Domain randomisation
    `randomization="none"` (default), `"light"`, `"strong"`, or the held-out `"eval-shift"`: per-episode
    lighting, noise, blur, tape width, ground texture, camera pitch/height, lidar noise, steering trim,
    latency and grip, drawn per car from its seed (see `sim.randomization`).

    ## Rendering
    `render_mode="rgb_array"` (`render()` returns an (H, W, 3) uint8 top-down view with trail, HUD and the
    sensor inset) or `"human"` (a pygame window); pygame is imported only then.

    ## Info
    `episode_status`, `progress` (%), `lap_time_s` (when the lap completes), `params` (the DeepRacer params
    dict of this step, only with `info_params=True`, since building it costs time).

    ## Arguments
    `gymnasium.make("pitlane/TimeTrial-v0", track="reinvent_base", car="deepracer", observation="state",
    action_space=None, reward="centerline", control_rate_hz=15.0, time_limit_s=180.0, start="round_robin",
    round_robin_advance=0.05, reverse=False, alternate_direction=False, randomization="none",
    render_mode=None, info_params=False)`.
    For many cars in one process, `gymnasium.make_vec("pitlane/TimeTrial-v0", num_envs=N,
    vectorization_mode="vector_entry_point")` gives the batched `TimeTrialVectorEnv` with identical cars.

    ## Version history
    v0: first release.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, info_params: bool = False, **kwargs: Any) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise EnvConfigError(
                f"render_mode: expected None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self._parts = build_parts(1, **kwargs)
        self._info_params = info_params
        self.action_space = self._parts.actions.gym_space()
        self.observation_space = self._parts.observe.space
        self.metadata = {**self.metadata, "render_fps": round(self._parts.sim.options.control_rate_hz)}
        self._seeded = False
        self.render_mode = render_mode
        self._viewer = None
        if render_mode is not None:
            self._viewer = self._render_session(render_mode)

    def _render_session(self, mode: str) -> Any:
        from sim.viewer import RenderSession, observation_view  # pygame only when rendering

        inset_kind, layout = observation_view(self._parts.observe)
        if inset_kind == "state":  # privileged features: `pitlane view --model` shows them, render() does not
            inset_kind = None
        return RenderSession(self, mode=mode, car=self._parts.car, lidar=layout, inset_kind=inset_kind)

    @property
    def car(self) -> CarConfig:
        """The car model this environment simulates."""
        return self._parts.car

    @property
    def observer(self) -> Observer:
        """What builds this env's observations (its kinds and sensors), for tools (viewer)."""
        return self._parts.observe

    @property
    def sim(self) -> BatchedSim:
        """The simulator behind this env, for tools (viewer, evaluation)."""
        return self._parts.sim

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self._parts.sim.seed(0, self.np_random)
            self._seeded = True
        self._parts.sim.reset(np.array([0]))
        params = self._parts.sim.standing(0, SCALARS)
        obs = self._parts.observe.one(params)
        info = self._info(params, EpisodeStatus.IN_PROGRESS)
        if self._viewer is not None:
            self._viewer.reset(obs, info)
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        # one car: the simulator's step on Python floats (`sim.fastmath`), 5-7x faster than arrays of one
        obs, reward, outcome = run_step(self._parts, action, SCALARS)
        status = EpisodeStatus(int(outcome.status))
        terminated, truncated = bool(outcome.terminated), bool(outcome.truncated)
        result = (obs, reward, terminated, truncated, self._info(outcome.params, status))
        if self._viewer is not None:
            self._viewer.update(*result)
            if self.render_mode == "human":
                self._viewer.show()
        return result

    def render(self) -> np.ndarray | None:
        """The current frame as an (H, W, 3) uint8 array (`rgb_array`), or draw the window (`human`)."""
        return None if self._viewer is None else self._viewer.render()

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    def _info(self, params: Any, status: EpisodeStatus) -> dict[str, Any]:
        info: dict[str, Any] = {
            "episode_status": STATUS_LABELS[status],
            "progress": float(params.progress),
        }
        if status is EpisodeStatus.LAP_COMPLETE:
            info["lap_time_s"] = self._parts.sim.episode_time_s.item(0)
        if self._info_params:
            info["params"] = params_dicts(params)[0]
        return info
