"""trainer.guard: real child processes lock themselves down, then try what a hostile reward function would:
read other racers' files and the server's secrets, write outside the run folder, reach the network, start
programs, load foreign code, signal other processes, run forever.

Each test proves one rule for one layer: `lock_down` (both layers), `audit_hook` (the PEP 578 hook alone, as
on a machine without Landlock) or `landlock` (the kernel alone, no hook: so native code is bound too). A child
prints one JSON line per attempt: `refused` (the exception's type, None when it went through), `guard` (the
audit hook's `GuardRefusedError`), `errno`, `message`. The tests also look at the files, sockets and processes
themselves, so a refusal that only pretends is caught.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import trainer
from league_server.jobs.sandbox import Limits, run_limited
from trainer.errors import TrainerError
from trainer.guard import (
    GuardError,
    LockDownError,
    RewardTimeoutError,
    deadline,
    landlock_abi,
    lock_down,
)

LANDLOCK_ABI = landlock_abi()
#: the folder holding the `trainer` package: with an editable install, the clone (which may hold data too)
REPOSITORY = Path(trainer.__file__).resolve().parents[1]
EDITABLE = (REPOSITORY / "pyproject.toml").is_file()
needs_landlock = pytest.mark.skipif(LANDLOCK_ABI < 1, reason="this kernel has no Landlock")
LAYERS = ["lock_down", "audit_hook", pytest.param("landlock", marks=needs_landlock)]
PYTHON_LAYERS = ["lock_down", "audit_hook"]

# Runs first in every child: argv[1] the run folder, argv[2] a folder outside it, argv[3] the layer.
PRELUDE = """
import json, os, sys
from pathlib import Path
from trainer.guard import GuardRefusedError, install_audit_hook, lock_down, restrict_with_landlock
root, outside, layer = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def apply_layer():
    if layer == "lock_down":
        return lock_down(root)
    if layer == "audit_hook":
        return install_audit_hook(root)
    if layer == "landlock":
        return restrict_with_landlock(root)
    assert layer == "none", layer

def attempt(action):
    try:
        action()
    except Exception as exc:
        outcome = {"refused": type(exc).__name__, "guard": isinstance(exc, GuardRefusedError),
                   "errno": getattr(exc, "errno", None), "message": str(exc)}
    else:
        outcome = {"refused": None}
    sys.stdout.write(json.dumps(outcome) + "\\n")  # one write: threads' lines must not interleave
    sys.stdout.flush()
"""


def run_child(
    code: str, root: Path, outside: Path, layer: str, *, apply: bool = True, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Run PRELUDE (+ `apply_layer()` when `apply`) + `code` in a fresh interpreter; its JSON lines."""
    script = PRELUDE + ("apply_layer()\n" if apply else "") + code
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), str(outside), layer],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=root,
    )
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders and links)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(run folder with inside.txt, a folder outside it with victim.txt)."""
    root, outside = tmp_path / "run", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "inside.txt").write_text("mine")
    (outside / "victim.txt").write_text("the server's")
    return root, outside


def assert_refused(outcome: dict[str, Any], layer: str) -> None:
    """The attempt failed, and the way the layer fails it: the hook's sentence, or the kernel's errno."""
    assert outcome["refused"] is not None, f"{layer}: the attempt went through"
    if layer == "landlock":
        assert outcome["errno"] in (errno.EACCES, errno.EPERM, errno.EXDEV), outcome
    else:
        assert outcome["guard"], outcome
        assert outcome["message"].startswith("reward function tried to"), outcome
        assert outcome["message"].endswith(": refused"), outcome


# ------------------------------------------------------------------------------------------------ files

WRITES_OUTSIDE = {
    "open_w": "open(outside / 'new.txt', 'w').write('owned')",
    "open_append": "open(outside / 'victim.txt', 'a').write('owned')",
    "pathlib_write_text": "(outside / 'victim.txt').write_text('owned')",
    "numpy_save": "import numpy; numpy.save(outside / 'new.npy', numpy.zeros(3))",
    "os_open": "os.open(outside / 'new.txt', os.O_WRONLY | os.O_CREAT)",
    "os_open_dir_fd": (
        "d = os.open(outside, os.O_RDONLY | os.O_DIRECTORY); os.open('new.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d)"
    ),
    "os_rename_out": "os.rename(root / 'inside.txt', outside / 'new.txt')",
    "os_rename_in": "os.rename(outside / 'victim.txt', root / 'stolen.txt')",
    "os_remove": "os.remove(outside / 'victim.txt')",
    "os_mkdir": "os.mkdir(outside / 'new')",
    "os_truncate": "os.truncate(outside / 'victim.txt', 0)",
    "os_link_in": "os.link(outside / 'victim.txt', root / 'hard'); open(root / 'hard', 'w').write('owned')",
    "symlink_escape": "os.symlink(outside / 'victim.txt', root / 'soft'); open(root / 'soft', 'w').write('owned')",
    "shutil_copy": "import shutil; shutil.copy(root / 'inside.txt', outside / 'new.txt')",
}


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("how", sorted(WRITES_OUTSIDE))
def test_writes_outside_the_run_folder_are_refused(folders: tuple[Path, Path], layer: str, how: str) -> None:
    root, outside = folders
    before = snapshot(outside)

    [outcome] = run_child(f"attempt(lambda: exec({WRITES_OUTSIDE[how]!r}))", root, outside, layer)

    assert_refused(outcome, layer)
    assert snapshot(outside) == before
    if layer != "landlock":
        assert str(outside) in outcome["message"] and f"outside its run folder {root}" in outcome["message"]


def test_the_refusal_says_what_was_refused_and_where(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    [outcome] = run_child("attempt(lambda: open('/etc/pitlane-x', 'w'))", root, outside, "lock_down")

    assert outcome["refused"] == "GuardRefusedError"
    assert (
        outcome["message"]
        == f"reward function tried to write /etc/pitlane-x outside its run folder {root}: refused"
    )
    assert not Path("/etc/pitlane-x").exists()


def test_writes_and_reads_inside_the_run_folder_are_allowed(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    code = """
import numpy, shutil, tempfile
attempt(lambda: open(root / 'a.txt', 'w').write('a'))
attempt(lambda: (root / 'b.txt').write_text('b'))
attempt(lambda: numpy.save(root / 'c.npy', numpy.arange(3)))
attempt(lambda: os.mkdir(root / 'sub'))
attempt(lambda: os.rename(root / 'a.txt', root / 'sub' / 'a.txt'))
attempt(lambda: os.remove(root / 'b.txt'))
attempt(lambda: os.symlink(root / 'c.npy', root / 'link.npy'))
attempt(lambda: shutil.rmtree(root / 'sub'))
attempt(lambda: tempfile.NamedTemporaryFile(dir=None).write(b'x'))
attempt(lambda: open(os.devnull, 'w').write('silenced'))
attempt(lambda: print(json.dumps({'read': (root / 'inside.txt').read_text()})))
print(json.dumps({'tempdir': tempfile.gettempdir()}))
"""
    outcomes = run_child(code, root, outside, "lock_down")

    attempts = [o for o in outcomes if "refused" in o]
    assert [o["refused"] for o in attempts] == [None] * 11, attempts
    assert {"read": "mine"} in outcomes
    assert {"tempdir": str(root / "tmp")} in outcomes
    assert sorted(p.name for p in root.iterdir()) == ["c.npy", "inside.txt", "link.npy", "tmp"]


def test_lock_down_reports_its_layers(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    code = "r = lock_down(root); print(json.dumps({'layers': r.layers, 'abi': r.landlock_abi, 'fs': r.landlock_filesystem, 'tcp': r.landlock_tcp, 'hook': r.audit_hook, 'path': r.sys_path_removed, 'readable': r.readable, 'pid': os.getpid()}))"

    [report] = run_child(code, root, outside, "none", apply=False)

    assert report["hook"] is True and "audit hook" in report["layers"]
    assert report["abi"] == LANDLOCK_ABI
    assert report["fs"] is (LANDLOCK_ABI >= 1)
    assert report["tcp"] is (LANDLOCK_ABI >= 4)
    assert report["path"] == [""]  # `-c` puts the working folder (the run folder) first on sys.path
    readable = report["readable"]
    assert str(Path(trainer.__file__).resolve().parent) in readable
    assert f"/proc/{report['pid']}" in readable and "/proc" not in readable
    if EDITABLE:  # each pitlane package's folder, not the clone that holds them (and maybe the data folder)
        assert str(REPOSITORY) not in readable
    assert not any(str(tmp) in path for path in readable for tmp in (root, outside))


def test_lock_down_twice_or_on_a_missing_folder_is_a_lock_down_error(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    with pytest.raises(LockDownError, match="is not a folder") as caught:
        lock_down(root / "missing")  # refused before anything is locked, so safe in this process
    assert isinstance(caught.value, GuardError) and isinstance(caught.value, TrainerError)

    [outcome] = run_child("attempt(lambda: lock_down(root))", root, outside, "lock_down")
    assert outcome["refused"] == "LockDownError" and "already locked down" in outcome["message"]


# ---------------------------------------------------------------------------------------------- network


@pytest.fixture
def tcp_listener() -> Any:
    """A listening TCP socket on 127.0.0.1 (the league server would be one)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def nobody_connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize(
    "layer",
    [
        *LAYERS[:2],
        pytest.param(
            "landlock", marks=pytest.mark.skipif(LANDLOCK_ABI < 4, reason="TCP rules need Landlock ABI 4")
        ),
    ],
)
def test_tcp_connect_to_a_listening_socket_is_refused(
    folders: tuple[Path, Path], tcp_listener: socket.socket, layer: str
) -> None:
    root, outside = folders
    port = tcp_listener.getsockname()[1]
    code = f"import socket\nattempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))"

    [outcome] = run_child(code, root, outside, layer)

    assert_refused(outcome, layer)
    assert nobody_connected(tcp_listener)


def test_without_the_guard_the_same_connect_goes_through(
    folders: tuple[Path, Path], tcp_listener: socket.socket
) -> None:
    # The control for the test above: the listener and the child's code do work.
    root, outside = folders
    port = tcp_listener.getsockname()[1]
    code = f"import socket\nattempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))"

    [outcome] = run_child(code, root, outside, "none")

    assert outcome["refused"] is None
    assert not nobody_connected(tcp_listener)


@pytest.mark.parametrize(
    "code",
    [
        "import socket\nattempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', PORT)))",
        "import socket\nattempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))",
        "import socket\nattempt(lambda: socket.socket().bind(('127.0.0.1', 0)))",
        "import socket\nattempt(lambda: socket.getaddrinfo('localhost', 80))",
    ],
    ids=["udp_sendto", "inet6_socket", "tcp_bind", "dns"],
)
@pytest.mark.parametrize("layer", PYTHON_LAYERS)
def test_udp_bind_and_dns_are_refused_by_the_audit_hook(
    folders: tuple[Path, Path], code: str, layer: str
) -> None:
    root, outside = folders
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.2)
        [outcome] = run_child(code.replace("PORT", str(receiver.getsockname()[1])), root, outside, layer)

        assert_refused(outcome, layer)
        with pytest.raises(TimeoutError):
            receiver.recv(16)


@needs_landlock
def test_landlock_alone_does_not_stop_udp(folders: tuple[Path, Path]) -> None:
    # What the kernel layer does not cover (Landlock has no UDP rules): the hook and the sandbox's network
    # namespace do. If a kernel ever covers it, this fails and ARCHITECTURE.md must change.
    root, outside = folders
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        code = f"import socket\nattempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port})))"
        [outcome] = run_child(code, root, outside, "landlock")

        assert outcome["refused"] is None
        assert receiver.recv(16) == b"x"


@pytest.fixture
def unix_listener(tmp_path: Path) -> Any:
    """A listening unix socket by path (as PostgreSQL's /var/run/postgresql/.s.PGSQL.5432 is)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "s.sock"))
    listener.listen()
    listener.settimeout(0.2)
    yield listener
    listener.close()


@pytest.mark.parametrize("layer", [*PYTHON_LAYERS, pytest.param("landlock", marks=needs_landlock)])
def test_a_unix_socket_connect_is_refused_only_by_the_hook(
    folders: tuple[Path, Path], unix_listener: socket.socket, layer: str
) -> None:
    # Neither Landlock (ABI <= 7) nor a network namespace covers sockets reached by a path.
    root, outside = folders
    code = f"import socket\nattempt(lambda: socket.socket(socket.AF_UNIX).connect({unix_listener.getsockname()!r}))"
    [outcome] = run_child(code, root, outside, layer)

    if layer == "landlock":
        assert outcome["refused"] is None and not nobody_connected(unix_listener)
    else:
        assert_refused(outcome, layer)
        assert nobody_connected(unix_listener)


# -------------------------------------------------------------------------------------------- processes

# Each would create `ran` in the run folder (a write the rules allow): only the process refusal stops it.
START_PROCESS = {
    "subprocess_run": "import subprocess; subprocess.run(['touch', str(root / 'ran')])",
    "os_system": "os.system(f'touch {root}/ran')",
    "os_popen": "os.popen(f'touch {root}/ran').read()",
    "os_execv": "os.execv('/usr/bin/touch', ['touch', str(root / 'ran')])",
    "os_posix_spawn": "os.waitpid(os.posix_spawn('/usr/bin/touch', ['touch', str(root / 'ran')], {}), 0)",
    "os_fork": "pid = os.fork()\nif pid == 0: open(root / 'ran', 'w').close(); os._exit(0)\nos.waitpid(pid, 0)",
}


# Landlock refuses execve, not fork (a forked copy stays under the same rules): fork is the hook's alone.
@pytest.mark.parametrize(
    ("layer", "how"),
    [
        (layer, how)
        for layer in ("lock_down", "audit_hook", "landlock")
        for how in sorted(START_PROCESS)
        if not (layer == "landlock" and how == "os_fork")
    ],
)
def test_starting_a_process_is_refused(folders: tuple[Path, Path], layer: str, how: str) -> None:
    if layer == "landlock" and LANDLOCK_ABI < 1:
        pytest.skip("this kernel has no Landlock")
    root, outside = folders
    code = f"def action():\n    exec({START_PROCESS[how]!r})\nattempt(action)"

    outcomes = run_child(code, root, outside, layer)

    assert not (root / "ran").exists()
    # a program Landlock refused to exec fails in the forked child: os.system reports it as a status
    if not (layer == "landlock" and how in ("os_system", "os_popen")):
        assert_refused(outcomes[0], layer)


FORK_EXEC = """
import _posixsubprocess
def action():
    r, w = os.pipe()
    argv = [b'/usr/bin/touch', str(root / 'ran').encode()]
    pid = _posixsubprocess.fork_exec(argv, [argv[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w,
                                     True, False, -1, None, None, None, -1, None, False)
    os.close(w)
    failure = os.read(r, 100)
    os.waitpid(pid, 0)
    if failure:
        raise PermissionError(13, failure.decode())
attempt(action)
"""


@pytest.mark.parametrize("layer", ["audit_hook", pytest.param("lock_down", marks=needs_landlock)])
def test_exec_without_an_audit_event_is_stopped_only_by_landlock(
    folders: tuple[Path, Path], layer: str
) -> None:
    # _posixsubprocess.fork_exec raises no audit event: the hook alone lets it run the program; Landlock's
    # execve rule stops it.
    root, outside = folders
    [outcome] = run_child(FORK_EXEC, root, outside, layer)

    if layer == "audit_hook":
        assert outcome["refused"] is None and (root / "ran").exists()
    else:
        assert outcome["errno"] == errno.EACCES and not (root / "ran").exists()


@pytest.mark.parametrize(
    "layer",
    [
        *PYTHON_LAYERS,
        pytest.param(
            "landlock",
            marks=pytest.mark.skipif(LANDLOCK_ABI < 6, reason="signal scoping needs Landlock ABI 6"),
        ),
    ],
)
def test_signalling_another_process_is_refused(folders: tuple[Path, Path], layer: str) -> None:
    root, outside = folders
    with subprocess.Popen(["sleep", "30"]) as sleeper:
        try:
            [outcome] = run_child(
                f"import signal\nattempt(lambda: os.kill({sleeper.pid}, signal.SIGKILL))",
                root,
                outside,
                layer,
            )
            time.sleep(0.05)
            assert sleeper.poll() is None, "the other process was killed"
        finally:
            sleeper.kill()
    assert_refused(outcome, layer)


# -------------------------------------------------------------------------------------- foreign code


@pytest.mark.parametrize(
    "how",
    [
        "ctypes.CDLL('libc.so.6')",
        "ctypes.CDLL(None).getpid()",
        "ctypes.string_at(id(0), 8)",
        "ctypes.memmove(ctypes.create_string_buffer(4), b'abcd', 4)",
    ],
)
@pytest.mark.parametrize("layer", PYTHON_LAYERS)
def test_ctypes_is_refused(folders: tuple[Path, Path], how: str, layer: str) -> None:
    root, outside = folders
    [outcome] = run_child(f"import ctypes\nattempt(lambda: {how})", root, outside, layer)

    assert_refused(outcome, layer)
    assert "foreign code may not be loaded" in outcome["message"]


def test_a_ctypes_function_made_from_an_address_is_not_refused_by_the_hook(
    folders: tuple[Path, Path],
) -> None:
    # What the hook cannot see (no audit event in Python 3.11): calling a function pointer built from an
    # address. Native code reached this way is bound by Landlock and the job sandbox only.
    root, outside = folders
    code = """import ctypes, _ctypes
memmove = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)(_ctypes._memmove_addr)
target = b'....'
attempt(lambda: memmove(target, b'call', 4))
print(json.dumps({'target': target.decode()}))
"""
    outcome, written = run_child(code, root, outside, "audit_hook")

    assert outcome["refused"] is None and written == {"target": "call"}


@pytest.mark.parametrize("layer", PYTHON_LAYERS)
def test_walking_the_interpreters_objects_is_refused(folders: tuple[Path, Path], layer: str) -> None:
    # How code would find the hook's own function to tamper with it.
    root, outside = folders
    code = "import gc\nattempt(gc.get_objects)\nattempt(lambda: gc.get_referrers(attempt))"
    outcomes = run_child(code, root, outside, layer)

    for outcome in outcomes:
        assert_refused(outcome, layer)


# ----------------------------------------------------------------------------------------------- reads

SECRET = "s3cret"


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, Path]:
    """(run folder, data folder): a league server's data folder as the console's jobs see it, with this job's
    folder at data/training/7 and, beside it, what the job must not read: another racer's job folder
    (its private reward.py and model), the server's database and .env."""
    data = tmp_path / "data"
    root = data / "training" / "7"
    other = data / "training" / "8" / "out"
    for folder in (root, other, data / "uploads"):
        folder.mkdir(parents=True)
    (root / "inside.txt").write_text("mine")
    (other / "reward.py").write_text(f"def reward_function(params):\n    return 1.0  # racer 8's {SECRET}\n")
    (data / ".env").write_text(f"PITLANE_ADMIN_TOKEN=admin-{SECRET}\n")
    with sqlite3.connect(data / "pitlane.sqlite") as db:
        db.execute("create table t (secret text)")
        db.execute("insert into t values (?)", (f"db-{SECRET}",))
    db.close()
    return root, data


# name -> (an expression the child evaluates, text whose presence in the result means the read went
# through). `outside` is the data folder; `sibling` racer 8's reward.py.
READS_OUTSIDE = {
    "open": ("open(sibling).read()", SECRET),
    "pathlib": ("sibling.read_bytes()", SECRET),
    "os_open": ("os.read(os.open(sibling, os.O_RDONLY), 200)", SECRET),
    "relative_path": ("open('../8/out/reward.py').read()", SECRET),
    "numpy_fromfile": ("numpy.fromfile(sibling, dtype=numpy.uint8).tobytes()", SECRET),
    "list_other_racers_folder": ("os.listdir(sibling.parent)", "reward.py"),
    "scan_the_training_folder": ("[e.name for e in os.scandir(root.parent)]", "8"),
    "copy_into_the_run_folder": (
        "(shutil.copy(sibling, root / 'stolen.py'), (root / 'stolen.py').read_text())[1]",
        SECRET,
    ),
    "symlink_from_the_run_folder": (
        "(os.symlink(sibling, root / 'link.py'), (root / 'link.py').read_text())[1]",
        SECRET,
    ),
    "proc_self_root": ("open(f'/proc/self/root{outside}/.env').read()", SECRET),
    "env_file": ("(outside / '.env').read_text()", SECRET),
    "sqlite_database": (
        "sqlite3.connect(outside / 'pitlane.sqlite').execute('select secret from t').fetchall()",
        SECRET,
    ),
    "parent_environ": ("open(f'/proc/{os.getppid()}/environ', 'rb').read()", "PATH="),
    **(
        {
            "repository_file": (f"open({str(REPOSITORY / 'pyproject.toml')!r}).read()", "[project]"),
            "list_repository": (f"os.listdir({str(REPOSITORY)!r})", "pyproject.toml"),
        }
        if EDITABLE
        else {}
    ),
}
READ_ATTEMPTS = """
import shutil, sqlite3, numpy
sibling = outside / 'training' / '8' / 'out' / 'reward.py'
for case, (expression, marker) in CASES.items():
    try:
        got = eval(expression)
    except Exception as exc:
        outcome = {"refused": type(exc).__name__, "guard": isinstance(exc, GuardRefusedError),
                   "errno": getattr(exc, "errno", None), "message": str(exc)}
    else:
        outcome = {"refused": None, "leaked": marker in str(got)}
    print(json.dumps({"case": case, **outcome}), flush=True)
"""


def read_attempts(root: Path, data: Path, layer: str) -> dict[str, dict[str, Any]]:
    code = f"CASES = {READS_OUTSIDE!r}\n" + READ_ATTEMPTS
    return {o.pop("case"): o for o in run_child(code, root, data, layer)}


@pytest.mark.parametrize("layer", LAYERS)
def test_reading_other_racers_files_and_the_servers_secrets_is_refused(
    data_dir: tuple[Path, Path], layer: str
) -> None:
    root, data = data_dir

    outcomes = read_attempts(root, data, layer)

    assert outcomes.keys() == READS_OUTSIDE.keys()
    for case, outcome in outcomes.items():
        if layer == "landlock" and outcome["refused"] == "OperationalError":
            assert "unable to open database file" in outcome["message"], (case, outcome)  # SQLite's EACCES
        else:
            assert_refused(outcome, layer)
        if layer != "landlock" and case != "parent_environ":
            assert "outside its run folder" in outcome["message"], (case, outcome)
    assert not (root / "stolen.py").exists()
    if layer != "landlock":  # the hook names the file; the kernel's error is EACCES
        assert f"{data}/training/8/out/reward.py outside its run folder {root}" in outcomes["open"]["message"]
        assert "another process's information" in outcomes["parent_environ"]["message"]


def test_without_the_guard_the_same_reads_get_the_secrets(data_dir: tuple[Path, Path]) -> None:
    # The control for the test above: every attempt does read what it is after when nothing stops it.
    root, data = data_dir

    outcomes = read_attempts(root, data, "none")

    assert {case: o.get("leaked") for case, o in outcomes.items()} == dict.fromkeys(READS_OUTSIDE, True)


ONNX_SESSION = """
import onnxruntime
attempt(lambda: onnxruntime.InferenceSession(str(outside / 'training' / '8' / 'out' / 'model.onnx')))
"""


@pytest.mark.parametrize("layer", ["audit_hook", pytest.param("lock_down", marks=needs_landlock)])
def test_a_native_read_is_refused_only_by_landlock(data_dir: tuple[Path, Path], layer: str) -> None:
    # onnxruntime opens a model file in C++: no audit event. The hook alone (a kernel without Landlock) lets
    # the job load another racer's model; Landlock refuses the open.
    from onnx import TensorProto, helper, save_model

    root, data = data_dir
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "racer8", [x], [y])
    save_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        data / "training" / "8" / "out" / "model.onnx",
    )

    [outcome] = run_child(ONNX_SESSION, root, data, layer)

    if layer == "audit_hook":
        assert outcome["refused"] is None
    else:
        assert outcome["refused"] is not None and not outcome["guard"], outcome
        # onnxruntime's words for the kernel's EACCES
        assert f"system error number {errno.EACCES}" in outcome["message"], outcome


ALLOWED_READS = """
(outside / 'tracks').mkdir()
(outside / 'tracks' / 'oval.npy').write_text('a shared track')
lock_down(root, read_also=(outside / 'tracks',))
expressions = {
    "run folder": "(root / 'inside.txt').read_text()",
    "read_also": "(outside / 'tracks' / 'oval.npy').read_text()",
    "C extension loaded after the lock": "str(__import__('decimal').Decimal('1.5') * 2)",
    "pitlane module imported after the lock": "__import__('firmware_configs').load_car('deepracer').car.name",
    "site-packages listing": "len(os.listdir(os.path.dirname(json.__file__)))",
    "own /proc": "open('/proc/self/status').read()[:5]",
    "thread's /proc": "open('/proc/thread-self/comm').read()",
    "CPU topology": "(open('/sys/devices/system/cpu/online').read(), os.cpu_count(), len(open('/proc/cpuinfo').read()))",
    "random": "(open('/dev/urandom', 'rb').read(4), os.urandom(4), len(open('/dev/zero', 'rb').read(4)))",
    "time zones": "str(__import__('zoneinfo').ZoneInfo('Europe/Paris'))",
    "another racer, still": "(outside / 'training' / '8' / 'out' / 'reward.py').read_text()",
}
for name, expression in expressions.items():
    try:
        eval(expression)
    except Exception as exc:
        print(json.dumps({"what": name, "refused": f"{type(exc).__name__}: {exc}"}))
    else:
        print(json.dumps({"what": name, "refused": None}))
"""


def test_what_a_job_runs_on_stays_readable_after_lock_down(data_dir: tuple[Path, Path]) -> None:
    root, data = data_dir

    outcomes = {o["what"]: o["refused"] for o in run_child(ALLOWED_READS, root, data, "none", apply=False)}

    assert outcomes.pop("another racer, still") is not None
    assert outcomes == dict.fromkeys(outcomes, None)
    assert len(outcomes) == 10


def test_lock_down_refuses_a_readable_path_that_holds_the_run_folder(data_dir: tuple[Path, Path]) -> None:
    root, data = data_dir
    # refused before anything is locked, so safe in this process
    with pytest.raises(LockDownError, match=r"holds the run folder .* every folder beside it"):
        lock_down(root, read_also=(data / "training",))


@pytest.mark.parametrize("layer", LAYERS)
def test_a_files_existence_size_and_times_stay_visible(data_dir: tuple[Path, Path], layer: str) -> None:
    # What neither layer hides: os.stat needs no read right (and raises no audit event). A job can learn
    # that another racer's file exists, its size and times, not what it holds.
    root, data = data_dir
    sibling = data / "training" / "8" / "out" / "reward.py"
    code = f"print(json.dumps({{'size': os.stat({str(sibling)!r}).st_size}}))"

    [seen] = run_child(code, root, data, layer)

    assert seen == {"size": sibling.stat().st_size}


def test_a_descriptor_opened_before_lock_down_is_reported_and_stays_readable(
    folders: tuple[Path, Path],
) -> None:
    # Neither layer checks reads and writes through a descriptor opened before the call: lock_down names
    # every such descriptor on a file outside what may be read, so a job that keeps one shows in its log.
    root, outside = folders
    code = "f = open(outside / 'victim.txt')\nr = lock_down(root)\nprint(json.dumps({'open': r.open_outside, 'read': f.read()}))"

    [report] = run_child(code, root, outside, "none", apply=False)

    assert [entry.split(" ", 1)[1] for entry in report["open"]] == [str(outside / "victim.txt")]
    assert report["read"] == "the server's"


@pytest.mark.skipif(
    LANDLOCK_ABI < 1 or not os.access("/proc/sys/vm/drop_caches", os.W_OK),
    reason="needs Landlock and root (to make the kernel drop its cached dentries)",
)
def test_own_proc_stays_readable_after_the_kernel_drops_cached_dentries(folders: tuple[Path, Path]) -> None:
    # A Landlock rule holds an inode; procfs makes new inodes for /proc/<pid> once the kernel has dropped
    # the unused dentry, so the guard keeps a descriptor open on it.
    root, outside = folders
    code = (
        PRELUDE
        + "apply_layer()\nprint('locked', flush=True)\nsys.stdin.readline()\nattempt(lambda: open('/proc/self/status').read())\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(root), str(outside), "landlock"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
    ) as child:  # fmt: skip
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "locked"
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        child.stdin.write("go\n")
        child.stdin.flush()
        outcome = json.loads(child.stdout.readline())
    assert outcome["refused"] is None, outcome


# ------------------------------------------------------------------------------------ other processes


@needs_landlock
def test_landlock_refuses_another_processs_memory_and_environment(folders: tuple[Path, Path]) -> None:
    # The kernel layer alone: /proc/<pid>/mem by its ptrace rule, /proc/<pid>/environ because /proc/<pid> of
    # another process is not readable.
    root, outside = folders
    code = "attempt(lambda: open(f'/proc/{os.getppid()}/mem', 'rb'))\nattempt(lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())"
    mem, environ = run_child(code, root, outside, "landlock")

    assert mem["errno"] == errno.EACCES
    assert environ["errno"] == errno.EACCES


# ----------------------------------------------------------------------------------------------- threads

THREADS = """
import threading
go = threading.Event()
def write(name):
    go.wait()
    attempt(lambda: open(outside / name, 'w').write('owned'))
before = threading.Thread(target=write, args=('before',))
before.start()
apply_layer()
after = threading.Thread(target=write, args=('after',))
after.start()
go.set(); before.join(); after.join()
"""


@pytest.mark.parametrize("layer", ["lock_down", pytest.param("landlock", marks=needs_landlock)])
def test_threads_started_before_and_after(folders: tuple[Path, Path], layer: str) -> None:
    # Landlock covers the calling thread and the threads it starts; an older thread only with TSYNC (ABI 8).
    # The audit hook covers every thread of the process.
    root, outside = folders
    run_child(THREADS, root, outside, layer, apply=False)

    assert not (outside / "after").exists()
    older_thread_covered = layer == "lock_down" or LANDLOCK_ABI >= 8
    assert (outside / "before").exists() is not older_thread_covered


UNCOVERED_THREADS = """
import numpy, onnxruntime, scipy.optimize, torch
torch.set_num_threads(1)
print(json.dumps({"uncovered": lock_down(root).threads_uncovered}))
"""


@pytest.mark.skipif(
    not 1 <= LANDLOCK_ABI < 8, reason="counts the threads Landlock without TSYNC (ABI < 8) does not cover"
)
def test_a_job_starts_no_thread_landlock_would_not_cover(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job sandbox's defaults (`JOB_DEFAULTS`) keep onnxruntime's telemetry thread and OpenBLAS's workers
    # from starting when the job imports them, before lock_down. Turning each back on shows what it adds.
    root, outside = folders
    for name in ("ORT_DISABLE_TELEMETRY", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)  # the defaults, not this machine's settings
    argv = [sys.executable, "-c", PRELUDE + UNCOVERED_THREADS, str(root), str(outside), "none"]

    def uncovered(**env: str) -> int:
        result = run_limited(argv, Limits(60, 8192, 60), cwd=root, env=env)
        assert result.returncode == 0, result.stderr_tail
        return int(json.loads(result.stdout_tail)["uncovered"])

    assert uncovered() == 0
    assert uncovered(ORT_DISABLE_TELEMETRY="0") == 1
    assert uncovered(OPENBLAS_NUM_THREADS="2") >= 1


# ------------------------------------------------------------------------------------- a reward function

REWARD = """import os

def reward_function(params):
    with open({target!r}, "w") as f:
        f.write("owned")
    return 1.0
"""


def test_a_reward_function_writing_outside_fails_naming_its_line(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    (root / "reward.py").write_text(REWARD.format(target=str(outside / "victim.txt")))
    code = """
from sim.reward.python_file import RewardFile
reward = RewardFile.load(root / 'reward.py').instance()
attempt(lambda: reward({}))
"""
    [outcome] = run_child(code, root, outside, "lock_down")

    assert outcome["refused"] == "RewardFunctionError"
    assert "raised GuardRefusedError: reward function tried to write" in outcome["message"]
    assert "line 4" in outcome["message"]
    assert (outside / "victim.txt").read_text() == "the server's"


# ------------------------------------------------------------------------------------------------ memory


@pytest.mark.parametrize(
    "allocation",
    ["bytearray(10**11)", "grown = []\nwhile True: grown.append(bytearray(10**6))"],
    ids=["huge", "growing"],
)
def test_a_huge_allocation_ends_in_memory_error_within_the_sandboxs_limit(
    folders: tuple[Path, Path], allocation: str
) -> None:
    # The memory limit is the job sandbox's (RLIMIT_AS); the reward function's allocation fails in the job,
    # which survives to report it.
    root, outside = folders
    code = (
        PRELUDE
        + f"apply_layer()\ntry:\n    exec({allocation!r})\nexcept MemoryError:\n    print('MemoryError caught')\n"
    )
    result = run_limited(
        [sys.executable, "-c", code, str(root), str(outside), "lock_down"], Limits(20, 512, 30), cwd=root
    )

    assert result.returncode == 0, result.stderr_tail
    assert result.stdout_tail.strip() == "MemoryError caught"
    assert result.wall_s < 10


# ---------------------------------------------------------------------------------------------- deadline


def test_an_infinite_loop_overruns_its_deadline() -> None:
    started_s = time.monotonic()
    with (
        pytest.raises(RewardTimeoutError, match=r"reward function did not return within 0\.2 s") as caught,
        deadline(0.2, "reward function"),
    ):
        while True:
            pass

    assert 0.2 <= time.monotonic() - started_s < 2
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, GuardError)


def test_a_looping_reward_function_fails_naming_the_line(tmp_path: Path) -> None:
    from sim.errors import RewardFunctionError
    from sim.reward.python_file import RewardFile

    (tmp_path / "reward.py").write_text("def reward_function(params):\n    while True:\n        pass\n")
    reward = RewardFile.load(tmp_path / "reward.py").instance()

    with (
        pytest.raises(RewardFunctionError, match="RewardTimeoutError") as caught,
        deadline(0.2, "reward function"),
    ):
        reward({})

    assert isinstance(caught.value.__cause__, RewardTimeoutError)
    assert "line 3" in str(caught.value) or "line 2" in str(caught.value)


def test_deadline_puts_back_the_previous_handler_and_timer() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        with deadline(1.0, "reward function"):
            pass
        left_s, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 4.0 < left_s <= 5.0
        assert signal.getsignal(signal.SIGALRM) is not None and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_block_within_its_deadline_is_left_alone() -> None:
    with deadline(0.2, "reward function"):
        total = sum(range(1000))
    time.sleep(0.3)  # the timer is off: nothing fires afterwards
    assert total == 499500


def test_deadline_outside_the_main_thread_is_a_guard_error() -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with deadline(1.0, "reward function"):
                pass
        except GuardError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


# ---------------------------------------------------------------------------- what training still needs

TRAINING_NEEDS = """
import tempfile
import gymnasium as gym
import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper
import sim

torch.set_num_threads(1)
gym.make('pitlane/TimeTrial-v0', track='oval')  # the job loads its track before locking (geometry cache)
(root / 'reward.py').write_text('def reward_function(params):\\n    return float(params["speed"])\\n')
from trainer.job.preload import read_after_lock
report = lock_down(root, read_also=read_after_lock())  # as the job does

def env_steps():
    env = gym.make('pitlane/TimeTrial-v0', track='oval', reward=str(root / 'reward.py'))
    env.reset(seed=0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(50)]
    assert all(np.isfinite(rewards))

def torch_step():
    net = torch.nn.Sequential(torch.nn.Linear(11, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randn(8, 11)).pow(2).mean().backward()
    optimizer.step()
    torch.save(net.state_dict(), root / 'net.pt')

def onnx_session():
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    out = session.run(None, {'x': np.array([[-1, 2, -3, 4]], np.float32)})[0]
    assert out.tolist() == [[0, 2, 0, 4]]

def files():
    np.save(root / 'a.npy', np.arange(3))
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'x')
    (root / 'out').mkdir()
    (root / 'out' / 'progress.jsonl').write_text('{}\\n')

for action in (env_steps, torch_step, onnx_session, files):
    attempt(action)
attempt(lambda: open(outside / 'after.txt', 'w'))
print(json.dumps({'layers': report.layers}))
"""


def test_training_still_works_after_lock_down(folders: tuple[Path, Path]) -> None:
    root, outside = folders
    *needs, escape, report = run_child(TRAINING_NEEDS, root, outside, "lock_down", apply=False)

    assert [n["refused"] for n in needs] == [None] * 4, needs
    assert escape["guard"]
    assert "audit hook" in report["layers"]
    assert (root / "net.pt").stat().st_size > 0 and (root / "a.npy").exists()


# ---------------------------------------------------------------------------------------- a whole job

STEALING_REWARD = """import json, os

TARGETS = [
    os.path.join(DATA, "training", "8", "out", "reward.py"),  # another racer's private reward function
    os.path.join(DATA, ".env"),  # the server's secrets
    os.path.join(DATA, "pitlane.sqlite"),  # the server's database
    f"/proc/{os.getppid()}/environ",  # the server's environment
]
STOLEN = []
for target in TARGETS:
    try:
        with open(target, "rb") as f:
            STOLEN.append(f.read().decode(errors="replace"))
    except OSError as exc:
        STOLEN.append(f"{type(exc).__name__}: {exc}")
with open("attempts.jsonl", "a") as f:  # the job folder (its working folder), where it may write
    f.write(json.dumps(STOLEN) + "\\n")

"""


@pytest.mark.xdist_group("training-job")  # a CPU-bound job: with tests/trainer/test_job.py's, one at a time
def test_a_training_job_whose_reward_function_reads_others_files_gets_nothing_and_finishes(
    data_dir: tuple[Path, Path],
) -> None:
    # The whole job as the league server's engine runs it (`run_job`: the job sandbox, `python -m
    # trainer.job`), in a data folder laid out as the server's, with a quarter-minute recipe whose reward
    # function tries to copy other racers' and the server's files into its own folder at every load.
    from contracts.recipe import Recipe, StopCondition, TrainingJob
    from league_server.jobs.engine import TRAINING, run_job

    root, data = data_dir
    reward = f"DATA = {str(data)!r}\n" + STEALING_REWARD + Recipe().reward_function
    recipe = Recipe(stop=StopCondition(minutes=1.0, until_clean_laps=3), reward_function=reward)
    TrainingJob(recipe=recipe).write(root / "job.json")

    run = run_job(root, Limits(cpu_s=240, memory_mb=8192, wall_s=240), module=TRAINING)

    assert run.failure is None, (run.failure, run.sandbox.stderr_tail)
    assert (root / "out" / "model.onnx").stat().st_size > 0
    attempts = [json.loads(line) for line in (root / "attempts.jsonl").read_text().splitlines()]
    assert attempts, "the reward function never ran"
    for stolen in attempts:
        assert [text.split(":")[0] for text in stolen] == ["GuardRefusedError"] * 4, stolen
    for path in root.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def test_a_block_that_swallows_its_deadline_gets_one_it_cannot_catch_with_except_exception() -> None:
    from trainer.guard import RewardTimeoutAbort, deadline

    caught = 0
    started = time.monotonic()
    with (
        pytest.raises(RewardTimeoutAbort, match="caught the stop and ran on"),
        deadline(0.2, "a stubborn reward"),
    ):
        while True:
            try:
                while True:
                    pass
            except Exception:  # noqa: BLE001 - what a careless reward function does
                caught += 1
    assert caught == 1 and time.monotonic() - started < 3
