"""`pitlane bench ...`: benchmarks measured on this machine (speed targets are checked here, not in tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pitlane.commands.common import fail, require
from pitlane.machine import machine as machine_info
from pitlane.machine import title_suffix

app = typer.Typer(
    help="Benchmarks: simulator, training, inference and league ingest, measured on this machine.",
    no_args_is_help=True,
)


@app.command("sim")
def sim_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    observation: Annotated[
        list[str] | None,
        typer.Option(
            "--observation", "-o", help="Only these observation kinds: state, camera, lidar (repeatable)."
        ),
    ] = None,
    reward: Annotated[
        list[str] | None,
        typer.Option(
            "--reward",
            help="Only these reward kinds: 'batched' (built-in centerline), 'python' (a DeepRacer file).",
        ),
    ] = None,
    n_envs: Annotated[
        list[int] | None,
        typer.Option(
            "--n-envs",
            "-n",
            help="Batch sizes (repeatable; default per row: 1, 64 and 1024, or 256 for camera).",
        ),
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Wall time per measurement, s.")] = 2.0,
) -> None:
    """Simulator throughput in car-steps per second (= frames or scans per second for sensor rows): one car
    through gymnasium.make, then the batched env with the state observation and a batched and a Python reward,
    then camera and lidar observations."""
    from bench import sim as sim_bench

    for given, allowed, hint in (
        (reward, sim_bench.REWARDS, "--reward"),
        (observation, {obs for obs, *_ in sim_bench.PLAN}, "--observation"),
    ):
        bad = sorted(set(given or ()) - set(allowed))
        if bad:
            raise typer.BadParameter(f"unknown value(s) {bad}; expected {sorted(allowed)}", param_hint=hint)
    rows = []
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        for obs, kind, n, api in sim_bench.planned(observation, reward, n_envs):
            task = progress.add_task(f"{obs} obs, {kind} reward, {n} cars, {api}", total=1.0)
            rows.append(
                sim_bench.measure(
                    n,
                    kind,
                    observation=obs,
                    seconds=seconds,
                    on_step=lambda f, t=task: progress.update(t, completed=f),
                    api=api,
                )
            )
    machine = machine_info()
    ratio = sim_bench.single_env_ratio(rows)
    if as_json:
        results = [sim_bench.row_dict(r) for r in rows]
        typer.echo(json.dumps({"results": results, "single_env_vs_vector_1": ratio, "machine": machine}))
        return
    tracks = ", ".join(sorted({r.track for r in rows}))
    table = Table(
        title=f"pitlane bench sim ({tracks}; one process; {title_suffix()})",
        caption=None if ratio is None else f"gymnasium.make single env = {ratio:.2f}x the vector env's 1 car",
    )
    for col in ("api", "observation", "reward", "cars", "steps/s", "per CPU-s"):
        table.add_column(col, justify="right" if col in ("cars", "steps/s", "per CPU-s") else "left")
    for r in rows:
        rates = (f"{r.steps_per_s:,.0f}", f"{r.steps_per_cpu_s:,.0f}")
        table.add_row(r.api, r.observation, r.reward, str(r.n_envs), *rates)
    Console().print(table)


@app.command("train")
def train_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    minutes: Annotated[float, typer.Option("--minutes", min=0.0, help="Wall-clock training budget.")] = 10.0,
    track: Annotated[
        str, typer.Option("--track", "-t", help="Track to train and evaluate on.")
    ] = "reinvent_base",
) -> None:
    """Train the racing recipe (state observation, progress reward, fast actions; bench/train.py) for
    --minutes, evaluating 3 laps every few seconds: time to the first clean evaluation (3 of 3 laps on the
    track) and the best lap against the physical limit."""
    require("train", "torch", "stable_baselines3")
    from bench.train import BenchEval, bench_train

    err = Console(stderr=True)

    def report(e: BenchEval) -> None:
        best = "-" if e.best_lap_s is None else f"{e.best_lap_s:.2f} s"
        clean = "  [green]clean[/green]" if e.clean else ""
        err.print(
            f"{e.wall_s:6.1f} s  {e.steps:>9,} steps  laps {e.completed_laps}/3  off-track {e.offtrack}  "
            f"best {best}{clean}",
            highlight=False,
        )

    result = bench_train(minutes, track=track, on_eval=report)
    data = result.to_dict()
    if as_json:
        typer.echo(json.dumps({**data, "machine": machine_info()}))
        return
    table = Table(title=f"pitlane bench train ({track}, {minutes:g} min; {title_suffix()})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in data.items():
        if key != "recipe":
            table.add_row(key, "-" if value is None else str(value))
    Console().print(table)


@app.command("inference")
def inference_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="Only these: mlp, cnn_shallow, cnn, cnn_deep (repeatable)."),
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Timing per model, s.")] = 2.0,
) -> None:
    """Single-frame latency (p50/p99, one ONNX Runtime thread, as on the car) of the exported MLP and
    DeepRacer's three CNNs at 160x120, fp32 and int8 (static QDQ calibrated on simulator camera frames)."""
    require("train", "torch", "onnx", "onnxruntime")
    from bench.inference import NETWORKS, bench_inference, targets

    bad = sorted(set(network or ()) - set(NETWORKS))
    if bad:
        raise typer.BadParameter(
            f"unknown network(s) {bad}; expected {list(NETWORKS)}", param_hint="--network"
        )
    chosen = tuple(n for n in NETWORKS if not network or n in network)
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("inference: rendering calibration frames", total=2 * len(chosen))

        def done(row: Any) -> None:
            progress.update(task, advance=1, description=f"inference: {row.network} {row.precision}")

        rows = bench_inference(chosen, seconds=seconds, on_row=done)
    results = [
        {"network": r.network, "precision": r.precision, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
         "mean_ms": r.mean_ms, "runs": r.runs, "model_bytes": r.model_bytes}
        for r in rows
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"results": results, "targets": targets(rows), "machine": machine_info()}))
        return
    table = Table(title=f"pitlane bench inference (one thread, one frame per call; {title_suffix()})")
    for col in ("network", "precision", "p50 ms", "p99 ms", "model MB"):
        table.add_column(col, justify="left" if col in ("network", "precision") else "right")
    for r in rows:
        table.add_row(
            r.network, r.precision, f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.model_bytes / 1e6:.2f}"
        )
    Console().print(table)


@app.command("ingest")
def ingest_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    cars: Annotated[int, typer.Option("--cars", min=1, max=1000, help="Simulated cars.")] = 100,
    laps_per_car: Annotated[
        int, typer.Option("--laps-per-car", min=1, max=10_000, help="Laps each car sends.")
    ] = 100,
    seconds: Annotated[
        float, typer.Option("--seconds", min=1.0, help="Longest wait for ingest per database, s.")
    ] = 120.0,
    clients: Annotated[
        int, typer.Option("--clients", min=1, max=500, help="Concurrent leaderboard clients.")
    ] = 100,
    crash_seconds: Annotated[
        float,
        typer.Option(
            "--crash-seconds", min=1.0, help="Crash run: the cars spread their laps over this long, s."
        ),
    ] = 10.0,
    database: Annotated[
        list[str] | None, typer.Option("--database", "-d", help="sqlite and/or postgresql (default: both).")
    ] = None,
    postgres_dsn: Annotated[
        str,
        typer.Option("--postgres", help="libpq DSN of a PostgreSQL server to create a scratch database on."),
    ] = "host=127.0.0.1 port=5432 user=postgres dbname=test",
) -> None:
    """Ingest throughput: simulated cars publish signed QoS 1 laps through Mosquitto (generated per-car
    logins and ACL) into the league server (uvicorn + ingest) on SQLite and PostgreSQL: laps/s, lost,
    duplicated, and leaderboard GET latency under concurrent clients. Then a crash run on `pitlane league
    serve` with its embedded broker: a takeover attempt on the server's MQTT session and a kill -9 of the
    server mid-stream, then a restart: acknowledged laps lost and duplicated, orphaned processes, recovery
    time. Everything on 127.0.0.1, bounded."""
    require("server", "fastapi", "sqlalchemy", "paho", "uvicorn", "httpx")
    from bench.errors import IngestBenchError
    from bench.ingest import run_ingest_bench

    databases = database or ["sqlite", "postgresql"]
    bad = sorted(set(databases) - {"sqlite", "postgresql"})
    if bad:
        raise typer.BadParameter(
            f"unknown database(s) {bad}; expected sqlite, postgresql", param_hint="--database"
        )
    err = Console(stderr=True)
    rows = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        for db in databases:
            task = progress.add_task(f"{db}: starting", total=None)
            try:
                rows.append(
                    run_ingest_bench(
                        db,
                        cars=cars,
                        laps_per_car=laps_per_car,
                        seconds=seconds,
                        clients=clients,
                        crash_stream_s=crash_seconds,
                        postgres_dsn=postgres_dsn,
                        on_progress=lambda msg, t=task: progress.update(t, description=msg),
                    )
                )
            except IngestBenchError as exc:
                fail(exc)
            progress.update(task, completed=1, total=1)
    if as_json:
        typer.echo(json.dumps({"results": [r.to_dict() for r in rows], "machine": machine_info()}))
        return
    _print_ingest_tables(rows, f"{cars} cars x {laps_per_car} laps, {clients} HTTP clients")


def _print_ingest_tables(rows: list[Any], setup: str) -> None:
    """The throughput table and the crash-run table of `pitlane bench ingest`, one row per database."""
    table = Table(title=f"pitlane bench ingest ({setup}; {title_suffix()})")
    for col in ("database", "laps/s", "lost", "duplicated", "leaderboard p50", "p99", "polling p50", "p99 "):
        table.add_column(col, justify="left" if col == "database" else "right")
    for r in rows:
        table.add_row(
            r.database,
            f"{r.laps_per_s:,.0f}",
            str(r.lost),
            str(r.duplicated),
            f"{r.leaderboard_p50_ms:.1f} ms",
            f"{r.leaderboard_p99_ms:.1f} ms",
            f"{r.leaderboard_poll_p50_ms:.1f} ms",
            f"{r.leaderboard_poll_p99_ms:.1f} ms",
        )
    Console().print(table)
    crash = Table(title="crash run: takeover attempt, kill -9 of `pitlane league serve` mid-stream, restart")
    cols = ("database", "acknowledged", "unstored at kill", "lost", "duplicated", "session kept", "orphans",
            "recovery")  # fmt: skip
    for col in cols:
        crash.add_column(col, justify="left" if col == "database" else "right")
    for r in rows:
        crash.add_row(
            r.database,
            f"{r.crash_acked:,}",
            f"{r.crash_unstored_at_kill:,}",
            str(r.crash_lost),
            str(r.crash_duplicated),
            "yes" if r.takeover_session_kept else "NO",
            str(r.crash_orphans),
            f"{r.crash_recovery_s:.1f} s",
        )
    Console().print(crash)


@app.command("startup")
def startup_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, max=20, help="Runs per command and cache state.")
    ] = 3,
) -> None:
    """Wall time of small commands (`--help`, `reward params`, `reward check`, `tracks show --raceline` with and
    without `--png`, an env's first step, `league admin list-races`), each in a fresh process, with an empty
    and a warm track geometry cache, on reinvent_base and a 60 m track: best of --repeats runs, the cold/warm
    ratio and the CPU seconds."""
    from bench.errors import StartupBenchError
    from bench.startup import bench_startup

    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("startup", total=1.0)
        try:
            rows = bench_startup(
                repeats, on_run=lambda text, done: progress.update(task, description=text, completed=done)
            )
        except StartupBenchError as exc:
            fail(exc)
    machine = machine_info()
    if as_json:
        typer.echo(json.dumps({"results": [r.to_dict() for r in rows], "machine": machine}))
        return
    table = Table(title=f"pitlane bench startup (fresh processes, best of {repeats}; {title_suffix()})")
    for col in ("command", "track", "cold s", "warm s", "cold/warm", "cold CPU s", "warm CPU s", "target s"):
        table.add_column(col, justify="left" if col in ("command", "track") else "right")
    for r in rows:
        mark = {True: "[green]ok[/green]", False: "[red]over[/red]", None: ""}[r.meets_target]
        table.add_row(
            r.command,
            r.track,
            f"{r.cold_s:.2f}",
            f"{r.warm_s:.2f}",
            f"{r.cold_over_warm:.1f}x",
            f"{r.cold_cpu_s:.2f}",
            f"{r.warm_cpu_s:.2f}",
            "-" if r.target_s is None else f"<= {r.target_s:g} {mark}",
        )
    Console().print(table)


@app.command("distill")
def distill_bench(
    tracks: Annotated[
        list[str] | None,
        typer.Option("--track", "-t", help="Tracks (repeatable) [default: the three DeepRacer tracks]."),
    ] = None,
    teacher_steps: Annotated[
        int, typer.Option("--teacher-steps", min=1, help="Car-steps of the state teacher per track.")
    ] = 300_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Per track: train a state teacher, then time a default `pitlane distill` (wall and CPU s) against the
    5-minute budget, and the student's evaluation laps."""
    require("train", "torch", "stable_baselines3")
    from bench.distill import DEEPRACER_TRACKS, DistillBenchRow, bench_distill

    err = Console(stderr=True)

    def report(r: DistillBenchRow) -> None:
        err.print(
            f"{r.track}: distilled in {r.distill_wall_s:.0f} s ({r.distill_cpu_s:.0f} CPU s)", highlight=False
        )

    rows = bench_distill(tuple(tracks or DEEPRACER_TRACKS), teacher_steps=teacher_steps, on_row=report,
                         show_progress=not as_json)  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"results": [r.to_dict() for r in rows], "machine": machine_info()}))
        return
    table = Table(title=f"pitlane bench distill (default settings; {title_suffix()})")
    for col in (
        "track",
        "teacher s",
        "distill s",
        "CPU s",
        "CPU / wall",
        "wall / 300 s",
        "best lap s",
        "clean laps",
    ):
        table.add_column(col, justify="left" if col == "track" else "right")
    for r in rows:
        best = "-" if r.best_eval_lap_s is None else f"{r.best_eval_lap_s:.2f}"
        table.add_row(r.track, f"{r.teacher_wall_s:.0f}", f"{r.distill_wall_s:.0f}", f"{r.distill_cpu_s:.0f}",
                      f"{r.cpu_share:.2f}", f"{r.over_budget:.2f}", best, str(r.clean_laps_last_round))  # fmt: skip
    Console().print(table)


@app.command("races")
def races_bench(
    submissions: Annotated[
        int, typer.Option("--submissions", min=2, max=200, help="Models in the round.")
    ] = 30,
    ray_address: Annotated[
        str | None, typer.Option("--ray", help="A Ray head's address [default: start one on 127.0.0.1].")
    ] = None,
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Skip the round through Ray.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """A virtual race's class round: N submitted models evaluated (3 laps each, each in its own sandboxed
    process) and ranked, timed on 1 and 2 local workers and through Ray."""
    require("train", "torch", "stable_baselines3", "onnx", "onnxruntime")
    if not no_ray:
        require("scale", "ray")
    from bench.races import ROUND_BUDGET_S, bench_races

    err = Console(stderr=True)
    with err.status("building the round") as status:
        figures = bench_races(submissions=submissions, ray_address=ray_address, use_ray=not no_ray,
                              on_stage=lambda text: status.update(text))  # fmt: skip
    if as_json:
        typer.echo(json.dumps({**figures, "machine": machine_info()}))
        return
    table = Table(title=f"pitlane bench races ({submissions} submissions x 3 laps; {title_suffix()})")
    for col in ("engine", "round s", "evaluations / min", "ranked"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    table.add_row("1 local worker", f"{figures['seconds_1_worker']:.1f}",
                  f"{figures['evaluations_per_minute_1_worker']:.0f}", str(figures["ranked"]))  # fmt: skip
    table.add_row("2 local workers", f"{figures['seconds_2_workers']:.1f}",
                  f"{figures['evaluations_per_minute_2_workers']:.0f}", str(figures["ranked"]))  # fmt: skip
    if figures["ray_seconds"] is not None:
        table.add_row("Ray (2 CPUs)", f"{figures['ray_seconds']:.1f}", "-", str(figures["ranked"]))
    Console().print(table)
    overhead = figures["ray_seconds_per_eval_overhead"]
    Console().print(
        f"2 workers vs 1: {figures['speedup_2_vs_1']:.2f}x (target {figures['speedup_target']}x); "
        f"round budget {ROUND_BUDGET_S:.0f} s; Ray overhead per evaluation: "
        f"{'-' if overhead is None else f'{overhead:+.3f} s'}",
        highlight=False,
    )


@app.command("console")
def console_bench(
    racers: Annotated[int, typer.Option("--racers", min=1, max=50, help="Racers training at once.")] = 10,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="The server's job workers [default: cores - 1].")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Skip the browser part.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """The console on `pitlane league serve`: seconds from "create model" (defaults, in headless Chromium) to a
    clean lap; then N racers training at once under quotas while a spectator's leaderboard is timed."""
    require("server", "fastapi", "sqlalchemy")
    require("train", "torch", "stable_baselines3")
    from bench.console import bench_console

    err = Console(stderr=True)
    with err.status("starting") as status:
        figures = bench_console(racers, workers, browser=not no_browser, on_stage=lambda t: status.update(t))
    if as_json:
        typer.echo(json.dumps({**figures, "machine": machine_info()}))
        return
    table = Table(title=f"pitlane bench console ({racers} racers; {title_suffix()})")
    for col in ("figure", "value", "goal"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    if "seconds_to_clean_lap" in figures:
        table.add_row("create -> clean lap (browser)", f"{figures['seconds_to_clean_lap']:.1f} s", "≤ 120 s")
        table.add_row("create -> download", f"{figures['seconds_to_download']:.1f} s", "-")
        if figures["job_seconds_to_clean_lap"]:
            table.add_row("  of which the job itself", f"{figures['job_seconds_to_clean_lap']:.1f} s "
                          f"(browser/job {figures['browser_vs_job_clean_lap']:.2f}x)", "-")  # fmt: skip
    table.add_row(
        "leaderboard p99 while training", f"{figures['leaderboard_p99_ms_while_training']:.1f} ms", "≤ 100 ms"
    )
    table.add_row(
        "leaderboard p50 while training", f"{figures['leaderboard_p50_ms_while_training']:.1f} ms", "-"
    )
    idle = f"{figures['leaderboard_p99_ms_idle']:.1f} ms (training/idle {figures['leaderboard_p99_training_vs_idle']:.2f}x)"
    table.add_row("leaderboard p99, nothing training", idle, "-")
    table.add_row("class jobs finished", f"{figures['class_finished']} of {racers}", "-")
    table.add_row("class wall time", f"{figures['class_seconds']:.0f} s", "-")
    table.add_row(
        "progress events per watch page (min)", str(figures["progress_events_per_racer_min"]), "> 0"
    )
    Console().print(table)


@app.command("robust")
def robust_bench(
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Car-steps of training, the same for each recipe.")
    ] = 2_000_000,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per held-out track (eval-shift).")] = 20,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps per seed.")] = 2,
    camera: Annotated[
        bool, typer.Option("--camera/--no-camera", help="Also distil and measure each camera student.")
    ] = True,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the runs and models in this folder (default: temporary)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Today's recipe (one track, no randomisation) and the default recipe (a pool of tracks both ways, strong
    randomisation), the same budget: clean-lap completion under eval-shift on DeepRacer tracks neither trained
    on, best lap over the car's limit, training time; each camera student too."""
    require("train", "torch", "stable_baselines3", "onnx", "onnxruntime")
    from bench.robust import LAP_GOAL, RobustRow, bench_robust
    from trainer.robustness import HELD_OUT_TRACKS

    err = Console(stderr=True)

    def report(r: RobustRow) -> None:
        err.print(f"{r.recipe} {r.observation}: {100 * r.completion:.0f} % clean laps under eval-shift "
                  f"(trained {r.train_wall_s:.0f} s)", highlight=False)  # fmt: skip

    with err.status("starting") as status:
        rows = bench_robust(steps=steps, seeds=seeds, laps=laps, camera=camera, on_row=report,
                            stage=lambda t: status.update(t), keep=keep)  # fmt: skip
    result = {"held_out_tracks": list(HELD_OUT_TRACKS), "seeds": seeds, "laps": laps, "steps": steps,
              "results": [r.to_dict() for r in rows], "machine": machine_info()}  # fmt: skip
    result["ratios"] = _robust_ratios(rows)
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"pitlane bench robust ({steps:,} car-steps, {seeds} seeds x {laps} laps on "
                        f"{len(HELD_OUT_TRACKS)} held-out tracks; {title_suffix()})")  # fmt: skip
    for col in ("recipe", "model", "clean laps %", "95 % CI %", "with resets %", "goal %", "best/limit shift",
                "best/limit plain", "lap goal", "train s", "budget s"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("recipe", "model") else "right")
    for r in rows:
        low, high = r.completion_ci95
        table.add_row(r.recipe, r.observation, f"{100 * r.completion:.0f}", f"{100 * low:.0f}-{100 * high:.0f}",
                      f"{100 * r.completion_with_resets:.0f}", f"≥ {100 * r.goal:.0f}",
                      _ratio(r.worst_best_over_limit_shift), _ratio(r.worst_best_over_limit_plain),
                      f"≤ {LAP_GOAL:.2f}", f"{r.train_wall_s:.0f}", f"≤ {r.budget_s:.0f}")  # fmt: skip
    Console().print(table)
    for kind, ratio in result["ratios"].items():
        Console().print(f"default / today, {kind}: clean-lap completion x{ratio:.2f}", highlight=False)


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _robust_ratios(rows: list[Any]) -> dict[str, float]:
    """default / today clean-lap completion per observation (when today's is above 0)."""
    by = {(r.recipe, r.observation): r.completion for r in rows}
    return {obs: by[("default", obs)] / by[("today", obs)] for obs in ("state", "camera")
            if by.get(("today", obs)) and ("default", obs) in by}  # fmt: skip
