"""`pitlane league admin ...`: administer leagues, races, cars, timers and laps from the shell with the same
crud code as the admin API (edits audited as `cli:<user>`).

This module holds the league structure and the races; cars and timers are in `league_cars`, lap edits and
dead letters in `league_laps` (their commands join this group). Each command imports only what it uses, inside
the function.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail
from pitlane.commands.league_cars import cars_app
from pitlane.commands.league_db import (
    DbOption,
    JsonOption,
    LeagueOption,
    RaceId,
    cli_actor,
    dash,
    database_session,
    league_id,
    print_out,
    print_table,
)
from pitlane.commands.league_laps import laps_app
from pitlane.commands.league_virtual import virtual_app

admin_app = typer.Typer(
    help="Administer leagues, races, cars and laps (audited, like the admin API).", no_args_is_help=True
)


# ---------------------------------------------------------------------------------- league structure


@admin_app.command("create-league")
def create_league_command(slug: str, name: str, db: DbOption = None) -> None:
    """Create a league (SLUG is the <league> of MQTT topics)."""
    from league_server.crud import leagues

    with database_session(db) as session:
        league = leagues.create_league(session, slug, name)
        session.commit()
        typer.echo(f"league {league.slug} (id {league.id})")


@admin_app.command("create-event")
def create_event_command(
    name: str,
    league: LeagueOption,
    location: Annotated[str | None, typer.Option("--location")] = None,
    db: DbOption = None,
) -> None:
    """Create an event in a league."""
    from league_server.crud import leagues

    with database_session(db) as session:
        event = leagues.create_event(session, league_id(session, league), name, location=location)
        session.commit()
        typer.echo(f"event {event.name!r} (id {event.id})")


@admin_app.command("create-race")
def create_race_command(
    name: str,
    event: Annotated[int, typer.Option("--event", min=1, help="Event id.")],
    ranking: Annotated[
        str, typer.Option("--ranking", help="best_lap | best_average_of | total_time | most_laps_in")
    ] = "best_lap",
    ranked_laps: Annotated[
        int, typer.Option("--ranked-laps", min=1, help="N of best_average_of / total_time.")
    ] = 3,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps to drive.")] = 3,
    offtrack_penalty_s: Annotated[
        float, typer.Option("--offtrack-penalty-s", min=0, help="Seconds per off-track.")
    ] = 2.0,
    max_resets: Annotated[
        int | None, typer.Option("--max-resets", min=0, help="Resets allowed per lap.")
    ] = None,
    min_lap_time_s: Annotated[
        float, typer.Option("--min-lap-time-s", min=0, help="Faster laps are refused.")
    ] = 1.0,
    time_window_s: Annotated[
        float | None, typer.Option("--time-window-s", min=0, help="T of most_laps_in.")
    ] = None,
    track: Annotated[
        str | None,
        typer.Option(
            "--track",
            help="The track's name (a simulator track such as reinvent_base); laps reported on another are refused.",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create a race with its rules (checked by the simulator's race rules)."""
    from league_server.crud import leagues, races

    with database_session(db) as session:
        track_id = leagues.track_by_slug(session, track).id if track else None
        race = races.create_race(
            session, event, name, track_id=track_id, ranking=ranking, ranked_laps=ranked_laps, laps=laps,
            offtrack_penalty_s=offtrack_penalty_s, max_resets=max_resets, min_lap_time_s=min_lap_time_s,
            time_window_s=time_window_s,
        )  # fmt: skip
        session.commit()
        on_track = f", on {track}" if track else ""
        typer.echo(f"race {race.name!r} (id {race.id}, {race.ranking}{on_track})")


@admin_app.command("create-team")
def create_team_command(name: str, league: LeagueOption, db: DbOption = None) -> None:
    """Create a team in a league."""
    from league_server.crud import leagues

    with database_session(db) as session:
        team = leagues.create_team(session, league_id(session, league), name)
        session.commit()
        typer.echo(f"team {team.name!r} (id {team.id})")


@admin_app.command("create-racer")
def create_racer_command(
    name: str,
    league: LeagueOption,
    team: Annotated[int | None, typer.Option("--team", min=1, help="Team id.")] = None,
    db: DbOption = None,
) -> None:
    """Create a racer (optionally in a team)."""
    from league_server.crud import leagues

    with database_session(db) as session:
        racer = leagues.create_racer(session, league_id(session, league), name, team_id=team)
        session.commit()
        typer.echo(f"racer {racer.name!r} (id {racer.id})")


# ---------------------------------------------------------------------------------------------- races


@admin_app.command("list-races")
def list_races_command(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List races: ranking method, status and time window (UTC)."""
    from league_server.crud import races
    from league_server.schemas import RaceOut

    with database_session(db) as session:
        data = [RaceOut.model_validate(r).model_dump(mode="json") for r in races.list_races(session)]

    def render(rows: list[dict[str, Any]]) -> None:
        print_table(
            "Races",
            ("id", "name", "ranking", "ranked laps", "status", "window start", "window end"),
            [
                [str(r["id"]), escape(r["name"]), r["ranking"], str(r["ranked_laps"]), r["status"],
                 dash(r["window_start"]), dash(r["window_end"])]
                for r in rows
            ],
        )  # fmt: skip

    print_out(data, as_json, render)


def _race_line(race: Any) -> str:
    status = "open" if race.status == "open" else f"{race.status} (its laps are refused)"
    if race.window_start is None and race.window_end is None:
        window = "no time window"
    else:
        start = race.window_start.isoformat() if race.window_start else "open"
        end = race.window_end.isoformat() if race.window_end else "open"
        window = f"time window from {start} until {end}"
    return f"race {race.name!r} (id {race.id}): {status}; {window}"


def _update_race(race_id: int, db: str | None, **changes: Any) -> None:
    from league_server.crud import races

    with database_session(db) as session:
        race = races.update_race(session, race_id, actor=cli_actor(), **changes)
        session.commit()
        typer.echo(_race_line(race))


@admin_app.command("open-race")
def open_race_command(race_id: RaceId, db: DbOption = None) -> None:
    """Open a race: its laps are accepted again (within its window; audited)."""
    _update_race(race_id, db, status="open")


@admin_app.command("close-race")
def close_race_command(race_id: RaceId, db: DbOption = None) -> None:
    """Close a race: its laps are refused from now on; its leaderboard stays (audited).

    Refused laps are kept as dead letters (see dead-letters)."""
    _update_race(race_id, db, status="closed")


def parse_when(option: str, value: str | None) -> datetime | None:
    """An ISO 8601 time as UTC (a time without an offset is taken as UTC, as the API does); `none` -> None.
    Exits naming `option` when the value is not a time."""
    if value is None or value.strip().lower() == "none":
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read the Z suffix
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"{option}: expected an ISO 8601 time such as 2026-06-01T18:00:00+02:00 (or none), got {value!r}"
        )
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


_WHEN_HELP = "ISO 8601 time, e.g. 2026-06-01T18:00+02:00 (no offset: UTC), or none for no bound."


@admin_app.command("set-window")
def set_window_command(
    race_id: RaceId,
    start: Annotated[str | None, typer.Option("--start", help=f"Laps accepted from: {_WHEN_HELP}")] = None,
    end: Annotated[str | None, typer.Option("--end", help=f"Laps accepted until: {_WHEN_HELP}")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No window: laps accepted at any time.")] = False,
    db: DbOption = None,
) -> None:
    """Set or clear the time window a race accepts laps in (audited).

    A lap finished outside the window is refused. An option left out keeps its bound."""
    if clear and (start is not None or end is not None):
        fail("set-window: pass --clear alone, or --start and/or --end")
    if clear:
        changes: dict[str, Any] = {"window_start": None, "window_end": None}
    else:
        given = {"window_start": ("--start", start), "window_end": ("--end", end)}
        changes = {key: parse_when(*arg) for key, arg in given.items() if arg[1] is not None}
    if not changes:
        fail("set-window: pass --start ISO and/or --end ISO, or --clear")
    _update_race(race_id, db, **changes)


@admin_app.command("leaderboard")
def leaderboard_command(race_id: int, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show a race's leaderboard (the same ranking as the API and the web page)."""
    from league_server import ranking

    with database_session(db) as session:
        board = ranking.leaderboard(session, race_id).model_dump(mode="json")

    def render(data: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title=f"{escape(data['race_name'])} ({data['ranking']})")
        for column in ("pos", "no.", "racer", "team", "car", "value (s)", "gap (s)", "best (s)", "laps"):
            table.add_column(column)
        for e in data["entries"]:
            position = "DNF" if e["status"] == "dnf" else str(e["position"] or "-")
            number = "" if e["car_number"] is None else str(e["car_number"])
            table.add_row(
                position, number, escape(e["racer"] or ""), escape(e["team"] or ""), e["car_id"],
                _num(e["ranking_value_s"]), _num(e["gap_s"]), _num(e["best_lap_s"]), str(e["laps"]),
            )  # fmt: skip
        Console().print(table)

    print_out(board, as_json, render)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# add_typer without a name adds the group's commands to this one, after the commands above (as `--help` lists them)
admin_app.add_typer(cars_app)
admin_app.add_typer(virtual_app)
admin_app.add_typer(laps_app)
