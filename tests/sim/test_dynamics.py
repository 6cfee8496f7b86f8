"""The physics: actuator limits, exact arcs, the grip limit, latency."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_configs import load_car
from sim import dynamics

DT_S = 1.0 / 15.0


@pytest.fixture(scope="module")
def deepracer():
    return load_car("deepracer").vehicle_params()


def run(params, steer_rad: float, speed_mps: float, steps: int, n: int = 1) -> dynamics.VehicleState:
    state = dynamics.VehicleState(n)
    for _ in range(steps):
        dynamics.advance(state, np.full(n, steer_rad), np.full(n, speed_mps), params, DT_S)
    return state


def test_speed_rises_at_the_acceleration_limit_then_holds(deepracer) -> None:
    state = dynamics.VehicleState(1)
    speeds = []
    for _ in range(40):
        dynamics.advance(state, np.zeros(1), np.full(1, 2.0), deepracer, DT_S)
        speeds.append(state.speed_mps[0])
    steps_to_top = int(np.ceil(2.0 / (deepracer.max_accel_mps2 * DT_S)))
    assert speeds[0] == pytest.approx(deepracer.max_accel_mps2 * DT_S)
    assert speeds[steps_to_top - 2] < 2.0
    assert speeds[-1] == pytest.approx(2.0)
    # straight ahead along +x, the distance is the integral of the speed
    assert state.y_m[0] == pytest.approx(0.0, abs=1e-12)
    assert state.x_m[0] == pytest.approx(
        sum(0.5 * (a + b) * DT_S for a, b in zip([0.0, *speeds[:-1]], speeds, strict=False))
    )


def test_braking_is_limited_too(deepracer) -> None:
    state = run(deepracer, 0.0, 2.0, 60)
    dynamics.advance(state, np.zeros(1), np.zeros(1), deepracer, DT_S)
    assert state.speed_mps[0] == pytest.approx(2.0 - deepracer.max_brake_mps2 * DT_S)


def test_commands_are_clipped_to_the_car_limits(deepracer) -> None:
    state = run(deepracer, 3.0, 99.0, 200)
    assert state.steer_rad[0] == pytest.approx(deepracer.max_steer_rad)
    assert state.speed_mps[0] == pytest.approx(deepracer.max_speed_mps)


def test_steering_turns_at_the_rate_limit(deepracer) -> None:
    state = dynamics.VehicleState(1)
    dynamics.advance(state, np.full(1, deepracer.max_steer_rad), np.zeros(1), deepracer, DT_S)
    assert state.steer_rad[0] == pytest.approx(
        min(deepracer.max_steer_rate_radps * DT_S, deepracer.max_steer_rad)
    )


def test_slow_constant_steering_drives_the_kinematic_circle(deepracer) -> None:
    # slow enough that the tyres hold: radius = wheelbase / tan(steer); the arc is integrated exactly
    steer = np.radians(20.0)
    radius = deepracer.wheelbase_m / np.tan(steer)
    state = run(deepracer, steer, 0.3, 30)  # speed and wheel angle settle within a few steps
    xs, ys = [], []
    for _ in range(60):
        dynamics.advance(state, np.full(1, steer), np.full(1, 0.3), deepracer, DT_S)
        xs.append(state.x_m[0])
        ys.append(state.y_m[0])
    xs, ys = np.array(xs), np.array(ys)
    # fit the circle through three far-apart points, check every point lies on it
    a, b, c = (xs[0], ys[0]), (xs[20], ys[20]), (xs[40], ys[40])
    d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
    ux = (
        (a[0] ** 2 + a[1] ** 2) * (b[1] - c[1])
        + (b[0] ** 2 + b[1] ** 2) * (c[1] - a[1])
        + (c[0] ** 2 + c[1] ** 2) * (a[1] - b[1])
    ) / d
    uy = (
        (a[0] ** 2 + a[1] ** 2) * (c[0] - b[0])
        + (b[0] ** 2 + b[1] ** 2) * (a[0] - c[0])
        + (c[0] ** 2 + c[1] ** 2) * (b[0] - a[0])
    ) / d
    radii = np.hypot(xs - ux, ys - uy)
    assert radii == pytest.approx(np.full_like(radii, radius), rel=1e-9)


def test_asking_more_than_the_tyres_give_runs_wide(deepracer) -> None:
    steer = np.radians(30.0)
    kinematic_radius = deepracer.wheelbase_m / np.tan(steer)
    speed = 3.0  # v^2 / r = 31 m/s^2, far above 0.8 g
    state = run(deepracer, steer, speed, 60)
    yaw_rate = speed / (speed**2 / deepracer.lateral_grip_mps2)
    before = (state.x_m[0], state.y_m[0], state.yaw_rad[0])
    dynamics.advance(state, np.full(1, steer), np.full(1, speed), deepracer, DT_S)
    turned = dynamics.wrap_angle(np.array([state.yaw_rad[0] - before[2]]))[0]
    assert turned == pytest.approx(yaw_rate * DT_S)
    driven_radius = speed / yaw_rate
    assert driven_radius > 4 * kinematic_radius
    assert speed**2 / driven_radius == pytest.approx(deepracer.lateral_grip_mps2)


def test_more_grip_turns_tighter(deepracer) -> None:
    grippy = dataclasses.replace(deepracer, lateral_grip_mps2=3 * deepracer.lateral_grip_mps2)
    slippy, sticky = dynamics.VehicleState(1), dynamics.VehicleState(1)
    turned = {"slippy": 0.0, "sticky": 0.0}
    for _ in range(20):
        for name, state, params in (("slippy", slippy, deepracer), ("sticky", sticky, grippy)):
            before = state.yaw_rad[0]
            dynamics.advance(state, np.full(1, np.radians(30)), np.full(1, 3.0), params, DT_S)
            turned[name] += dynamics.wrap_angle(np.array([state.yaw_rad[0] - before]))[0]
    assert turned["sticky"] > 1.5 * turned["slippy"] > 0


def test_heading_trigonometry_stays_consistent_over_a_long_drive(deepracer) -> None:
    state = run(deepracer, np.radians(17.0), 1.2, 2000)
    assert state.cos_yaw[0] == pytest.approx(np.cos(state.yaw_rad[0]), abs=1e-9)
    assert state.sin_yaw[0] == pytest.approx(np.sin(state.yaw_rad[0]), abs=1e-9)
    assert -np.pi < state.yaw_rad[0] <= np.pi


@settings(max_examples=200, deadline=None)
@given(st.floats(-3.0, 3.0))
def test_small_angle_trig_matches_numpy(h: float) -> None:
    cos_h, sin_h, ratio = dynamics.small_angle_trig(np.array([h]))
    assert cos_h[0] == pytest.approx(np.cos(h), abs=1e-11)
    assert sin_h[0] == pytest.approx(np.sin(h), abs=1e-11)
    assert ratio[0] == pytest.approx(np.sinc(h / np.pi), abs=1e-11)


@settings(max_examples=200, deadline=None)
@given(st.floats(-50.0, 50.0))
def test_wrap_angle_lands_in_half_open_interval(a: float) -> None:
    w = dynamics.wrap_angle(np.array([a]))[0]
    assert -np.pi < w <= np.pi + 1e-12
    assert np.cos(w) == pytest.approx(np.cos(a), abs=1e-9)
    assert np.sin(w) == pytest.approx(np.sin(a), abs=1e-9)


def test_latency_delays_commands_by_whole_steps() -> None:
    delay = dynamics.CommandDelay(2, latency_steps=2)
    outputs = [delay.push(np.full(2, float(k)), np.full(2, 10.0 + k)) for k in range(1, 5)]
    assert [o[0][0] for o in outputs] == [0.0, 0.0, 1.0, 2.0]
    assert [o[1][1] for o in outputs] == [0.0, 0.0, 11.0, 12.0]
    delay.clear(np.array([0]))
    steer, _ = delay.push(np.full(2, 9.0), np.full(2, 9.0))
    assert steer.tolist() == [0.0, 3.0]


def test_zero_latency_passes_commands_straight_through() -> None:
    delay = dynamics.CommandDelay(1, latency_steps=0)
    steer, speed = delay.push(np.array([0.3]), np.array([1.0]))
    assert steer[0] == 0.3 and speed[0] == 1.0


def test_batched_cars_are_independent(deepracer) -> None:
    state = dynamics.VehicleState(3)
    for _ in range(30):
        dynamics.advance(state, np.array([0.0, 0.2, -0.2]), np.array([1.0, 1.0, 2.0]), deepracer, DT_S)
    single = run(deepracer, 0.2, 1.0, 30)
    assert state.x_m[1] == single.x_m[0] and state.y_m[1] == single.y_m[0]
    assert state.y_m[0] == 0.0 and state.y_m[2] < 0.0 < state.y_m[1]
