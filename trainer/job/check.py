"""`python -m trainer.job --check job.json`: is the job's recipe trainable? Written to out/check.json
(`RecipeCheck`) before anything trains, so the console shows each problem at its field (the reward function's
at its line).

Checked: the job file is a valid TrainingJob (each invalid key a problem), the track and the car exist, the
recipe makes a run config (`trainer.recipe.run_config`: observation, action space, algorithm), every action
is within the car's steering and speed limits, and the reward function compiles and runs on a few hundred
realistic params (`sim.reward.check.check_reward_file`, as `pitlane reward check`: the first failure names
its line), all within `CHECK_DEADLINE_S`. Never imports torch: it answers the console within a second or two.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from contracts.car_file import CarConfig
from contracts.errors import ContractError
from contracts.recipe import ProblemAt, Recipe, RecipeCheck
from trainer.job.folder import JobFolder, job_problems, out_dir_of
from trainer.job.reasons import REWARD_NAME, is_deadline, reward_failure, timeout_reason

log = logging.getLogger(__name__)

#: seconds the reward check may take: its ~480 calls of a reasonable function take milliseconds, and even
#: 10 ms a call (which would make training crawl) fits; only a function that does not return meets it
CHECK_DEADLINE_S = 10.0


def check_job(job_file: Path) -> RecipeCheck:
    """Check the job in `job_file`; writes and returns out/check.json's RecipeCheck."""
    job, problems = job_problems(job_file)
    folder = JobFolder.of(job_file, job.out_dir if job is not None else out_dir_of(job_file))
    if job is None:
        check = RecipeCheck(ok=False, problems=tuple(problems))
    else:
        folder.write_inputs(job)
        check = check_recipe(job.recipe, folder)
    folder.write_check(check)
    log.info("%s: %s", job_file, "ok" if check.ok else f"{len(check.problems)} problem(s)")
    return check


def check_recipe(recipe: Recipe, folder: JobFolder) -> RecipeCheck:
    """The problems of `recipe`, whose reward source is in `folder.reward`; the reward run only when the track
    and the car load (the check drives on them)."""
    from firmware_configs import load_car
    from sim.errors import SimError
    from sim.reward.check import check_reward_file, realistic_params
    from sim.tracks import load_track
    from trainer.errors import RunConfigError, TrainerError
    from trainer.guard import deadline, lock_down
    from trainer.job.preload import read_after_lock
    from trainer.recipe import run_config

    problems: list[ProblemAt] = []
    car: CarConfig | None = None
    try:
        track = load_track(recipe.track)
    except SimError as exc:
        problems.append(ProblemAt(field="track", message=str(exc)))
    try:
        car = load_car(recipe.car)
    except (ContractError, ValueError) as exc:
        problems.append(ProblemAt(field="car", message=str(exc)))
    drivable = not problems
    if drivable:  # the track's geometry built (or read from its cache, outside the folder) before the lock
        realistic_params(track, recipe.car, n_cars=2, steps=2)
    # from here: reads only of the job folder, the libraries and read_after_lock(); writes only in the job
    # folder; no network, no subprocesses
    lock_down(folder.root, read_also=read_after_lock())
    try:
        run_config(recipe, folder.reward)
    except (RunConfigError, SimError) as exc:
        problems.append(ProblemAt(field="recipe", message=str(exc)))
    if car is not None:
        problems += action_problems(recipe, car)
    summary: dict[str, Any] | None = None
    if drivable:
        try:
            with deadline(CHECK_DEADLINE_S, "the reward check"):
                report = check_reward_file(folder.reward, recipe.track, recipe.car)
            summary = {**report.summary(), "file": REWARD_NAME}
        except (SimError, TrainerError) as exc:  # RewardFunctionError, trainer.guard's RewardTimeoutError
            problems.append(_reward_problem(exc, folder.reward))
    return RecipeCheck(ok=not problems, problems=tuple(problems), reward_summary=summary)


def _reward_problem(exc: Exception, reward: Path) -> ProblemAt:
    """The reward check's failure at `reward_function`, with the line when the function was at fault."""
    found = reward_failure(exc, reward, seconds=CHECK_DEADLINE_S)
    if found is not None:
        return ProblemAt(field="reward_function", message=found[0], line=found[1])
    if is_deadline(exc):  # the deadline fired between calls: a function that returns, slowly
        return ProblemAt(field="reward_function", message=timeout_reason(CHECK_DEADLINE_S, None))
    return ProblemAt(field="reward_function", message=f"the reward check could not run: {exc}")


def action_problems(recipe: Recipe, car: CarConfig) -> list[ProblemAt]:
    """Actions beyond what `car` can do (its steering lock, its top speed): the simulator would clip them,
    so two actions could drive the same."""
    steer_deg, top_mps = car.vehicle.max_steer_deg, car.vehicle.max_speed_mps
    space = recipe.action_space
    if isinstance(space, tuple):
        bounds = [
            (f"action_space.{i}", a.steering_angle, a.steering_angle, a.speed) for i, a in enumerate(space)
        ]
    else:
        bounds = [("action_space", space.steering_angle.low, space.steering_angle.high, space.speed.high)]
    problems = []
    for where, low_deg, high_deg, speed in bounds:
        if max(abs(low_deg), abs(high_deg)) > steer_deg:
            problems.append(ProblemAt(field=f"{where}.steering_angle", message=(
                f"steering {max(abs(low_deg), abs(high_deg)):g} degrees is beyond the {car.car.name} car's "
                f"{steer_deg:g} degree lock")))  # fmt: skip
        if speed > top_mps:
            problems.append(ProblemAt(field=f"{where}.speed", message=(
                f"{speed:g} m/s is above the {car.car.name} car's top speed, {top_mps:g} m/s")))  # fmt: skip
    return problems
