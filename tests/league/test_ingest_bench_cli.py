"""`pitlane bench ingest` end to end with tiny counts (real Mosquitto, uvicorn, SQLite): the JSON shape and
that nothing is lost. No timing assertions: speed is the benchmark's to measure, not the tests'."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pitlane.cli import app
from tests.conftest import MOSQUITTO, require_service


def test_bench_ingest_json_with_tiny_counts() -> None:
    require_service(*MOSQUITTO)  # the machine's services; the bench starts its own broker on a free port
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "ingest",
            "--json",
            "--cars",
            "3",
            "--laps-per-car",
            "40",
            "--clients",
            "3",
            "-d",
            "sqlite",
            "--crash-seconds",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])["results"]
    assert [r["database"] for r in rows] == ["sqlite"]
    row = rows[0]
    assert row["laps"] == 120 and row["stored"] == 120 and row["lost"] == 0 and row["duplicated"] == 0
    assert row["laps_per_s"] > 0 and row["leaderboard_p99_ms"] >= row["leaderboard_p50_ms"] > 0
    assert row["dead_letters"] == 0
    # the crash run: the README's server killed mid-stream and restarted on its data directory
    assert row["crash_acked"] > 0 and row["crash_lost"] == 0 and row["crash_duplicated"] == 0
    assert row["takeover_session_kept"] is True and row["crash_orphans"] == 0


def test_bench_ingest_rejects_unknown_database() -> None:
    result = CliRunner().invoke(app, ["bench", "ingest", "-d", "mysql"])
    assert result.exit_code == 2 and "mysql" in result.output
