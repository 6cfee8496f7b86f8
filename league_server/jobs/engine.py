"""Where evaluation jobs run: local worker processes (the default) or a Ray cluster (scale-out).

A job is a folder the server wrote: `job.json` (`contracts.virtual_race.EvaluationJob`, relative paths) beside
the upload. Running it means `python -m virtual_circuit.job job.json` in the sandbox (`run_limited`) with the
race's limits; it leaves `out/result.json` (and the simtrace and PNG) in the folder. Both engines run exactly
that, so a job behaves the same wherever it runs:

    engine = LocalWorkers(2)                    # or RayWorkers("ray://head:10001") / RayWorkers("127.0.0.1:6379")
    future = engine.submit(job_dir, limits)     # concurrent.futures.Future[JobRun]
    run = future.result()                       # run.outcome: result.json's dict, or run.failure: why not

Local workers are threads that each wait on one child process: the jobs themselves are processes, so a
crash, hang or runaway allocation ends only its own. On Ray, a task receives the job folder's files, runs the
job in a temporary folder on its node and returns the files the job wrote: the nodes need pitlane installed,
not a filesystem shared with the server. This module never imports the simulator: the job command does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from league_server.errors import ConfigError
from league_server.jobs.sandbox import Limits, SandboxResult, run_limited

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
OUT_DIR = "out"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class JobRun:
    """How one job ended: the sandbox's account, and `result.json` as the job wrote it (None when it did not:
    the process crashed or was stopped)."""

    job_dir: Path
    sandbox: SandboxResult
    outcome: dict[str, Any] | None

    @property
    def failure(self) -> str | None:
        """Why the job has no laps, in a sentence for the racer (None: it finished)."""
        if self.outcome is None:
            return f"the evaluation {self.sandbox.reason or 'wrote no result'}"
        if self.outcome.get("status") not in ("finished", "checked"):
            return str(self.outcome.get("reason") or "the evaluation failed")
        return None


def job_command(job_file: Path, *, check_only: bool = False) -> list[str]:
    """The command that runs one job (`check_only`: only its upload check), with this interpreter (the one
    pitlane is installed in)."""
    return [sys.executable, "-m", "virtual_circuit.job", *(["--check"] if check_only else []), str(job_file)]


def run_job(job_dir: Path, limits: Limits, *, check_only: bool = False) -> JobRun:
    """Run the job in `job_dir` in the sandbox and read what it wrote."""
    job_dir = Path(job_dir)
    result_path = job_dir / OUT_DIR / RESULT_FILE
    result_path.unlink(missing_ok=True)  # a job run again (after a restart) must not read its last result
    command = job_command((job_dir / JOB_FILE).resolve(), check_only=check_only)
    sandbox = run_limited(command, limits, cwd=job_dir)
    outcome = None
    if result_path.is_file():
        try:
            outcome = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable result (%s)", result_path, exc)
    return JobRun(job_dir, sandbox, outcome)


def default_worker_count() -> int:
    """Cores minus one (the server keeps one), at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


class LocalWorkers:
    """Runs up to `count` jobs at once on this machine, each in its own sandboxed process."""

    def __init__(self, count: int | None = None) -> None:
        self.count = default_worker_count() if count is None else count
        if self.count < 1:
            raise ConfigError(f"workers: expected at least 1 local worker, got {self.count}")
        self._pool = ThreadPoolExecutor(max_workers=self.count, thread_name_prefix="pitlane-job")

    @property
    def capacity(self) -> int:
        """Jobs that run at once."""
        return self.count

    def submit(self, job_dir: Path, limits: Limits) -> Future[JobRun]:
        return self._pool.submit(run_job, Path(job_dir), limits)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"{self.count} local worker process{'es' if self.count != 1 else ''}"


class RayWorkers:
    """Runs jobs as Ray tasks on the cluster at `address` (`ray://HOST:PORT`, or `HOST:PORT` of a head this
    machine can reach); one CPU per task, so Ray's scheduler places them."""

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                f"workers {address}: Ray is not installed: pip install 'pitlane[scale]' (or ray)"
            ) from None
        self.address = address
        if not ray.is_initialized():
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        self._task = ray.remote(num_cpus=1, max_retries=0)(_run_packed_job)
        #: jobs that run at once: one per CPU of the cluster (Ray queues any beyond)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def submit(self, job_dir: Path, limits: Limits) -> Future[JobRun]:
        job_dir = Path(job_dir)
        ray_future = self._task.remote(_pack(job_dir), limits).future()
        return _then(ray_future, lambda files: _unpack(job_dir, files))

    def close(self) -> None:
        import ray

        ray.shutdown()

    def describe(self) -> str:
        return f"Ray at {self.address}"


def make_engine(workers: str | int | None) -> LocalWorkers | RayWorkers:
    """`workers`: a count of local worker processes (None: cores - 1), or a Ray address (`ray://...` or
    `HOST:PORT`); `RAY_ADDRESS` in the environment picks Ray when `workers` is None."""
    if workers is None and os.environ.get("RAY_ADDRESS"):
        return RayWorkers(os.environ["RAY_ADDRESS"])
    if workers is None or isinstance(workers, int) or str(workers).isdigit():
        return LocalWorkers(None if workers is None else int(workers))
    return RayWorkers(str(workers))


# ---------------------------------------------------------------------------------------------- Ray side


def _pack(job_dir: Path) -> dict[str, bytes]:
    """The job folder's files (not its output) by relative path."""
    return {
        str(p.relative_to(job_dir)): p.read_bytes()
        for p in sorted(job_dir.rglob("*"))
        if p.is_file() and p.relative_to(job_dir).parts[0] != OUT_DIR
    }


def _run_packed_job(files: dict[str, bytes], limits: Limits) -> tuple[SandboxResult, dict[str, bytes]]:
    """On a Ray node: the job in a temporary folder; (the sandbox's account, the files it wrote)."""
    with tempfile.TemporaryDirectory(prefix="pitlane-job-") as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        run = run_job(folder, limits)
        out = folder / OUT_DIR
        written = {str(p.relative_to(folder)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        return run.sandbox, written


def _unpack(job_dir: Path, packed: tuple[SandboxResult, dict[str, bytes]]) -> JobRun:
    """Back on the server: the files the job wrote, into its folder (paths kept inside it)."""
    sandbox, written = packed
    root = job_dir.resolve()
    for name, data in written.items():
        path = (job_dir / name).resolve()
        if root not in path.parents:
            log.warning("%s: a Ray job returned a file outside its folder (%s); dropped", job_dir, name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    result_path = job_dir / OUT_DIR / RESULT_FILE
    outcome = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
    return JobRun(job_dir, sandbox, outcome)


def _then(source: Future[Any], convert: Callable[[Any], JobRun]) -> Future[JobRun]:
    """A future of `convert(source's result)` (or of its exception)."""
    target: Future[JobRun] = Future()

    def done(f: Future[Any]) -> None:
        try:
            target.set_result(convert(f.result()))
        except Exception as exc:  # noqa: BLE001 — any failure of the task belongs to the caller's future
            target.set_exception(exc)

    source.add_done_callback(done)
    return target
