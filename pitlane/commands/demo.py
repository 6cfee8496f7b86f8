"""`pitlane demo`: the whole platform on one laptop, start to finish, in a few minutes.

    train a state policy (reinvent_base)  ->  export it to int8 ONNX  ->  a league server with its own
    MQTT broker  ->  the car runtime drives the exported model on the simulated car (sim HAL) and reports
    signed laps  ->  the live leaderboard shows them

Each step is the same `pitlane` command a user would type (run as a child process, so the demo shows
nothing the commands do not do), with its output in DIR/logs/. A step whose result is already in DIR
(the run, the model) is reused, so a second `pitlane demo` starts driving within seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pitlane.commands.common import SingleCommandGroup, fail, port_in_use, require

app = typer.Typer(
    help="Train -> export -> league server -> simulated car racing -> live leaderboard, on this machine.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)

LEAGUE = "demo"
TRACK = "reinvent_base"  # the policy trains, the race runs and the simulated car drives here
CAR_ID = "demo-car"
#: control steps (15 Hz) the car may take per lap before the drive is cut short: 60 simulated s
MAX_LAP_STEPS = 900


@app.callback()
def demo_command(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its run, model, database, logs.")
    ] = Path("pitlane-demo"),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="HTTP port of the league server.")
    ] = 8000,
    steps: Annotated[
        int, typer.Option("--steps", min=1_000, help="Training car-steps (all cars).")
    ] = 300_000,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps the car drives.")] = 3,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain", help="Train and export anew (a rerun otherwise reuses DIR/run and DIR/model)."
        ),
    ] = False,
    keep_serving: Annotated[
        bool, typer.Option("--serve/--exit", help="Keep the server up afterwards (Ctrl-C stops it), or exit.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final leaderboard as JSON on stdout.")
    ] = False,
) -> None:
    """Run the demo in --dir (created): open the printed leaderboard link while the car drives."""
    require("train", "torch", "stable_baselines3", "onnx", "onnxruntime", "fastapi", "paho")
    console = Console(stderr=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    if port_in_use("127.0.0.1", port):
        fail(f"--port {port} is in use; pass another, e.g. --port {_free_port()}")
    model = _trained_model(console, folder, steps, retrain)
    _race(console, folder, model, port=port, laps=laps, keep_serving=keep_serving, as_json=as_json)


def _trained_model(console: Console, folder: Path, steps: int, retrain: bool) -> Path:
    """DIR/model/model.int8.onnx: trained and exported now, or reused from an earlier demo in DIR."""
    run, model = folder / "run", folder / "model"
    if retrain:
        for old in (run, model):
            shutil.rmtree(old, ignore_errors=True)
    if (run / "best.zip").is_file():
        console.print(
            f"reusing the policy in {run} ({_trained_steps(run)}; --retrain trains one of --steps)",
            soft_wrap=True,
        )
    else:
        _step(console, folder, "train", f"training a state policy ({steps:,} car-steps)",
              ["train", "--track", TRACK, "--steps", str(steps), "--out", str(run), "-q"])  # fmt: skip
    if (model / "model.int8.onnx").is_file():
        console.print(f"reusing its ONNX export in {model}", soft_wrap=True)
    else:
        _step(console, folder, "export", "exporting to ONNX (fp32 + int8) with its parity report",
              ["export", str(run), "--out", str(model), "--int8"])  # fmt: skip
    return model / "model.int8.onnx"


def _race(
    console: Console, folder: Path, model: Path, *, port: int, laps: int, keep_serving: bool, as_json: bool
) -> None:
    """A league server in DIR, the sim car driving `model` for `laps` laps, then the leaderboard it shows
    (printed, and as JSON on stdout with `as_json`, before the server keeps serving)."""
    db = f"sqlite:///{(folder / 'league.db').resolve()}"
    broker_port = _free_port()
    _step(console, folder, "migrate", "creating the league database", ["league", "migrate", "--db", db])
    provision = ["league", "provision-demo", "--db", db, "--json", "--league", LEAGUE, "--car-id", CAR_ID,
                 "--track", TRACK,
                 "--base-url", f"http://127.0.0.1:{port}"]  # fmt: skip
    provisioned = json.loads(
        _step(console, folder, "provision", "creating a league, a race and a car", provision)
    )
    credentials = _write_credentials(folder / "car-credentials.json", provisioned)
    server = _start_server(folder, db, port, broker_port)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/api/health", server, folder)
        race = provisioned["race_id"]
        console.print(
            f"[bold]live leaderboard:[/bold] {base}/races/{race}  (big screen: {base}/races/{race}/bigscreen)"
        )
        _step(console, folder, "drive", f"the car drives {laps} laps (sim HAL) and reports them over MQTT",
              ["drive", "--car", str(_car_file()), "--model", str(model), "--hal", "sim",
               "--fast", "--laps", str(laps), "--steps", str(laps * MAX_LAP_STEPS), "--league", f"mqtt://127.0.0.1:{broker_port}",
               "--credentials", str(credentials), "--outbox", str(folder / "outbox.sqlite"), "--json"])  # fmt: skip
        board = _wait_laps(f"{base}/api/races/{race}/leaderboard", laps)
        _print_board(console, board)
        if as_json:
            typer.echo(json.dumps(board))
        if keep_serving:
            console.print(f"serving {base} — Ctrl-C to stop")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)


def _trained_steps(run: Path) -> str:
    """How long the run in `run` was trained, as a user reads it ("300,000 car-steps")."""
    try:
        steps = json.loads((run / "config.resolved.json").read_text(encoding="utf-8"))["total_steps"]
    except (OSError, ValueError, KeyError):
        return "car-steps unknown"
    return f"{steps:,} car-steps"


def _step(console: Console, folder: Path, name: str, what: str, args: list[str]) -> str:
    """Run `pitlane ARGS` as a child process (output kept in DIR/logs/NAME.log); its stdout, or fail."""
    from league_server.serve_process import PITLANE_CLI

    log = folder / "logs" / f"{name}.log"
    started = time.monotonic()
    with console.status(what):
        done = subprocess.run([*PITLANE_CLI, *args], capture_output=True, text=True, check=False)
    log.write_text(f"$ pitlane {' '.join(args)}\n{done.stdout}\n{done.stderr}", encoding="utf-8")
    if done.returncode != 0:
        fail(f"{name} failed (exit {done.returncode}); see {log}: {_last_line(done.stderr or done.stdout)}")
    console.print(f"[green]✓[/green] {what} ({time.monotonic() - started:.1f} s)")
    return done.stdout


def _start_server(folder: Path, db: str, port: int, broker_port: int) -> subprocess.Popen[bytes]:
    """`pitlane league serve` in the background (its embedded broker on `broker_port`), output in logs/."""
    from league_server.serve_process import PITLANE_CLI

    args = ["league", "serve", "--db", db, "--port", str(port), "--broker-port", str(broker_port),
            "--data-dir", str(folder / "league-data")]  # fmt: skip
    with (folder / "logs" / "server.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([*PITLANE_CLI, *args], stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(url: str, server: subprocess.Popen[bytes], folder: Path, timeout_s: float = 60.0) -> None:
    """Until the server answers and its MQTT ingest is subscribed (laps sent before would wait in the car's
    outbox, but the demo should show them at once)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"the league server exited (code {server.returncode}); see {folder / 'logs' / 'server.log'}")
        health = _get_json(url)
        if health is not None and health.get("ingest_connected"):
            return
        time.sleep(0.2)
    fail(
        f"the league server did not become ready within {timeout_s:.0f} s; see {folder / 'logs' / 'server.log'}"
    )


def _wait_laps(url: str, laps: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The leaderboard once the demo car has `laps` laps on it (or whatever it has after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    board: dict[str, Any] = {}
    while time.monotonic() < deadline:
        board = _get_json(url) or {}
        entry = next((e for e in board.get("entries", []) if e["car_id"] == CAR_ID), None)
        if entry is not None and entry["laps"] >= laps:
            break
        time.sleep(0.2)
    return board


def _print_board(console: Console, board: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{board.get('race_name', 'race')} — ranked by {board.get('ranking', '?')}")
    for column in ("pos", "car", "laps", "best lap s", "last lap s", "off-track"):
        table.add_column(column, justify="right")
    for e in board.get("entries", []):
        best = f"{e['best_lap_s']:.3f}" if e["best_lap_s"] is not None else "-"
        last = f"{e['last_lap_s']:.3f}" if e["last_lap_s"] is not None else "-"
        table.add_row(str(e["position"] or "-"), e["car_id"], str(e["laps"]), best, last, str(e["offtrack"]))
    console.print(table)


def _write_credentials(path: Path, provisioned: dict[str, Any]) -> Path:
    """The provisioning output saved as it is: it is the credentials file the car reads."""
    path.write_text(json.dumps(provisioned, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _car_file() -> Path:
    import firmware_configs

    return Path(firmware_configs.__file__).parent / "deepracer.toml"


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _free_port() -> int:
    from league_server.broker.embedded import free_port

    return free_port("127.0.0.1")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
