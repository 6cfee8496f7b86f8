"""league_server.jobs.sandbox: real child processes (`sys.executable -c ...`) under real kernel limits."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from league_server.errors import ConfigError, LeagueError, SandboxError
from league_server.jobs.sandbox import (
    TAIL_BYTES,
    Limits,
    SandboxResult,
    network_namespace_prefix,
    run_limited,
)

pytest.importorskip("resource", reason="the sandbox needs the resource module (Linux)")

# Generous limits for the ones a test does not exercise, so only the limit under test can stop the child.
CPU_S = 20.0
MEMORY_MB = 2048
WALL_S = 30.0


def run_python(code: str, **limits: float | bool) -> SandboxResult:
    """`code` run by this interpreter under Limits(CPU_S, MEMORY_MB, WALL_S) with `limits` overriding them."""
    chosen = {"cpu_s": CPU_S, "memory_mb": MEMORY_MB, "wall_s": WALL_S, **limits}
    return run_limited([sys.executable, "-c", code], Limits(**chosen))


def test_exit_0_captures_both_streams() -> None:
    result = run_python("import sys; print('lap 1 done'); print('warming up', file=sys.stderr)")

    assert result.returncode == 0
    assert result.stopped_by is None
    assert result.reason is None
    assert result.stdout_tail == "lap 1 done\n"
    assert result.stderr_tail == "warming up\n"


def test_nonzero_exit_names_code_and_last_stderr_line() -> None:
    code = (
        "import sys; print('loading', file=sys.stderr); print('model.onnx: bad input shape', file=sys.stderr)"
    )
    result = run_python(code + "; sys.exit(3)")

    assert result.returncode == 3
    assert result.stopped_by is None
    assert result.reason == "exited with code 3: model.onnx: bad input shape"


def test_uncaught_exception_reason_is_the_exception_line() -> None:
    result = run_python("raise ValueError('steering out of range')")

    assert result.returncode == 1
    assert result.reason == "exited with code 1: ValueError: steering out of range"


def test_busy_loop_is_stopped_by_the_cpu_limit() -> None:
    result = run_python("while True: pass", cpu_s=1)

    assert result.stopped_by == "cpu"
    assert result.returncode is not None and result.returncode < 0  # a signal (SIGXCPU), not our wall kill
    assert result.reason == "used more than 1 s of CPU time (limit)"
    assert result.cpu_s >= 0.9  # measured through the child's own rusage


def test_a_job_ignoring_sigxcpu_is_killed_at_the_hard_cpu_limit() -> None:
    result = run_python(
        "import signal; signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass", cpu_s=1
    )

    assert result.stopped_by == "cpu"
    assert (
        result.returncode is not None and result.returncode < 0
    )  # SIGKILL from the kernel, not our wall kill
    assert result.reason == "used more than 1 s of CPU time (limit)"


def test_big_allocation_is_stopped_by_the_memory_limit() -> None:
    result = run_python("buffer = bytearray(2 * 1024**3)", memory_mb=300)

    assert result.stopped_by == "memory"
    assert result.reason == "ran out of its 300 MiB memory limit"
    assert "MemoryError" in result.stderr_tail


def test_sleep_is_stopped_by_the_wall_clock_and_the_process_group_dies(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    result = run_python(code, wall_s=1)

    assert result.stopped_by == "wall"
    assert result.returncode is None
    assert result.reason == "took longer than 1 s (wall-clock limit)"
    assert pid_file.exists(), f"the child never started its grandchild; stderr: {result.stderr_tail}"
    assert wait_until_gone(int(pid_file.read_text()))


def test_large_output_does_not_deadlock_and_keeps_the_last_bytes() -> None:
    # 5 MB of numbered lines, then a marker: the tail must be the end of the stream.
    code = (
        "import sys\n"
        "out = sys.stdout\n"
        "for i in range(500_000): out.write(f'{i:09d}\\n')\n"
        "out.write('END\\n')\n"
    )
    result = run_python(code)

    assert result.returncode == 0
    assert result.stdout_tail.endswith("000499999\nEND\n")
    assert len(result.stdout_tail.encode()) == TAIL_BYTES


def test_work_runs_in_cwd_with_the_given_environment(tmp_path: Path) -> None:
    code = "import os; print(os.getcwd()); print(os.environ.get('PITLANE_JOB'))"
    result = run_limited(
        [sys.executable, "-c", code],
        Limits(CPU_S, MEMORY_MB, WALL_S),
        cwd=tmp_path,
        env={"PITLANE_JOB": "eval"},
    )

    cwd_line, env_line = result.stdout_tail.splitlines()
    assert Path(cwd_line).resolve() == tmp_path.resolve()
    assert env_line == "eval"


def test_missing_program_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="could not start") as caught:
        run_limited([str(tmp_path / "no-such-evaluator")], Limits(CPU_S, MEMORY_MB, WALL_S))

    assert isinstance(caught.value, LeagueError) and isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize("field", ["cpu_s", "memory_mb", "wall_s"])
def test_non_positive_limit_is_rejected_naming_the_field(field: str) -> None:
    values = {"cpu_s": CPU_S, "memory_mb": MEMORY_MB, "wall_s": WALL_S, field: 0}

    with pytest.raises(ConfigError, match=f"Limits.{field}"):
        Limits(**values)


def wait_until_gone(pid: int, timeout_s: float = 3.0) -> bool:
    """True once `pid` no longer exists (polled until `timeout_s`).

    A killed orphan is reaped by PID 1; in a container whose PID 1 does not reap, it stays a zombie, which
    os.kill(pid, 0) still finds although nothing runs, so a zombie counts as gone too.
    """
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
    return stat.rpartition(")")[2].split()[0] == "Z"


# ------------------------------------------------------------------ network, files, priority, environment


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    """A listening TCP socket on 127.0.0.1, as the league server's own port would be."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def connect_code(port: int) -> str:
    return (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print(f'refused: {exc}')\n"
    )


def test_a_job_in_its_network_namespace_cannot_reach_a_listening_socket(tcp_listener: socket.socket) -> None:
    if not network_namespace_prefix():
        pytest.skip("this machine allows no network namespace (unshare missing or user namespaces disabled)")

    result = run_python(connect_code(tcp_listener.getsockname()[1]))

    assert result.returncode == 0, result.stderr_tail
    assert result.stdout_tail.startswith("refused: [Errno 101] Network is unreachable")
    with pytest.raises(TimeoutError):
        tcp_listener.accept()


def test_a_job_allowed_the_network_reaches_the_same_socket(tcp_listener: socket.socket) -> None:
    # The control for the test above: the listener and the job's code do work.
    result = run_python(connect_code(tcp_listener.getsockname()[1]), network=True)

    assert result.stdout_tail == "connected\n"
    tcp_listener.accept()[0].close()


def test_the_file_size_limit_stops_a_runaway_python_writer(tmp_path: Path) -> None:
    code = "f = open('big.bin', 'wb')\nwhile True: f.write(bytes(1024 * 1024))\n"
    result = run_limited(
        [sys.executable, "-c", code], Limits(CPU_S, MEMORY_MB, WALL_S, file_mb=4), cwd=tmp_path
    )

    assert result.stopped_by == "file"
    assert result.reason == "wrote a file larger than its 4 MiB limit"
    assert "File too large" in result.stderr_tail  # Python ignores SIGXFSZ: the write fails with EFBIG
    assert (tmp_path / "big.bin").stat().st_size <= 4 * 1024 * 1024


def test_the_file_size_limit_stops_endless_output() -> None:
    # A program that does not ignore SIGXFSZ is killed by it; its stdout (a file) counts like any file.
    result = run_limited(
        ["head", "-c", str(64 * 1024 * 1024), "/dev/zero"], Limits(CPU_S, MEMORY_MB, WALL_S, file_mb=2)
    )

    assert result.returncode == -signal.SIGXFSZ
    assert result.stopped_by == "file"


def test_the_job_runs_at_a_lower_cpu_priority() -> None:
    # /proc/self/stat field 19 is the niceness; the fields after the command name start at field 3.
    code = (
        "from pathlib import Path; print(Path('/proc/self/stat').read_text().rpartition(')')[2].split()[16])"
    )
    ours = os.getpriority(os.PRIO_PROCESS, 0)

    default, unchanged = run_python(code), run_python(code, nice=0)

    assert int(default.stdout_tail) == min(19, ours + 10)
    assert int(unchanged.stdout_tail) == ours


def test_the_environment_keeps_no_server_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "PITLANE_ADMIN_TOKEN": "admin-s3cret",
        "PITLANE_DATABASE_URL": "postgresql+psycopg://pitlane:db-s3cret@127.0.0.1/pitlane",
        "PITLANE_MQTT_PASSWORD": "mqtt-s3cret",
        "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
    }
    for name, value in {**secrets, "OMP_NUM_THREADS": "1", "PITLANE_CACHE_DIR": "/var/cache/pitlane"}.items():
        monkeypatch.setenv(name, value)
    code = "import json, os; print(json.dumps(dict(os.environ)))"

    result = run_limited(
        [sys.executable, "-c", code], Limits(CPU_S, MEMORY_MB, WALL_S), env={"PITLANE_JOB": "training"}
    )

    seen = json.loads(result.stdout_tail)
    assert not secrets.keys() & seen.keys()
    assert not any("s3cret" in value for value in seen.values())
    assert seen["OMP_NUM_THREADS"] == "1" and seen["PITLANE_CACHE_DIR"] == "/var/cache/pitlane"
    assert seen["PATH"] == os.environ["PATH"] and seen["PITLANE_JOB"] == "training"


def test_a_growing_list_is_stopped_by_the_memory_limit() -> None:
    result = run_python("grown = []\nwhile True: grown.append(bytearray(10**6))", memory_mb=300)

    assert result.stopped_by == "memory"
    assert result.reason == "ran out of its 300 MiB memory limit"


@pytest.mark.parametrize(
    ("field", "value"),
    [("file_mb", 0), ("nice", -1), ("nice", 20), ("nice", 2.5), ("network", "no")],
)
def test_a_bad_new_limit_is_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"Limits.{field}"):
        Limits(CPU_S, MEMORY_MB, WALL_S, **{field: value})
