"""`pitlane drive --car F.toml --model M.onnx [--hal sim] [--laps N] [--league URL]`: the car runtime.

Everything is imported inside the command (a car has `pitlane[device]` only; the `sim` backend needs
`pitlane[sim]`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from contracts.vocabulary import HAL_BACKENDS
from pitlane.commands.common import SingleCommandGroup, fail, require

if TYPE_CHECKING:
    from contracts.car_file import CarFile
    from contracts.hal import Hal
    from device.drive import DriveSession, LeagueSetup, ThrottleCapEffect
    from device.estop import KeyReader
    from device.laps import ManualLapTimer
    from device.policy import OnnxPolicy

app = typer.Typer(
    help="Drive a real or simulated car from an exported ONNX model; report laps to a league over MQTT.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def drive_command(
    car: Annotated[Path, typer.Option("--car", help="The car file (firmware_configs/<car>.toml).")],
    model: Annotated[Path, typer.Option("--model", help="The exported model.onnx (model.json beside it).")],
    hal: Annotated[
        str | None,
        typer.Option(
            "--hal",
            help=f"Backend: {', '.join(HAL_BACKENDS)} (default: the car file's hardware.backend).",
        ),
    ] = None,
    laps: Annotated[int | None, typer.Option("--laps", min=1, help="Stop after this many laps.")] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Stop after this many control steps.")
    ] = None,
    league: Annotated[
        str | None,
        typer.Option("--league", help="Broker URL mqtt://host[:port] (default: league.broker_url)."),
    ] = None,
    league_id: Annotated[
        str | None, typer.Option("--league-id", help="League id (default: league.league).")
    ] = None,
    car_id: Annotated[str | None, typer.Option("--car-id", help="Car id (default: league.car_id).")] = None,
    credentials: Annotated[
        Path | None,
        typer.Option("--credentials", help="Credentials file (mqtt_username, mqtt_password, hmac_secret)."),
    ] = None,
    outbox: Annotated[Path | None, typer.Option("--outbox", help="The SQLite lap outbox file.")] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime/--fast", help="sim: drive in real time, or as fast as the CPU allows.")
    ] = True,
    track: Annotated[
        str | None,
        typer.Option(
            "--track", help="sim: the track name or route .npy (default: the track the model was trained on)."
        ),
    ] = None,
    manual_laps: Annotated[
        bool, typer.Option("--manual-laps", help="Also count laps from the `l` key (a marshal at the line).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary on stdout at the end.")
    ] = False,
) -> None:
    """Drive until --laps laps or --steps steps (or Ctrl-C). Keys (on a terminal): space = e-stop, r = re-arm,
    l = manual lap. The car always ends at neutral throttle and centred steering."""
    from contracts.errors import CarFileError
    from device.config import load_runtime_config
    from device.drive import drive_summary, league_setup, robustness_note, throttle_cap_effect
    from device.errors import DeviceError
    from device.policy import OnnxPolicy

    console = Console(stderr=as_json)
    try:
        config = load_runtime_config(car)
        policy = OnnxPolicy(model, config.car)
        cap = throttle_cap_effect(config, policy.card, card_source=str(policy.card_path))
        setup = league_setup(
            config,
            broker_url=league,
            league_id=league_id,
            car_id=car_id,
            credentials_file=credentials,
            outbox_path=outbox,
        )
        backend, laps, steps, parts, track_info = _open_backend(
            config, policy, hal, track, laps, steps, realtime
        )
    except (DeviceError, CarFileError) as exc:
        fail(exc)
    if track_info is not None:
        console.print(escape(_track_line(track_info)), highlight=False, soft_wrap=True)
    console.print(escape(_cap_line(cap, backend)), highlight=False, soft_wrap=True)
    if (note := robustness_note(policy.card, backend)) is not None:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(note)}", highlight=False, soft_wrap=True)

    session, keys = _session(console, config, policy, parts, setup, manual_laps)
    where = f", reporting to {setup.league.broker_url} as {setup.league.car_id}" if setup else ""
    console.print(
        f"driving {policy.path.name} on {backend} at {config.hardware.control_rate_hz:g} Hz{where}",
        highlight=False,
    )
    try:
        result = session.run(max_laps=laps, max_steps=steps)
    except DeviceError as exc:
        fail(f"stopped (car at neutral): {exc}")
    finally:
        if keys is not None:
            keys.close()
    summary = drive_summary(result, backend, track_info, cap, max_laps=laps)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(console, summary, car, cap)


def _open_backend(
    config: CarFile,
    policy: OnnxPolicy,
    hal: str | None,
    track: str | None,
    laps: int | None,
    steps: int | None,
    realtime: bool,
) -> tuple[str, int | None, int | None, Hal, dict[str, Any] | None]:
    """The backend chosen, the session's (laps, steps) limits, the backend's parts and (sim) the track
    driven. A simulator error names the model card when the card chose the track."""
    from device.drive import choose_backend, drive_limits, open_hal, sim_track

    backend = choose_backend(config, hal, track)
    laps, steps = drive_limits(
        backend, realtime=realtime, laps=laps, steps=steps, control_rate_hz=config.hardware.control_rate_hz
    )
    shape, dtype, kind = tuple(policy.input_shape), str(policy.input_dtype), policy.card.observation.kind
    if backend != "sim":
        return backend, laps, steps, *open_hal(backend, config, kind, shape, dtype, realtime=realtime)
    require("sim", "gymnasium", "scipy")
    from sim.errors import SimError
    from sim.hal_backend import open_sim_parts

    choice = sim_track(policy.card, track)
    try:
        parts, info = open_hal(
            backend,
            config,
            kind,
            shape,
            dtype,
            realtime=realtime,
            choice=choice,
            open_sim_parts=open_sim_parts,
        )
    except SimError as exc:
        if choice.source == "model card":
            where = f"`tracks` in {policy.card_path}"
            fail(f"{exc} (the track the model card names, {where}; --track NAME drives another)")
        fail(exc)
    return backend, laps, steps, parts, info


def _session(
    console: Console,
    config: CarFile,
    policy: OnnxPolicy,
    parts: Hal,
    setup: LeagueSetup | None,
    manual_laps: bool,
) -> tuple[DriveSession, KeyReader | None]:
    """The drive session, printing each lap and the safety latch's changes; on a terminal, the key reader
    (started: e-stop, re-arm and, with `manual_laps`, the lap key)."""
    from device.drive import DriveSession
    from device.laps import ManualLapTimer

    extra = [ManualLapTimer(parts.clock)] if manual_laps else []
    session = DriveSession(
        config,
        policy,
        parts,
        tuple(policy.input_shape),
        policy.input_dtype,
        league=setup,
        model_sha256=policy.sha256,
        extra_lap_timers=extra,
        on_lap=lambda r: console.print(
            f"lap {r.lap}: [bold]{r.lap_time_ms / 1000:.3f} s[/bold] ({r.source}, off-track {r.offtrack_count})",
            highlight=False,
        ),
    )
    return session, _watch_keys(console, session, config, extra)


def _watch_keys(
    console: Console, session: DriveSession, config: CarFile, extra: list[ManualLapTimer]
) -> KeyReader | None:
    """Say when the safety latch trips and re-arms; on a terminal, read the e-stop, re-arm and lap keys."""
    from device.estop import KeyReader

    rearm_key = config.safety.rearm_key
    session.latch.on_trip(
        lambda reason: console.print(
            f"[bold red]STOPPED[/bold red]: {reason} (press `{rearm_key}` to re-arm)"
        )
    )
    session.latch.on_rearm(lambda: console.print("[green]re-armed[/green]"))
    if not sys.stdin.isatty():
        return None
    keys = KeyReader(
        session.latch,
        estop_key=config.safety.estop_key,
        rearm_key=config.safety.rearm_key,
        on_key=(lambda k: extra[0].press() if k == "l" else None) if extra else None,
    )
    keys.start()
    return keys


def _track_line(info: dict[str, Any]) -> str:
    direction = ", reversed" if info["reverse"] else ""
    return f"track: {info['name']} ({info['length_m']:.1f} m{direction}), {info['why']}"


def _cap_line(cap: ThrottleCapEffect | None, backend: str) -> str:
    """What the throttle cap does to this policy, said before the laps."""
    if cap is None:
        return "throttle cap: none (no [safety] throttle_cap_us in the car file)"
    capped = f"{cap.capped_top_speed_mps:.2f} m/s"
    head = f"throttle cap: [safety] throttle_cap_us = {cap.cap_us} µs holds the car to {capped}"
    if not cap.limits:
        return f"{head}; the policy's speeds (up to {cap.policy_top_speed_mps:.2f} m/s) never pass it: it slows nothing"
    actions = (
        f" and slows {cap.actions_over_cap} of {cap.n_actions} actions to {capped}"
        if cap.actions_over_cap is not None
        else ""
    )
    slower = "; laps will be slower than `pitlane evaluate`'s, which has no cap" if backend == "sim" else ""
    return (
        f"{head}; the policy's top speed is {cap.policy_top_speed_mps:.2f} m/s (its speeds span "
        f"{cap.policy_min_speed_mps:.2f}-{cap.policy_top_speed_mps:.2f} m/s): the cap cuts "
        f"{100 * cap.cut_fraction:.0f} % of that range{actions}{slower}"
    )


def _clipped_line(clipped: int, steps: int, cap: ThrottleCapEffect | None, car: Path, backend: str) -> str:
    """What the clipped-commands count means and which key changes it."""
    if cap is None or clipped == 0:
        return f"{clipped} throttle commands clipped to the cap"
    why = ": that is why these laps are slower than `pitlane evaluate`'s" if backend == "sim" else ""
    where = "in a copy of the car file for the simulator" if backend == "sim" else "only where that is safe"
    return (
        f"{clipped} of {steps} throttle commands ({100 * clipped / max(steps, 1):.0f} %) asked for more than "
        f"the throttle cap ({cap.capped_top_speed_mps:.2f} m/s at {cap.cap_us} µs) and were sent at the cap"
        f"{why}. The cap is `throttle_cap_us` in [safety] of {car}: on a real car it is a safety limit (the "
        f"fastest the car may go where it drives). {cap.top_speed_us} µs would let the policy's "
        f"{cap.policy_top_speed_mps:.2f} m/s through: raise it {where}."
    )


def _print_summary(
    console: Console, summary: dict[str, Any], car: Path, cap: ThrottleCapEffect | None
) -> None:
    from rich.table import Table

    laps = Table(title=f"laps (run {summary['run_id'][:8]})")
    for col in ("lap", "time s", "source", "off-track"):
        laps.add_column(col, justify="right")
    for lap in summary["laps"]:
        laps.add_row(str(lap["lap"]), f"{lap['lap_time_s']:.3f}", lap["source"], str(lap["offtrack_count"]))
    console.print(laps)
    loop = summary["loop"]
    stats = Table(title="control loop")
    for col in ("stage", "mean ms", "p99 ms", "max ms"):
        stats.add_column(col, justify="right")
    for stage in ("capture", "policy", "actuate", "latency"):
        stats.add_row(
            "glass-to-actuation" if stage == "latency" else stage,
            f"{loop[f'{stage}_ms_mean']:.3f}",
            f"{loop[f'{stage}_ms_p99']:.3f}",
            f"{loop[f'{stage}_ms_max']:.3f}",
        )
    console.print(stats)
    console.print(
        f"{loop['steps']:.0f} steps at {loop['rate_hz']:.1f} Hz (target {loop['target_hz']:.1f} Hz; "
        f"{loop['wall_rate_hz']:.1f} Hz of wall-clock time), {loop['overruns']:.0f} overruns",
        highlight=False,
    )
    clipped = _clipped_line(summary["clipped_commands"], int(loop["steps"]), cap, car, summary["backend"])
    shown = escape(clipped)
    # soft_wrap: a long car-file path is never broken inside (the terminal wraps the line instead)
    console.print(
        f"[yellow]{shown}[/yellow]" if summary["clipped_commands"] else shown, highlight=False, soft_wrap=True
    )
    if summary["stop_reason"]:
        console.print(f"[yellow]stopped: {summary['stop_reason']}[/yellow]")
    if summary["unsent_laps"]:
        console.print(
            f"[yellow]{summary['unsent_laps']} lap(s) not yet acknowledged: kept in the outbox[/yellow]"
        )
