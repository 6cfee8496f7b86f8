"""The console's training jobs through the dispatcher and real `python -m trainer.job` processes: a reward that
allocates without bound fails its own job with the reason and the line while another racer's model trains to
the end on the same workers; a job stopped by its limits mid-run is failed with the reason; a server that
stopped while a job ran queues it again once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.recipe import Recipe, StopCondition

pytestmark = pytest.mark.xdist_group("console-jobs")

GREEDY_REWARD = """def reward_function(params):
    hoard = bytearray(10**12)  # a terabyte
    return float(len(hoard))
"""


class Hub:
    """Records what the dispatcher publishes (the console's EventHub interface)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, dict[str, Any]]] = []

    def publish(self, key: int, event: dict[str, Any]) -> None:
        self.events.append((key, event))


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    from league_server.core.db import make_engine, make_sessionmaker, upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _racers(sessionmaker: Any) -> tuple[int, int]:
    from league_server.crud import leagues, virtual

    with sessionmaker() as session:
        league = leagues.create_league(session, "jobs", "Jobs")
        (ada, _), (ben, _) = virtual.import_roster(
            session, league.id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        session.commit()
        return ada.id, ben.id


def _queue(sessionmaker: Any, racer_id: int, recipe: Recipe) -> int:
    from league_server.crud import console
    from league_server.models import Racer

    with sessionmaker() as session:
        model = console.create_model(session, session.get(Racer, racer_id), recipe)
        console.queue_training(session, model)
        session.commit()
        return model.id


def _wait(sessionmaker: Any, ids: list[int], timeout_s: float = 300) -> dict[int, Any]:
    from league_server.models import RacerModel

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessionmaker() as session:
            rows = {i: session.get(RacerModel, i) for i in ids}
            if all(r.status not in ("queued", "running") for r in rows.values()):
                return {i: (r.status, r.reason, r.outcome, r.progress) for i, r in rows.items()}
        time.sleep(0.5)
    pytest.fail(f"training jobs {ids} did not end within {timeout_s:.0f} s")


def _dispatcher(sessionmaker: Any, data_dir: Path, hub: Hub, **training: Any) -> Any:
    from league_server.jobs.dispatch import JobDispatcher, TrainingSettings
    from league_server.jobs.engine import LocalWorkers

    settings = TrainingSettings(n_envs=32, **training)
    return JobDispatcher(
        sessionmaker, LocalWorkers(1), data_dir, None, hub, training=settings, poll_s=0.2
    ).start()


def test_a_greedy_reward_fails_its_own_job_and_the_other_racers_model_trains(db: Any, tmp_path: Path) -> None:
    ada, ben = _racers(db)
    greedy = _queue(
        db, ada, Recipe(name="greedy", reward_function=GREEDY_REWARD, stop=StopCondition(minutes=0.5))
    )
    fine = _queue(db, ben, Recipe(name="fine", stop=StopCondition(minutes=0.5)))
    hub = Hub()
    dispatcher = _dispatcher(db, tmp_path / "data", hub)
    try:
        ended = _wait(db, [greedy, fine])
    finally:
        dispatcher.stop()
    status, reason, _, _ = ended[greedy]
    assert status == "failed" and "MemoryError" in reason and "line 2" in reason, reason
    status, reason, outcome, progress = ended[fine]
    assert status == "finished", reason
    assert outcome["files"]["onnx"] == "model.onnx" and len(outcome["model_sha256"]) == 64
    assert (tmp_path / "data" / "training" / str(fine) / "out" / "model.onnx").is_file()
    assert progress["phase"] == "done"
    # the watch pages were told: progress for the model that trained, the end of each
    pushed = {key for key, event in hub.events if event["type"] == "progress"}
    assert fine in pushed
    ends = {key: event["status"] for key, event in hub.events if event["type"] == "status"}
    assert ends == {greedy: "failed", fine: "finished"}


def test_a_job_stopped_by_its_wall_clock_limit_mid_run_is_failed_with_the_reason(
    db: Any, tmp_path: Path
) -> None:
    ada, _ = _racers(db)
    # 0.25 min of training that never stops early, and a wall-clock allowance of 2 s beyond it: the job is
    # still exporting (or training) when the sandbox ends it
    recipe = Recipe(name="slow", stop=StopCondition(minutes=0.25, until_clean_laps=None))
    model_id = _queue(db, ada, recipe)
    dispatcher = _dispatcher(db, tmp_path / "data", Hub(), extra_wall_s=2.0)
    try:
        status, reason, outcome, _ = _wait(db, [model_id])[model_id]
    finally:
        dispatcher.stop()
    assert status == "failed" and "wall-clock limit" in reason, reason
    assert outcome is None


def test_a_job_a_stopped_server_left_running_runs_once_more_then_fails(db: Any) -> None:
    from league_server.crud import console
    from league_server.models import RacerModel

    ada, _ = _racers(db)
    model_id = _queue(db, ada, Recipe(name="interrupted"))
    for expected in ("queued", "failed"):
        with db() as session:
            assert console.claim_next_training(session).id == model_id  # a server starts it ...
            session.commit()
        with db() as session:  # ... and stops; the next server's start-up
            console.requeue_interrupted_training(session)
            session.commit()
            model = session.get(RacerModel, model_id)
            assert model.status == expected
    assert "the server stopped twice" in model.reason
