"""Run an untrusted job (evaluating a racer's ONNX model, training with a racer's reward function) in a child
process with limits on CPU time, memory, file size and wall-clock time, at a lower CPU priority, without the
server's secrets and without network, so a job that crashes, hangs, eats memory or misbehaves fails alone and
the league server keeps serving.

`run_limited(argv, limits)` starts `argv` in a session (and process group) of its own with kernel resource
limits and its niceness set before exec, in an environment reduced to what a job needs (`job_environment`,
which also keeps onnxruntime's telemetry and OpenBLAS's worker threads from starting), inside a new user +
network namespace when the machine allows it (`unshare`: the job sees only a loopback device that is down,
so it reaches nothing, not even the server on 127.0.0.1). It waits at most `limits.wall_s`, kills the whole
process group when the time is up and returns a `SandboxResult` that says how the job ended, in a sentence a
racer can act on.

Linux only (the `resource` module and `os.waitid`); elsewhere `run_limited` raises `SandboxError`.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Literal

from league_server.errors import ConfigError, SandboxError

try:
    import resource
except ImportError:  # Windows: this module stays importable, run_limited refuses to run
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

StoppedBy = Literal["cpu", "memory", "file", "wall"]

# How much of each output stream a result keeps (bytes, from the end).
TAIL_BYTES = 4096
# Open files a job may hold: plenty for a model, the simulator and their libraries; stops a descriptor leak.
NOFILE_LIMIT = 256
# The kernel sends SIGXCPU at the soft CPU limit; the hard limit (SIGKILL) follows this many seconds later
# for a job that catches or ignores SIGXCPU.
CPU_HARD_GRACE_S = 2
# Waiting for the child: the poll interval starts small (a quick job returns quickly) and grows to this.
MAX_POLL_S = 0.05
# A job killed by a signal whose peak resident memory reached this share of the limit ran out of memory.
MEMORY_SIGNAL_SHARE = 0.9
# What allocators print when an allocation fails (matched lower-case in stderr): Python, C++ (onnxruntime,
# uncaught: "terminate called after throwing an instance of 'std::bad_alloc'"), libc/OS errors, numpy.
MEMORY_MARKERS = (
    "memoryerror",
    "std::bad_alloc",
    "cannot allocate memory",
    "failed to allocate memory",
    "unable to allocate",
    "out of memory",
)
# Signals a failed allocation ends in when nobody reports it: abort() from an allocator, a NULL or
# unmapped pointer used after a failed mmap.
MEMORY_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS)
MIB = 1024 * 1024
# What the kernel or Python says when a write passes RLIMIT_FSIZE (Python ignores SIGXFSZ and gets EFBIG).
FILE_SIZE_MARKERS = ("file too large",)
# What a job's environment keeps of the server's: what programs, locales, Python and the numeric libraries'
# thread pools need, and where pitlane keeps tracks and caches. Everything else (PITLANE_ADMIN_TOKEN,
# PITLANE_DATABASE_URL, PITLANE_MQTT_PASSWORD, cloud credentials) stays with the server.
KEPT_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "LD_LIBRARY_PATH",
        "PITLANE_HOME",
        "PITLANE_CACHE_DIR",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
    }
)
KEPT_PREFIXES = ("LC_", "PYTHON", "OMP_", "MKL_", "OPENBLAS_")
# Set for every job unless our own variables (the kept ones) or the job's say otherwise: no thread a job's
# libraries start before `trainer.guard.lock_down`, which Landlock does not cover on kernels without TSYNC
# (ABI < 8). onnxruntime (1.2x on Linux) otherwise starts a telemetry thread when imported, which resolves
# Microsoft's collector host and keeps a database open in ~/.cache/Microsoft, outside the job folder;
# OpenBLAS (numpy's, scipy's) a worker thread per core, for matrices far larger than a job's (the training
# rate was the same with one: 2243 car-steps/s either way).
JOB_DEFAULTS = {"ORT_DISABLE_TELEMETRY": "1", "OPENBLAS_NUM_THREADS": "1"}
# util-linux's unshare: a new user namespace (so no privilege is needed) holding a new network namespace.
# --map-current-user keeps the job's uid (no capabilities after exec unless it is root); util-linux < 2.38
# has only --map-root-user.
UNSHARE_CHOICES = (
    ("--user", "--map-current-user", "--net", "--"),
    ("--user", "--map-root-user", "--net", "--"),
)


@dataclass(frozen=True)
class Limits:
    """What one job may use: `cpu_s` seconds of CPU time (user + system), `memory_mb` MiB of address space,
    `wall_s` seconds of real time, `file_mb` MiB for the largest file it writes; it runs `nice` steps below
    the server's CPU priority (0..19: the server's requests keep their latency while jobs train) and, unless
    `network`, in a network namespace of its own (no network at all)."""

    cpu_s: float
    memory_mb: int
    wall_s: float
    file_mb: int = 1024
    nice: int = 10
    network: bool = False

    def __post_init__(self) -> None:
        for field in ("cpu_s", "memory_mb", "wall_s", "file_mb"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"Limits.{field} must be a positive number, got {value!r}")
        if isinstance(self.nice, bool) or not isinstance(self.nice, int) or not 0 <= self.nice <= 19:
            raise ConfigError(f"Limits.nice must be a whole number from 0 to 19, got {self.nice!r}")
        if not isinstance(self.network, bool):
            raise ConfigError(f"Limits.network must be true or false, got {self.network!r}")


@dataclass(frozen=True)
class SandboxResult:
    """How a job ended.

    returncode: the child's exit code, negative signal number when a signal ended it (as in `subprocess`),
        None when it was killed for the wall clock.
    stopped_by: which limit ended the job, None when none did (it exited on its own or crashed).
    reason: None when the child exited 0; else one sentence a racer can act on.
    stdout_tail, stderr_tail: the last `TAIL_BYTES` bytes of each stream, decoded as UTF-8 (bad bytes replaced).
    wall_s: real time from start to reaping; cpu_s: user + system CPU seconds of the child and the descendants
        it waited for.
    """

    returncode: int | None
    stopped_by: StoppedBy | None
    reason: str | None
    stdout_tail: str
    stderr_tail: str
    wall_s: float
    cpu_s: float


def run_limited(
    argv: list[str], limits: Limits, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> SandboxResult:
    """Run `argv` under `limits` and return how it ended; never raises for anything the job does.

    `cwd` is the job's working directory (default: ours). Its environment is `job_environment(env)`: the
    few variables of ours a job needs plus `env` (the job's own). Its stdin is /dev/null. Every process the
    job started is killed when it ends or times out. Raises `SandboxError` when the platform has no resource
    limits or the program cannot be started.
    """
    if resource is None:
        raise SandboxError("run_limited needs the `resource` module (Linux); this platform has none")
    if not argv:
        raise SandboxError("run_limited: argv is empty, expected the program and its arguments")
    if shutil.which(argv[0]) is None:
        # Checked here: behind `unshare` a missing program would be unshare's failure, not Popen's.
        raise SandboxError(f"could not start {_describe(argv)}: no such program (or it is not executable)")
    rlimits = _rlimits(limits)
    prefix = [] if limits.network else network_namespace_prefix()
    log.info(
        "sandbox: running %s (limits: %g s CPU, %d MiB memory, %g s wall, %d MiB files, nice %d, %s)",
        _describe(argv),
        limits.cpu_s,
        limits.memory_mb,
        limits.wall_s,
        limits.file_mb,
        limits.nice,
        "network" if limits.network else "no network" if prefix else "network (no namespace available)",
    )
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started_s = time.monotonic()
        proc = _start(prefix + argv, rlimits, limits.nice, cwd, job_environment(env), stdout, stderr)
        timed_out, status, rusage = _wait(proc, limits.wall_s)
        wall_s = time.monotonic() - started_s
        stdout_tail, stderr_tail = _tail(stdout), _tail(stderr)
    returncode = None if timed_out else os.waitstatus_to_exitcode(status)
    cpu_s = rusage.ru_utime + rusage.ru_stime
    # ru_maxrss is in KiB on Linux.
    peak_rss_mb = rusage.ru_maxrss / 1024
    stopped_by = _classify(returncode, stderr_tail, limits, cpu_s, peak_rss_mb)
    reason = _reason(returncode, stopped_by, stderr_tail, limits)
    log.info(
        "sandbox: pid %d ended after %.2f s wall, %.2f s CPU: %s",
        proc.pid,
        wall_s,
        cpu_s,
        reason or "exited 0",
    )
    return SandboxResult(returncode, stopped_by, reason, stdout_tail, stderr_tail, wall_s, cpu_s)


def job_environment(own: dict[str, str] | None = None) -> dict[str, str]:
    """A job's environment: `JOB_DEFAULTS`, then ours reduced to `KEPT_VARIABLES` and `KEPT_PREFIXES`, then
    `own` (the job's own variables, which win)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name in KEPT_VARIABLES or name.startswith(KEPT_PREFIXES)
    }
    return {**JOB_DEFAULTS, **kept, **(own or {})}


@cache
def network_namespace_prefix() -> list[str]:
    """The command prefix that runs a job in a new (empty) network namespace, found once per process by
    trying it; [] with a warning when this machine allows none (no unshare, user namespaces disabled): jobs
    then run with the machine's network, and only the trainer's guard (Landlock, the audit hook) refuses
    sockets."""
    unshare = shutil.which("unshare")
    if unshare is None:
        log.warning("sandbox: no `unshare` program (util-linux); jobs run with the machine's network")
        return []
    failure = ""
    for options in UNSHARE_CHOICES:
        command = [unshare, *options]
        try:
            probe = subprocess.run([*command, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("sandbox: %s could not run (%s); jobs run with the machine's network", unshare, exc)
            return []
        if probe.returncode == 0:
            log.info("sandbox: jobs run without network (%s)", shlex.join(command))
            return command
        failure = probe.stderr.decode(errors="replace").strip()
    log.warning(
        "sandbox: this machine allows no network namespace (%s); jobs run with the machine's network",
        failure,
    )
    return []


def _describe(argv: list[str], max_chars: int = 300) -> str:
    """`argv` as a shell command line for the log, cut to `max_chars` (a `-c` script can be long)."""
    line = shlex.join(argv)
    return line if len(line) <= max_chars else line[: max_chars - 3] + "..."


def _rlimits(limits: Limits) -> list[tuple[int, tuple[int, int]]]:
    """(resource, (soft, hard)) for the child, computed here so the child between fork and exec only makes
    setrlimit calls. No limit is raised above our own hard limit (an unprivileged process cannot)."""
    cpu_soft_s = math.ceil(limits.cpu_s)
    # RLIMIT_AS caps address space (everything mapped), not resident memory. It is the limit that reliably
    # stops a runaway allocation: the failing malloc/mmap returns an error in the job itself (MemoryError,
    # std::bad_alloc) at once, whereas RLIMIT_RSS is ignored by Linux and a resident-memory watchdog only
    # notices after the machine is already short. The cost: allocators and thread stacks reserve address space
    # they never touch, so the limit must be set with headroom above the job's real working set.
    wanted = [
        (resource.RLIMIT_CPU, cpu_soft_s, cpu_soft_s + CPU_HARD_GRACE_S),
        (resource.RLIMIT_AS, limits.memory_mb * MIB, limits.memory_mb * MIB),
        (resource.RLIMIT_CORE, 0, 0),
        # The largest file the job may write (its stdout and stderr too): a runaway writer fills no disk.
        (resource.RLIMIT_FSIZE, limits.file_mb * MIB, limits.file_mb * MIB),
        (resource.RLIMIT_NOFILE, NOFILE_LIMIT, NOFILE_LIMIT),
    ]
    return [(which, _within_hard(which, soft, hard)) for which, soft, hard in wanted]


def _within_hard(which: int, soft: int, hard: int) -> tuple[int, int]:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    return soft, hard


def _start(
    argv: list[str],
    rlimits: list[tuple[int, tuple[int, int]]],
    nice: int,
    cwd: Path | None,
    env: dict[str, str],
    stdout: IO[bytes],
    stderr: IO[bytes],
) -> subprocess.Popen[bytes]:
    """Start the child in a new session (its own process group, so one killpg reaches everything it started)
    with `rlimits` and `nice` set before exec. Output goes to files, not pipes: a job writing more than a pipe
    holds would block while we wait for it."""

    def set_limits() -> None:
        # Runs in the forked child before exec: only setrlimit and nice system calls, no locks, no threads, no
        # logging, so it is safe even though the server that forked has threads.
        for which, soft_hard in rlimits:
            resource.setrlimit(which, soft_hard)
        if nice:
            os.nice(nice)

    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=set_limits,  # the limits must hold from the first instruction: set before exec
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"could not start {_describe(argv)} (cwd {cwd or os.getcwd()}): {exc}") from exc


def _wait(proc: subprocess.Popen[bytes], wall_s: float) -> tuple[bool, int, resource.struct_rusage]:
    """Wait for the child at most `wall_s` seconds, kill its process group, reap it.

    Returns (timed out, wait status, the child's own rusage). The group is killed also after a normal exit
    (a job must not leave processes behind), and before the child is reaped: an unreaped child's pid, which is
    the group id, cannot be reused, so the signal cannot reach an unrelated process. os.wait4 gives the
    rusage of this child alone (and the descendants it waited for), unlike RUSAGE_CHILDREN, which sums
    every child this server ever reaped.
    """
    deadline_s = time.monotonic() + wall_s
    timed_out = False
    try:
        timed_out = not _exited_by(proc.pid, deadline_s)
    finally:
        # Also on an exception here (KeyboardInterrupt): the job must not outlive the wait.
        _kill_group(proc.pid)
        _, status, rusage = os.wait4(proc.pid, 0)
        # Tell Popen the child is reaped, so it never waits for (or warns about) it again.
        proc.returncode = os.waitstatus_to_exitcode(status)
    return timed_out, status, rusage


def _exited_by(pid: int, deadline_s: float) -> bool:
    """Poll until child `pid` has exited (True, left unreaped) or `deadline_s` (monotonic) passed (False)."""
    poll_s = 0.001
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        left_s = deadline_s - time.monotonic()
        if left_s <= 0:
            return False
        time.sleep(min(poll_s, left_s))
        poll_s = min(poll_s * 2, MAX_POLL_S)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        # Cannot happen while the leader is unreaped; harmless if it does.
        log.debug("sandbox: process group %d already gone", pgid)


def _tail(stream: IO[bytes]) -> str:
    """The last TAIL_BYTES bytes written to `stream` (a file the child wrote through its own descriptor)."""
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - TAIL_BYTES))
    return stream.read().decode("utf-8", errors="replace")


def _classify(
    returncode: int | None, stderr_tail: str, limits: Limits, cpu_s: float, peak_rss_mb: float
) -> StoppedBy | None:
    """Which limit ended the job (None: none did). `returncode` None means we killed it for the wall clock."""
    if returncode is None:
        return "wall"
    if returncode == 0:
        return None
    if returncode == -signal.SIGXCPU:
        return "cpu"
    # A job that ignores SIGXCPU gets SIGKILL at the hard limit; a SIGKILL with less CPU used came from
    # elsewhere (the kernel's OOM killer, an operator).
    if returncode == -signal.SIGKILL and cpu_s >= math.ceil(limits.cpu_s):
        return "cpu"
    stderr_lower = stderr_tail.lower()
    if returncode == -signal.SIGXFSZ or any(marker in stderr_lower for marker in FILE_SIZE_MARKERS):
        return "file"
    if any(marker in stderr_lower for marker in MEMORY_MARKERS):
        return "memory"
    # Address space is always at least the resident set, so a crash with a peak resident set near the limit
    # followed a failed allocation even when nothing said so.
    near_limit = peak_rss_mb >= MEMORY_SIGNAL_SHARE * limits.memory_mb
    if returncode in [-s for s in MEMORY_SIGNALS] and near_limit:
        return "memory"
    return None


def _reason(
    returncode: int | None, stopped_by: StoppedBy | None, stderr_tail: str, limits: Limits
) -> str | None:
    """One sentence for the racer: which limit, or the exit code / signal and the job's last stderr line."""
    if stopped_by == "wall":
        return f"took longer than {limits.wall_s:g} s (wall-clock limit)"
    if stopped_by == "cpu":
        return f"used more than {limits.cpu_s:g} s of CPU time (limit)"
    if stopped_by == "memory":
        return f"ran out of its {limits.memory_mb} MiB memory limit"
    if stopped_by == "file":
        return f"wrote a file larger than its {limits.file_mb} MiB limit"
    if returncode is None or returncode == 0:
        return None
    how = f"exited with code {returncode}" if returncode > 0 else f"was killed by {_signal_name(-returncode)}"
    last_line = _last_line(stderr_tail)
    return f"{how}: {last_line}" if last_line else f"{how} (nothing on stderr)"


def _signal_name(signum: int) -> str:
    try:
        return f"signal {signal.Signals(signum).name}"
    except ValueError:
        return f"signal {signum}"


def _last_line(text: str, max_chars: int = 300) -> str:
    """The last non-blank line of `text`, stripped and cut to `max_chars`."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:max_chars]
    return ""
