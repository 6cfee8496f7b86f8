"""Observations the policy sees. This issue ships `state`; camera and lidar arrive with the sensors issue.

`state` (float32, shape (11,)) — privileged features a real car does not have, for fast training and as a
teacher for camera students:

| index | feature | unit |
|---|---|---|
| 0 | speed | m/s (measured, not commanded) |
| 1 | steering angle of the wheels | rad, + = left |
| 2, 3 | sin, cos of the heading error to the centre line's direction | — |
| 4 | lateral offset from the centre line | half track widths, + = left; beyond ±1 a border is crossed |
| 5..10 | centre-line curvature 0.25, 0.5, 1, 1.5, 2, 3 m ahead | 1/m, + = turning left |
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from sim.core import BatchedSim
from sim.reward.params import RewardParams
from sim.tracks.arc_table import ArcTable

LOOKAHEAD_M = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
OBSERVATION_KINDS = ("state",)


class StateObservation:
    """Builds the `state` observation of the cars in a `RewardParams` batch."""

    def __init__(self, sim: BatchedSim) -> None:
        self._sim = sim
        n_features = 5 + len(LOOKAHEAD_M)
        low = np.full(n_features, -50.0, dtype=np.float32)
        high = np.full(n_features, 50.0, dtype=np.float32)
        low[0], high[0] = 0.0, 50.0
        low[1], high[1] = -np.pi / 2, np.pi / 2
        low[2:4], high[2:4] = -1.0, 1.0
        low[4], high[4] = -20.0, 20.0
        self.space = spaces.Box(low, high, dtype=np.float32)
        track = sim.forward
        # curvature ahead of each arc length, for both driving directions (forward-direction arc length);
        # curvature is continuous in arc length, so there are no jumps to split
        self._ahead_fwd = ArcTable.sample(
            track.length_m, lambda s: track.curvature_at(s[:, None] + LOOKAHEAD_M), split_jumps=False
        )
        self._ahead_back = ArcTable.sample(
            track.length_m, lambda s: -track.curvature_at(s[:, None] - LOOKAHEAD_M), split_jumps=False
        )

    def __call__(self, params: RewardParams, idx: np.ndarray | slice) -> np.ndarray:
        """(n, 11) float32 observations of cars `idx` (the cars `params` describes)."""
        sim = self._sim
        sin_err, cos_err, lateral = sim.track_frame(params)
        s_fwd = np.where(
            params.is_reversed, sim.forward.length_m - params.projection_distance, params.projection_distance
        )
        kappa = self._ahead_fwd.at(s_fwd)
        if params.is_reversed.any():
            kappa = np.where(params.is_reversed[:, None], self._ahead_back.at(s_fwd), kappa)
        obs = np.empty((len(lateral), self.space.shape[0]), dtype=np.float32)
        obs[:, 0] = sim.state.speed_mps[idx]
        obs[:, 1] = sim.state.steer_rad[idx]
        obs[:, 2] = sin_err
        obs[:, 3] = cos_err
        obs[:, 4] = lateral
        obs[:, 5:] = kappa
        np.maximum(obs, self.space.low, out=obs)
        return np.minimum(obs, self.space.high, out=obs)
