"""Where jobs run: local worker processes (the default) or a Ray cluster (scale-out).

A job is a folder the server wrote: `job.json` beside its inputs. Running it means `python -m <module>
job.json` in the sandbox (`run_limited`) with the job's limits: `virtual_circuit.job` for a virtual race's
evaluation (`contracts.virtual_race.EvaluationJob`), `trainer.job` for a console training job
(`contracts.recipe.TrainingJob`). It leaves `out/result.json` (and its other files) in the folder; a long job
also appends JSON lines to `out/progress.jsonl`, which reach `on_progress` while it runs. Both engines run
exactly that, so a job behaves the same wherever it runs:

    engine = LocalWorkers(2)                    # or RayWorkers("ray://head:10001") / RayWorkers("127.0.0.1:6379")
    future = engine.submit(job_dir, limits, module="trainer.job", on_progress=print)
    run = future.result()                       # run.outcome: result.json's dict, or run.failure: why not

Local workers are threads that each wait on one child process: the jobs themselves are processes, so a
crash, hang or runaway allocation ends only its own. On Ray, a task receives the job folder's files, runs the
job in a temporary folder on its node and returns the files the job wrote: the nodes need pitlane installed,
not a filesystem shared with the server; progress lines come back as they are written (a streaming task
that yields them), and the server appends them to its own copy of `out/progress.jsonl`. This module never
imports the simulator or the trainer: the job command does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
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
PROGRESS_FILE = "progress.jsonl"
#: a job folder's file that asks a training job to stop early (it exports what it has learned)
STOP_FILE = "STOP"
EVALUATION = "virtual_circuit.job"
TRAINING = "trainer.job"
#: seconds between looks at a running job's progress file
PROGRESS_POLL_S = 0.5

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class JobRun:
    """How one job ended: the sandbox's account, and `result.json` as the job wrote it (None when it did not:
    the process crashed or was stopped)."""

    job_dir: Path
    sandbox: SandboxResult
    outcome: dict[str, Any] | None

    @property
    def failure(self) -> str | None:
        """Why the job has no result, in a sentence for the racer (None: it finished)."""
        if self.outcome is None:
            return f"the job {self.sandbox.reason or 'wrote no result'}"
        if self.outcome.get("status") not in ("finished", "checked"):
            return str(self.outcome.get("reason") or "the job failed")
        return None


def job_command(job_file: Path, *, module: str = EVALUATION, check_only: bool = False) -> list[str]:
    """The command that runs one job (`check_only`: only its check), with this interpreter (the one pitlane
    is installed in)."""
    return [sys.executable, "-m", module, *(["--check"] if check_only else []), str(job_file)]


def run_job(
    job_dir: Path,
    limits: Limits,
    *,
    module: str = EVALUATION,
    check_only: bool = False,
    result: str = RESULT_FILE,
) -> JobRun:
    """Run the job in `job_dir` in the sandbox and read what it wrote to `out/<result>`."""
    job_dir = Path(job_dir)
    result_path = job_dir / OUT_DIR / result
    result_path.unlink(missing_ok=True)  # a job run again (after a restart) must not read its last result
    command = job_command((job_dir / JOB_FILE).resolve(), module=module, check_only=check_only)
    sandbox = run_limited(command, limits, cwd=job_dir)
    outcome = None
    if result_path.is_file():
        try:
            outcome = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable result (%s)", result_path, exc)
    return JobRun(job_dir, sandbox, outcome)


class ProgressTail:
    """Reads the whole JSON lines a job has appended to its progress file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def new_lines(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        out = []
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                log.warning("%s: a progress line that is not JSON, skipped", self.path)
                continue
            if isinstance(item, dict):
                out.append(item)
        return out


def run_job_following(
    job_dir: Path, limits: Limits, module: str, on_progress: ProgressCallback | None
) -> JobRun:
    """`run_job`, passing each progress line the job appends to `on_progress` as it comes."""
    if on_progress is None:
        return run_job(job_dir, limits, module=module)
    for kind, payload in _follow(job_dir, limits, module):
        if kind == "progress":
            _deliver(on_progress, payload)
        else:
            return payload
    raise AssertionError("a followed job ends with its run")  # _follow always ends with ("done", run)


def _follow(job_dir: Path, limits: Limits, module: str) -> Iterator[tuple[str, Any]]:
    """("progress", line) while the job runs, then ("done", JobRun)."""
    progress = Path(job_dir) / OUT_DIR / PROGRESS_FILE
    progress.unlink(missing_ok=True)
    tail = ProgressTail(progress)
    finished: list[JobRun] = []
    runner = threading.Thread(
        target=lambda: finished.append(run_job(job_dir, limits, module=module)), name="pitlane-job-run"
    )
    runner.start()
    while runner.is_alive():
        runner.join(PROGRESS_POLL_S)
        for line in tail.new_lines():
            yield "progress", line
    for line in tail.new_lines():
        yield "progress", line
    if not finished:  # run_job raised (the sandbox could not start the program): say so as a run would
        raise RuntimeError(f"{job_dir}: the job could not be started")
    yield "done", finished[0]


def _deliver(on_progress: ProgressCallback, line: dict[str, Any]) -> None:
    try:
        on_progress(line)
    except Exception:
        log.exception("a progress listener failed")


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

    def submit(
        self,
        job_dir: Path,
        limits: Limits,
        *,
        module: str = EVALUATION,
        on_progress: ProgressCallback | None = None,
    ) -> Future[JobRun]:
        return self._pool.submit(run_job_following, Path(job_dir), limits, module, on_progress)

    def request_stop(self, job_dir: Path) -> bool:
        """Ask the training job in `job_dir` to stop early (it sees the file, exports and ends); True."""
        (Path(job_dir) / STOP_FILE).touch()
        return True

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
        # A streaming task: it yields each progress line as the job writes it, then the files it wrote.
        self._task = ray.remote(num_cpus=1, max_retries=0, num_returns="streaming")(_run_packed_job)
        #: jobs that run at once: one per CPU of the cluster (Ray queues any beyond)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._readers = ThreadPoolExecutor(thread_name_prefix="pitlane-ray-job")
        self._running: dict[Path, Any] = {}

    def submit(
        self,
        job_dir: Path,
        limits: Limits,
        *,
        module: str = EVALUATION,
        on_progress: ProgressCallback | None = None,
    ) -> Future[JobRun]:
        job_dir = Path(job_dir)
        generator = self._task.remote(_pack(job_dir), limits, module)
        self._running[job_dir] = generator
        return self._readers.submit(self._read, job_dir, generator, on_progress)

    def _read(self, job_dir: Path, generator: Any, on_progress: ProgressCallback | None) -> JobRun:
        """Back on the server: progress lines into the job folder's own copy (and `on_progress`), then the
        files the job wrote."""
        import ray

        progress = job_dir / OUT_DIR / PROGRESS_FILE
        progress.parent.mkdir(parents=True, exist_ok=True)
        progress.unlink(missing_ok=True)
        try:
            for ref in generator:
                kind, payload = ray.get(ref)
                if kind == "done":
                    return _unpack(job_dir, payload)
                with progress.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(payload) + "\n")
                if on_progress is not None:
                    _deliver(on_progress, payload)
        finally:
            self._running.pop(job_dir, None)
        raise RuntimeError(f"{job_dir}: the Ray task ended without the job's files")

    def request_stop(self, job_dir: Path) -> bool:
        """A Ray job runs in a folder on its node, out of reach of a stop file: it is cancelled instead, and
        ends without a model. True when a running task was cancelled."""
        import ray

        generator = self._running.get(Path(job_dir))
        if generator is None:
            return False
        ray.cancel(generator)
        return True

    def close(self) -> None:
        import ray

        self._readers.shutdown(wait=False, cancel_futures=True)
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


def _run_packed_job(files: dict[str, bytes], limits: Limits, module: str) -> Iterator[tuple[str, Any]]:
    """On a Ray node: the job in a temporary folder; yields ("progress", line) as the job writes them, then
    ("done", (the sandbox's account, the files it wrote))."""
    with tempfile.TemporaryDirectory(prefix="pitlane-job-") as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for kind, payload in _follow(folder, limits, module):
            if kind == "progress":
                yield kind, payload
                continue
            out = folder / OUT_DIR
            written = {str(p.relative_to(folder)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
            yield "done", (payload.sandbox, written)


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
