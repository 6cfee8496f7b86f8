"""A virtual race through the API on SQLite and PostgreSQL: racers submit with their roster tokens, uploads are
checked before they are queued (every refusal says why), the server's workers evaluate them in sandboxed
processes, and the leaderboard ranks the laps; a token acts only as its own racer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.virtual_race import SubmissionLimits, VirtualRaceSpec
from tests.export_fixtures import exported_state

__all__ = ["exported_state"]

SPEC = VirtualRaceSpec(track="reinvent_base", rules={"laps": 2}, seed=5)


@pytest.fixture
def jobs_client(settings: Any, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from league_server.main import create_app

    jobs = settings.model_copy(
        update={"jobs_enabled": True, "job_workers": "1", "data_dir": tmp_path / "data"}
    )
    with TestClient(create_app(jobs)) as client:
        yield client


@pytest.fixture
def race(jobs_client: Any) -> dict[str, Any]:
    """A virtual race with a cap of 2, its league's roster (two racers) and another league's racer."""
    from league_server.crud import leagues, races, virtual

    with jobs_client.app.state.sessionmaker() as session:
        league = leagues.create_league(session, "class-9", "Class 9")
        event = leagues.create_event(session, league.id, "Round 1")
        race = virtual.make_virtual(
            session, races.create_race(session, event.id, "Sprint"), SPEC, max_submissions=2
        )
        tiny = virtual.make_virtual(session, races.create_race(session, event.id, "Tiny uploads"),
                                    SPEC.model_copy(update={"limits": SubmissionLimits(max_upload_bytes=1000)}))  # fmt: skip
        roster = virtual.import_roster(
            session, league.id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        other = leagues.create_league(session, "class-10", "Class 10")
        ((_, stranger),) = virtual.import_roster(session, other.id, [virtual.RosterRow("Eve")])
        session.commit()
        return {"id": race.id, "tiny": tiny.id, "ada": roster[0][1], "ben": roster[1][1], "eve": stranger}


def _post(client: Any, race_id: int, token: str | None, model: bytes, card: bytes) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = {
        "model": ("model.onnx", model, "application/octet-stream"),
        "card": ("model.json", card, "application/json"),
    }
    return client.post(f"/api/races/{race_id}/submissions", headers=headers, files=files)


def _wait_finished(client: Any, token: str, timeout_s: float = 180.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        subs = client.get("/api/submissions", headers={"Authorization": f"Bearer {token}"}).json()
        if subs and all(s["status"] in ("finished", "failed") for s in subs):
            return subs
        time.sleep(0.5)
    pytest.fail(f"the evaluations did not finish within {timeout_s:.0f} s: {subs}")


def test_a_submission_is_evaluated_and_ranked(
    jobs_client: Any, race: dict[str, Any], exported_state: Path
) -> None:
    model, card = (
        (exported_state / "model.int8.onnx").read_bytes(),
        (exported_state / "model.json").read_bytes(),
    )
    first = _post(jobs_client, race["id"], race["ada"], model, card)
    assert first.status_code == 201, first.text
    assert first.json()["status"] in ("queued", "running")
    again = _post(jobs_client, race["id"], race["ada"], model, card)
    assert (
        again.status_code == 200 and again.json()["id"] == first.json()["id"]
    )  # the same file: the same one
    (done,) = _wait_finished(jobs_client, race["ada"])
    assert done["status"] == "finished" and len(done["laps"]) == 2, done
    # checked once, at upload: the evaluation's job does not read the graph again
    data_dir = jobs_client.app.state.settings.data_dir
    assert json.loads((data_dir / "jobs" / str(done["id"]) / "job.json").read_text(encoding="utf-8"))[
        "checked"
    ]
    board = jobs_client.get(f"/api/races/{race['id']}/leaderboard").json()
    (entry,) = board["entries"]
    assert entry["laps"] == 2 and entry["best_lap_s"] == pytest.approx(
        min(lap["lap_time_s"] for lap in done["laps"]), abs=1e-3
    )


def test_every_refusal_says_why(jobs_client: Any, race: dict[str, Any], exported_state: Path) -> None:
    model, card = (
        (exported_state / "model.int8.onnx").read_bytes(),
        (exported_state / "model.json").read_bytes(),
    )
    assert _post(jobs_client, race["id"], None, model, card).status_code == 401
    assert _post(jobs_client, race["id"], "not-a-token", model, card).status_code == 401
    stranger = _post(jobs_client, race["id"], race["eve"], model, card)
    assert stranger.status_code == 403 and "another league" in stranger.json()["detail"]
    garbage = _post(jobs_client, race["id"], race["ben"], b"\x00" * 500, card)
    assert garbage.status_code == 422 and "not an ONNX model" in garbage.json()["detail"]
    bad_card = _post(jobs_client, race["id"], race["ben"], model, b"{not json")
    assert bad_card.status_code == 422 and "model.json: not JSON" in bad_card.json()["detail"]
    too_big = _post(jobs_client, race["tiny"], race["ben"], model, card)
    assert too_big.status_code == 413 and "limit of 0.0 MB" in too_big.json()["detail"]
    assert (
        jobs_client.get("/api/submissions", headers={"Authorization": f"Bearer {race['ben']}"}).json() == []
    )


def test_a_job_running_when_the_server_stopped_runs_again_after_a_restart(
    settings: Any, tmp_path: Path, exported_state: Path
) -> None:
    from fastapi.testclient import TestClient

    from league_server.crud import leagues, races, virtual
    from league_server.jobs.uploads import parse_card, store_upload
    from league_server.main import create_app

    data_dir = tmp_path / "data"
    quiet = settings.model_copy(update={"data_dir": data_dir})  # no job engine: the first server "dies"
    with TestClient(create_app(quiet)) as client, client.app.state.sessionmaker() as session:
        league = leagues.create_league(session, "night", "Night class")
        event = leagues.create_event(session, league.id, "Round")
        race = virtual.make_virtual(session, races.create_race(session, event.id, "Sprint"), SPEC)
        ((racer, token),) = virtual.import_roster(session, league.id, [virtual.RosterRow("Ada")])
        card = parse_card((exported_state / "model.json").read_bytes())
        upload = store_upload(data_dir, (exported_state / "model.int8.onnx").read_bytes(), card)
        virtual.record_submission(session, race, racer, upload)
        assert virtual.claim_next_job(session).status == "running"  # it was running when the server stopped
        session.commit()
    jobs = quiet.model_copy(update={"jobs_enabled": True, "job_workers": "1"})
    with TestClient(create_app(jobs)) as client:
        (done,) = _wait_finished(client, token)
    assert done["status"] == "finished" and done["attempts"] == 2 and len(done["laps"]) == 2
