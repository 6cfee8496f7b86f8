"""`python -m trainer.job [--check] job.json`: a console training job, as the league server's job engine
runs it (`league_server.jobs.engine`, module "trainer.job") in a sandboxed child process; the job folder is
job.json's folder (`trainer.job.folder`).

Exit 0 when out/result.json (or, with `--check`, out/check.json) was written, whether the job finished or
failed with a reason the racer can act on; non-zero when the job itself broke: result.json then still says
`failed` where it can be written, and stderr's last line is the reason.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from trainer.guard import RewardTimeoutAbort

USAGE = "usage: python -m trainer.job [--check] JOB.json"


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()  # progress lines count from here: what the racer waits for includes the imports
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    check_only = args[:1] == ["--check"]
    args = args[1:] if check_only else args
    if len(args) != 1:
        logging.error(USAGE)
        return 2
    job_file = Path(args[0])
    try:
        if check_only:
            from trainer.job.check import check_job

            check_job(job_file)
        else:
            from trainer.job.run import run_training_job

            run_training_job(job_file, t0)
    except Exception as exc:  # noqa: BLE001 - the job broke: say why on the last line, and in result.json
        return _crashed(exc, job_file, check_only)
    except RewardTimeoutAbort as exc:  # a reward function that swallowed its deadline
        return _crashed(exc, job_file, check_only)
    return 0


def _crashed(exc: BaseException, job_file: Path, check_only: bool) -> int:
    text = " ".join(str(exc).split()) or "(no message)"  # one line, whatever the message
    reason = f"the {'recipe check' if check_only else 'training job'} broke: {type(exc).__name__}: {text}"
    logging.getLogger("trainer.job").exception("%s", reason)
    if not check_only:
        _write_failed(job_file, reason)
    sys.stderr.write(reason + "\n")  # stderr's last line: the sandbox reports it
    sys.stderr.flush()
    return 1


def _write_failed(job_file: Path, reason: str) -> None:
    """result.json `failed` with `reason`, unless even that cannot be written (the crash is reported anyway)."""
    from contracts.recipe import TrainingOutcome
    from trainer.job.folder import JobFolder, out_dir_of

    try:
        JobFolder.of(job_file, out_dir_of(job_file)).write_result(
            TrainingOutcome(status="failed", reason=reason)
        )
    except (OSError, ValueError) as exc:
        logging.getLogger("trainer.job").error("cannot write result.json either: %s", exc)


if __name__ == "__main__":
    sys.exit(main())
