"""`pitlane league admin` commands for laps (invalidate, restore, delete, enter by hand; all audited) and the
dead letters (messages the server refused, with the reason)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pitlane.commands.league_db import DbOption, JsonOption, cli_actor, database_session, print_out

laps_app = typer.Typer()

# a page of dead letters an organiser can read in a terminal; --limit for more
DEAD_LETTERS_SHOWN = 20
PAYLOAD_CHARS_SHOWN = 80


# ----------------------------------------------------------------------------------------------- laps

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (written to the audit log).")]


def _lap_edit(action: str, lap_id: int, reason: str, db: str | None) -> None:
    from league_server.crud import laps

    edit = {"invalidate": laps.invalidate_lap, "restore": laps.restore_lap, "delete": laps.delete_lap}[action]
    with database_session(db) as session:
        lap = edit(session, lap_id, reason=reason, actor=cli_actor())
        session.commit()
        state = "deleted" if lap.deleted_at else ("valid" if lap.valid else "invalid")
        typer.echo(f"lap {lap.id} ({lap.car_id}, {lap.lap_time_ms / 1000:.3f} s): {state}")


@laps_app.command("invalidate-lap")
def invalidate_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Invalidate a lap (it no longer counts; audited)."""
    _lap_edit("invalidate", lap_id, reason, db)


@laps_app.command("restore-lap")
def restore_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Restore an invalidated or deleted lap (audited)."""
    _lap_edit("restore", lap_id, reason, db)


@laps_app.command("delete-lap")
def delete_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Soft-delete a bogus lap (audited; restore-lap brings it back)."""
    _lap_edit("delete", lap_id, reason, db)


@laps_app.command("add-lap")
def add_lap_command(
    race: Annotated[int, typer.Option("--race", min=1, help="Race id.")],
    car: Annotated[str, typer.Option("--car", help="Car id.")],
    time_ms: Annotated[int, typer.Option("--time-ms", min=1, help="Lap time in ms, penalties not included.")],
    reason: ReasonOption,
    offtrack: Annotated[int, typer.Option("--offtrack", min=0, help="Off-tracks in the lap.")] = 0,
    resets: Annotated[int, typer.Option("--resets", min=0, help="Resets in the lap.")] = 0,
    db: DbOption = None,
) -> None:
    """Enter a lap by hand (source "manual"; audited)."""
    from league_server.crud import laps

    with database_session(db) as session:
        lap = laps.add_manual_lap(
            session, race, car, time_ms, actor=cli_actor(), reason=reason, offtrack_count=offtrack,
            reset_count=resets,
        )  # fmt: skip
        session.commit()
        typer.echo(f"lap {lap.id}: {car} lap {lap.lap_number}, {time_ms / 1000:.3f} s")


# --------------------------------------------------------------------------------------- dead letters


@laps_app.command("dead-letters")
def dead_letters_command(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="How many, newest first.")
    ] = DEAD_LETTERS_SHOWN,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Messages the server refused, newest first, with the reason: why laps miss the leaderboard.

    A car with a wrong secret, a closed race, a lap outside the window, an unknown car: each refused lap
    report is kept with its topic, reason and payload."""
    from league_server.crud import dead_letters
    from league_server.schemas import DeadLetterOut

    with database_session(db) as session:
        found = dead_letters.list_recent(session, limit)
        data = [DeadLetterOut.model_validate(d).model_dump(mode="json") for d in found]

    def render(rows: list[dict[str, Any]]) -> None:
        # one block per letter, not a table: reasons run to a sentence and topics to 60 characters
        if not rows:
            typer.echo("no dead letters: every message the server received was taken")
        for r in rows:
            typer.echo(
                f"{r['received_at']}  {r['topic']}\n  {r['reason']}\n  payload: {_shorten(r['payload'])}"
            )

    print_out(data, as_json, render)


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PAYLOAD_CHARS_SHOWN else flat[: PAYLOAD_CHARS_SHOWN - 3] + "..."
