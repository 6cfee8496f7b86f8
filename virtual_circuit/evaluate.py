"""One evaluation of a submitted model under a virtual race's conditions, through the car's ONNX path.

    outcome = evaluate_submission(Path("jobs/17/job.json"))    # writes jobs/17/out/result.json too

The job file (`contracts.virtual_race.EvaluationJob`) names the .onnx, its model card and the race's
`VirtualRaceSpec`. The upload is checked first (`virtual_circuit.check`); then `device.policy.OnnxPolicy` (the
code a car runs) drives `sim.evaluation.evaluate` with the race's rules, track, direction, car, randomisation
and seed, so the same file in the same race gives the same laps. The folder `out_dir` receives:

    result.json                              EvaluationOutcome: finished + laps, or failed + the reason
    evaluation-simtrace/0-iteration.csv      DeepRacer's simtrace of the drive
    trajectory.png                           the drive on the track, coloured by speed

A model the check refuses, or that fails to load, is a `failed` outcome with the reason (a normal result of
the job); anything else that goes wrong propagates and the process exits non-zero, which the server's sandbox
reports. This runs in a worker process with limits, never in the server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.errors import CarFileError, ModelCardError
from contracts.model_card import sha256_file
from contracts.virtual_race import EvaluationJob, EvaluationOutcome, VirtualRaceSpec
from device.errors import ModelError
from device.policy import OnnxPolicy
from firmware_configs import load_car
from virtual_circuit.check import check_submission
from virtual_circuit.errors import VirtualCircuitError

if TYPE_CHECKING:
    from sim.evaluation import EvaluationResult

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
REPLAY_FILE = "replay.json"


class RouteChangedError(VirtualCircuitError, ValueError):
    """The race's route file is not the one the race was made with (its SHA-256 differs)."""


def evaluate_submission(job_path: Path, *, check_only: bool = False) -> EvaluationOutcome:
    """Run the job in `job_path` and write its `result.json`; the outcome it wrote. `check_only`: only the
    upload check (`failed` with the reasons, or `checked`), as the server runs it before queueing."""
    job = EvaluationJob.read(job_path)
    model, card, out_dir = job.resolve(job_path.parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    if check_only:
        outcome = _check(job.spec, model, card)
    else:
        outcome = _evaluate(job.spec, model, card, out_dir, static=not job.checked)
    (out_dir / RESULT_FILE).write_text(outcome.model_dump_json(indent=2) + "\n", encoding="utf-8")
    logger.info("%s: %s%s", job_path, outcome.status, f" ({outcome.reason})" if outcome.reason else "")
    return outcome


def _check(spec: VirtualRaceSpec, model: Path, card: Path, *, static: bool = True) -> EvaluationOutcome:
    problems = check_submission(model, card, spec, static=static)
    if problems:
        return EvaluationOutcome(status="failed", reason="; ".join(problems), model_sha256=_sha256(model))
    return EvaluationOutcome(status="checked", model_sha256=_sha256(model))


def _evaluate(
    spec: VirtualRaceSpec, model: Path, card: Path, out_dir: Path, *, static: bool = True
) -> EvaluationOutcome:
    _check_route(spec)
    checked = _check(spec, model, card, static=static)
    if checked.status == "failed":
        return checked
    try:
        policy_car = load_car(spec.car)
        policy = OnnxPolicy(model, policy_car, card_path=card)
    except (ModelError, ModelCardError, CarFileError) as exc:
        return EvaluationOutcome(status="failed", reason=str(exc), model_sha256=_sha256(model))
    from sim.replay import drive_png, replay_of  # the simulator only here (see `_drive`)

    result = _drive(spec, policy, out_dir)
    png = drive_png(result, out_dir / "trajectory.png", policy_car.vehicle.max_speed_mps)
    replay = replay_of(result, policy_car.vehicle.max_speed_mps)
    (out_dir / REPLAY_FILE).write_text(replay.model_dump_json(), encoding="utf-8")
    return EvaluationOutcome(
        status="finished",
        laps=tuple(lap.to_dict() for lap in result.laps),
        model_sha256=policy.sha256,
        simtrace=str(out_dir / "evaluation-simtrace" / "0-iteration.csv"),
        png=str(png),
    )


def _drive(spec: VirtualRaceSpec, policy: OnnxPolicy, out_dir: Path) -> EvaluationResult:
    """The race's time trial driven by `policy` (its observation and action space from its card)."""
    # the simulator only here: a check-only job (the server's, before queueing) never loads it
    from sim.action_space import parse_action_space
    from sim.drivers import onnx_driver
    from sim.evaluation import evaluate

    card = policy.card
    space = parse_action_space(card.action_space.deepracer, kind=card.action_space.type)
    return evaluate(
        onnx_driver(policy, space),
        track=spec.track,
        car=spec.car,
        rules=spec.race_rules(),
        observation=card.observation.kind,
        action_space=space,
        reverse=spec.reverse,
        seed=spec.seed,
        randomization=spec.randomization,
        out_dir=out_dir,
    )


def _check_route(spec: VirtualRaceSpec) -> None:
    """A race kept as a route file must still be that file: a result must be reproducible later."""
    route = Path(spec.track)
    if spec.route_sha256 is None or route.suffix != ".npy":
        return
    actual = sha256_file(route)
    if actual != spec.route_sha256:
        raise RouteChangedError(
            f"{route}: the route file changed since the race was made (SHA-256 {actual[:12]}..., "
            f"the race's {spec.route_sha256[:12]}...)"
        )


def _sha256(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None
