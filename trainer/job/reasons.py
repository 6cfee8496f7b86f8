"""What a job's failures mean to a racer: (reason, line) when the reward function is at fault.

A racer's reward function runs in the job's process, once per car per step. Its errors
(`sim.errors.RewardFunctionError`) name the line already; one that never returns (an endless `while`) is cut
by `trainer.guard.deadline` (`trainer.job.deadline_env` puts one around each training step; `--check` one
around the whole check), and the reason then names the line it was stuck on. The file is called `reward.py`
in every reason, not by its path on the worker.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import RewardFunctionError
from trainer.errors import TrainerError
from trainer.guard import RewardTimeoutError

#: seconds one step of all training cars may take. A step of 64 cars (64 reward calls, the physics, the
#: observations) takes 5-20 ms on a laptop core; 10 s is ~500 times that, so a slow or busy machine never
#: meets it, only a reward function that does not return, and finding out costs a racer at most 10 s of CPU.
STEP_DEADLINE_S = 10.0
#: how a job names the reward file to the racer (the recipe's `reward_function`)
REWARD_NAME = "reward.py"


class JobFailedError(TrainerError, RuntimeError):
    """A job that ends as `failed` with `reason` (and the reward file's `line` when that was the cause)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def is_deadline(exc: BaseException | None) -> bool:
    """Whether `exc` is `trainer.guard.deadline`'s timeout (not a TimeoutError the function raised itself)."""
    return isinstance(exc, RewardTimeoutError)


def reward_failure(
    exc: BaseException, reward_file: Path, *, seconds: float = STEP_DEADLINE_S
) -> tuple[str, int | None] | None:
    """(reason, line of the reward file) when `exc` is the reward function's fault, else None; `seconds`:
    the deadline that was in force. A deadline that fires inside the function arrives as the
    RewardFunctionError the reward file's wrapper makes of it (`sim.reward.python_file`), with its line."""
    path = str(reward_file.resolve())
    if isinstance(exc, RewardFunctionError):
        line = getattr(exc, "lineno", None)
        if is_deadline(exc.__cause__):
            return timeout_reason(seconds, line), line
        return str(exc).replace(path, REWARD_NAME), line
    return None  # a deadline that fired outside the function (the simulator's own code) names no line


def timeout_reason(seconds: float, line: int | None) -> str:
    where = f" (line {line} of {REWARD_NAME})" if line is not None else ""
    return (
        f"reward_function did not return within {seconds:g} s{where}: does a loop never end? "
        "A call should take microseconds"
    )
