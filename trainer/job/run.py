"""`run_training_job(job_file, t0)`: one console training job, start to `result.json`.

    1. read job.json; out/ gets recipe.toml and reward.py (the recipe's reward source)     phase "starting"
    2. torch threads; every heavy module imported and the track built, then `trainer.guard.lock_down`
       (from then on it reads and writes only its folder, besides the libraries and track data it runs on)
    3. the recipe as a RunConfig (`trainer.recipe.run_config`), trained until its stop   phase "training"
    4. exported into out/                                                                 phase "exporting"
    5. the exported model evaluated: evaluation.png, replay.json                         phase "evaluating"
    6. result.json (TrainingOutcome)                                                      phase "done"

Failures a racer can act on (a recipe the simulator cannot build, the reward function's errors and
timeouts, an export that fails) end as result.json `failed` with the reason; anything else propagates to
`trainer.job.__main__`, which still writes a `failed` result.json and exits non-zero.
"""

from __future__ import annotations

import logging
from pathlib import Path

from contracts.errors import ContractError
from contracts.recipe import TrainingJob, TrainingOutcome
from sim.errors import SimError
from trainer.errors import TrainerError
from trainer.job.folder import JobFolder, ProgressFile, out_dir_of
from trainer.job.reasons import JobFailedError, reward_failure

log = logging.getLogger(__name__)

#: errors raised on purpose by the packages a job runs, whose message names what to change; the reward
#: function's are among them (sim's RewardFunctionError, trainer.guard's RewardTimeoutError)
_EXPLAINED = (TrainerError, SimError, ContractError)


def run_training_job(job_file: Path, t0: float) -> TrainingOutcome:
    """Run the job in `job_file` and write its result.json; the outcome written. `t0`: the process's start
    (time.monotonic()), which progress lines count from."""
    try:
        job = TrainingJob.read(job_file)
    except ContractError as exc:
        folder = JobFolder.of(job_file, out_dir_of(job_file))
        return _write(folder, TrainingOutcome(status="failed", reason=str(exc)))
    folder = JobFolder.of(job_file, job.out_dir)
    folder.clear_previous_attempt()
    folder.write_inputs(job)
    progress = ProgressFile(folder.progress, t0)
    try:
        progress.phase("starting")
        outcome = _attempt(job, folder, progress)
    except JobFailedError as exc:
        outcome = TrainingOutcome(status="failed", reason=exc.reason, line=exc.line)
    except _EXPLAINED as exc:
        outcome = _failed(exc, folder)
    finally:
        progress.close()
    return _write(folder, outcome)


def _attempt(job: TrainingJob, folder: JobFolder, progress: ProgressFile) -> TrainingOutcome:
    import torch

    from trainer.guard import lock_down
    from trainer.job.preload import preload, read_after_lock, warm_track

    torch.set_num_threads(job.torch_threads)
    preload(job.recipe.observation)
    warm_track(job.recipe)
    # from here: reads only of the job folder, the libraries and read_after_lock(); writes only in the job
    # folder; no network, no subprocesses
    lock_down(folder.root, read_also=read_after_lock())
    from trainer.job.finish import evaluate_export, export, finished
    from trainer.job.training import train_job
    from trainer.recipe import run_config

    config = run_config(job.recipe, folder.reward, n_envs=job.n_envs)
    trained = train_job(config, job, folder, progress)
    log.info(
        "trained %d car-steps in %.1f s (stopped by %s)",
        trained.steps,
        trained.training_s,
        trained.stopped_by,
    )
    progress.phase("exporting")
    exported = export(trained, folder)
    progress.phase("evaluating")
    evaluation = evaluate_export(folder)
    outcome = finished(trained, exported, evaluation, folder.out)
    clean = sum(1 for lap in evaluation.laps if lap.completed and lap.offtrack == 0 and lap.resets == 0)
    progress.phase("done", eval_clean_laps=clean, best_eval_lap_s=outcome.best_eval_lap_s)
    return outcome


def _failed(exc: Exception, folder: JobFolder) -> TrainingOutcome:
    """A `failed` outcome: the reward function's fault (the reason names its line), or an error raised on
    purpose whose message says what to change."""
    found = reward_failure(exc, folder.reward)
    if found is not None:
        reason, line = found
        return TrainingOutcome(status="failed", reason=reason, line=line)
    return TrainingOutcome(status="failed", reason=str(exc))


def _write(folder: JobFolder, outcome: TrainingOutcome) -> TrainingOutcome:
    folder.write_result(outcome)
    log.info(
        "%s: %s%s",
        folder.job_file,
        outcome.status,
        f" ({outcome.reason.splitlines()[0]})" if outcome.reason else "",
    )
    return outcome
