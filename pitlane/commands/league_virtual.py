"""`pitlane league admin import-roster | make-virtual`: an organiser's side of a virtual race (a class or a
company round): the roster's racers with their tokens, and a race whose laps come from the simulator."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pitlane.commands.common import fail
from pitlane.commands.league_db import DbOption, JsonOption, database_session, load_settings

virtual_app = typer.Typer()


@virtual_app.command("import-roster")
def import_roster_command(
    roster: Annotated[
        Path, typer.Argument(help="CSV with a header: name, team (optional), alias (optional).")
    ],
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Add the roster's racers to the league, each with a secret token, printed once: hand each racer theirs."""
    from league_server.crud import leagues, virtual

    rows = _roster_rows(roster)
    with database_session(db) as session:
        found = leagues.get_league_by_slug(session, league)
        if found is None:
            fail(f"--league {league!r}: no such league")
        issued = virtual.import_roster(session, found.id, rows)
        session.commit()
        out = [{"racer_id": r.id, "name": r.name, "team": row.team, "alias": r.alias, "token": token}
               for (r, token), row in zip(issued, rows, strict=True)]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(out))
        return
    table = Table(title=f"{len(out)} racers added to {league}: the tokens are shown this once")
    for col in ("id", "name", "team", "alias"):
        table.add_column(col)
    table.add_column("token", overflow="fold", min_width=43)  # a token must print whole
    for r in out:
        table.add_row(str(r["racer_id"]), r["name"], r["team"] or "", r["alias"] or "", r["token"])
    Console().print(table)


def _roster_rows(path: Path) -> list[Any]:
    from league_server.crud.virtual import RosterRow

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "name" not in [f.strip().lower() for f in reader.fieldnames]:
                fail(f"{path}: expected a header line with a `name` column (and optional `team`, `alias`)")
            rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as exc:
        fail(f"{path}: cannot read ({exc})")
    bad = [n for n, row in enumerate(rows, 2) if not row.get("name")]
    if bad:
        fail(f"{path}: line(s) {', '.join(map(str, bad))} have no name")
    return [RosterRow(row["name"], row.get("team") or None, row.get("alias") or None) for row in rows]


@virtual_app.command("make-virtual")
def make_virtual_command(
    race_id: Annotated[int, typer.Argument(min=1, help="The race (its laps, penalty and ranking are kept).")],
    track: Annotated[str, typer.Option("--track", help="A simulator track name or a route .npy file.")],
    reverse: Annotated[bool, typer.Option("--reverse", help="Drive the track the other way.")] = False,
    car: Annotated[
        str, typer.Option("--car", help="The car model (a firmware_configs name or file).")
    ] = "deepracer",
    observation: Annotated[
        list[str] | None,
        typer.Option("--observation", help="Observation kinds allowed (repeatable; default: any)."),
    ] = None,
    randomization: Annotated[
        str, typer.Option("--randomization", help="none | light | strong | eval-shift.")
    ] = "none",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the race's conditions.")] = 0,
    max_submissions: Annotated[
        int | None, typer.Option("--max-submissions", min=1, help="Per racer (default: no cap).")
    ] = None,
    counts: Annotated[
        str, typer.Option("--counts", help="best | last: which evaluated submission ranks.")
    ] = "best",
    db: DbOption = None,
) -> None:
    """Make RACE_ID a virtual race: racers submit models (`pitlane submit`), the server evaluates each under
    the same conditions (a copy of the track's route is kept in the server's data folder)."""
    from pydantic import ValidationError

    from contracts.errors import validation_problems
    from contracts.virtual_race import VirtualRaceSpec
    from league_server.crud import races, virtual
    from virtual_circuit.routes import keep_route

    settings = load_settings(db)
    route, sha256 = keep_route(track, settings.data_dir)
    with database_session(db) as session:
        race = races.get_race(session, race_id)
        kinds = {"observation_kinds": tuple(observation)} if observation else {}
        try:
            spec = VirtualRaceSpec(track=route, route_sha256=sha256, reverse=reverse, car=car, seed=seed,
                                   rules=races.rules_of(race).to_dict(), randomization=randomization, **kinds)  # fmt: skip
        except ValidationError as exc:
            fail(f"make-virtual: {validation_problems(exc)}")
        virtual.make_virtual(session, race, spec, max_submissions=max_submissions, counts=counts)
        session.commit()
    typer.echo(f"race {race_id} is virtual: {track} ({sha256[:12]}…), car {car}, seed {seed}; racers submit with "
               f"`pitlane submit MODEL --race {settings.public_base_url}/races/{race_id} --token TOKEN`")  # fmt: skip


@virtual_app.command("public-names")
def public_names_command(
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    show: Annotated[
        str, typer.Argument(help="aliases (a class: aliases only, 'racer N' without one) or names.")
    ],
    db: DbOption = None,
) -> None:
    """What the league's public pages, feeds and exports call racers: their aliases or their names."""
    from league_server.crud import leagues

    if show not in ("aliases", "names"):
        fail(f"expected `aliases` or `names`, got {show!r}")
    with database_session(db) as session:
        found = leagues.get_league_by_slug(session, league)
        if found is None:
            fail(f"--league {league!r}: no such league")
        found.public_aliases = show == "aliases"
        session.commit()
    typer.echo(f"{league}: public pages show racers' {show}")


@virtual_app.command("quotas")
def quotas_command(
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    racer: Annotated[
        str | None, typer.Option("--racer", help="One racer's name (default: the league's).")
    ] = None,
    concurrent: Annotated[
        int | None, typer.Option("--concurrent", min=0, help="Training jobs queued or running at once.")
    ] = None,
    minutes_per_day: Annotated[
        float | None, typer.Option("--minutes-per-day", min=0, help="Minutes of training per UTC day.")
    ] = None,
    db: DbOption = None,
) -> None:
    """The console's training quotas, for every racer of a league or for one racer; prints them."""
    from league_server.crud import console, leagues

    with database_session(db) as session:
        found = leagues.get_league_by_slug(session, league)
        if found is None:
            fail(f"--league {league!r}: no such league")
        target = found if racer is None else console.racer_named(session, found.id, racer)
        if target is None:
            fail(f"--racer {racer!r}: not on league {league!r}'s roster")
        console.set_quota(session, target, concurrent_jobs=concurrent, minutes_per_day=minutes_per_day)
        session.commit()
        if racer is None:
            shown = console.Quota(found.quota_concurrent_jobs, found.quota_minutes_per_day)
        else:
            shown = console.quota_of(target)
    who = f"{racer} ({league})" if racer is not None else f"racers of {league} without their own quotas"
    typer.echo(
        f"{who}: {shown.concurrent_jobs} training job(s) at once, {shown.minutes_per_day:g} min of training "
        "per UTC day"
    )
