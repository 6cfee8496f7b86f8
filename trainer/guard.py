"""What stops a racer's reward function from doing harm inside the training job's own process.

The training job imports everything heavy first, then calls `lock_down(job_folder, read_also=...)` once, then
loads and runs the reward function. After the call this process may not read files outside an allow-list
(`readable_paths`: the job folder, the Python installation and its site-packages, pitlane's own packages,
the system's libraries, a few device files, its own /proc entry, the CPU topology, and `read_also`), may
not create, write, truncate, delete or rename files outside the job folder, open network connections, start
programs or load foreign code through ctypes. So a job cannot copy another racer's files, the server's
database or its environment into what its racer downloads. Two layers do it, the strongest the machine has;
ARCHITECTURE.md ("Untrusted code: what is enforced") lists exactly what each covers and which test proves it.

1. Linux Landlock (`restrict_with_landlock`; kernel >= 5.13 with Landlock enabled): the kernel refuses
   opening files and folders for reading outside the allow-list, file writes outside the folder (/dev/null
   excepted), every execve, TCP bind/connect (ABI >= 4), signals to and abstract unix sockets of processes
   outside the job (ABI >= 6), and ptrace-mode access to them. It binds native code as well as Python and
   cannot be undone. It covers the calling thread and the threads it starts; threads that already existed
   only with LANDLOCK_RESTRICT_SELF_TSYNC (ABI >= 8): `GuardReport.threads_uncovered` counts the others.
   It does not restrict stat/readlink (a file's existence, size and times), UDP, connecting to unix sockets
   by path, fork, or chmod/chown/utime.
2. A PEP 578 audit hook (`install_audit_hook`): Python operations the rules forbid raise `GuardRefusedError`
   (a `PermissionError`) with a sentence naming what was refused, in every thread: the same read allow-list
   (open, os.listdir/scandir, sqlite3), writes, and what Landlock does not cover (UDP, unix sockets, DNS,
   fork, chmod/chown/utime, ctypes library loading). It cannot be removed, but PEP 578 is explicit that it
   is no sandbox: operations without an audit event (`_posixsubprocess.fork_exec`, calling a ctypes
   function made from an address, a file opened by a C library such as onnxruntime) and native code get
   past it. It is the layer that explains; Landlock and the league server's job sandbox (network namespace,
   resource limits) are the layers that hold.

`deadline(seconds, what)` bounds a call (a reward function that loops forever) with SIGALRM in the main
thread: it interrupts Python code between bytecodes, not a single long C call (`10**10**9`); the sandbox's CPU
and wall-clock limits end those.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib.util
import logging
import os
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

log = logging.getLogger(__name__)

#: whose code the guard's refusals are about (the job runs the trainer's own code under the same rules)
ACTOR = "reward function"
#: the job folder's folder for temporary files (tempfile.gettempdir() and TMPDIR point there after lock_down)
TEMP_DIR_NAME = "tmp"
#: device files anyone may write: libraries silence output by writing to /dev/null
WRITABLE_DEVICES = ("/dev/null",)
#: pitlane's packages a training job runs: each package's own folder is readable after lock_down. Not the
#: repository's folder (an editable install's clone may also hold the server's data folder), and not
#: league_server, virtual_circuit, bench or the CLI (`pitlane`): a job imports none of them.
JOB_PACKAGES = ("contracts", "sim", "trainer", "device", "firmware_configs")
#: what of the system a job reads after lock_down (found by running jobs under strace): shared libraries and
#: their data (loading a library opens it for reading: Landlock's READ_FILE is all dlopen needs; its EXECUTE
#: right is execve's), the dynamic linker's cache, the time zone, the CPU model and topology torch and
#: onnxruntime pick kernels and size thread pools by, and the device files libraries read. Left out on
#: purpose: the rest of /etc (/etc/passwd: torch's lazy `getpass.getuser()` copes without it), /proc and
#: /sys, /tmp, /home, /root, /var, /run.
SYSTEM_READABLE = (
    "/usr",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
)


class GuardError(TrainerError):
    """Root of the guard's errors."""


class LockDownError(GuardError, RuntimeError):
    """The process could not be locked down (the folder does not exist, it is locked already)."""


class GuardRefusedError(GuardError, PermissionError):
    """An operation the locked-down process may not do; the message names it and the rule."""


class RewardTimeoutError(GuardError, TimeoutError):
    """A call guarded by `deadline` overran its time."""


class RewardTimeoutAbort(BaseException):
    """A guarded block still running `REARM_S` after its RewardTimeoutError: the code swallowed it (a reward
    function's `except Exception` inside its loop). A BaseException, as KeyboardInterrupt is, so such code
    cannot catch it by accident; the job ends with its message."""


@dataclass(frozen=True)
class GuardReport:
    """Which layers `lock_down` put in place.

    landlock_abi: the kernel's Landlock ABI version, 0 when the kernel has none (or it is disabled).
    landlock_filesystem: the kernel refuses reads outside `root` and `readable`, writes outside `root`, and
        every execve.
    landlock_tcp: the kernel refuses TCP bind and connect (ABI >= 4).
    landlock_scoped: the kernel refuses signals to, and abstract unix sockets of, processes outside the job
        (ABI >= 6).
    landlock_all_threads: the rules cover threads that existed before the call (LANDLOCK_RESTRICT_SELF_TSYNC).
    threads_uncovered: threads of this process that existed before the call and that Landlock does not cover
        (0 when `landlock_all_threads`); Python code runs on them only if it was started before the call.
    audit_hook: the PEP 578 hook is installed (always, after a successful call).
    temp_dir: where temporary files go now (inside `root`).
    sys_path_removed: `sys.path` entries inside `root` taken out (modules written there cannot be imported).
    readable: what may be read besides `root` (real paths, `readable_paths`), for both layers.
    open_outside: descriptors open at the call on files outside `root` and `readable` ("3 /path"): neither
        layer checks reads and writes through a descriptor opened before, so they stay usable (logged as a
        warning; the job sandbox starts jobs with none, and onnxruntime's telemetry, which kept some, off).
    """

    root: Path
    landlock_abi: int
    landlock_filesystem: bool
    landlock_tcp: bool
    landlock_scoped: bool
    landlock_all_threads: bool
    threads_uncovered: int
    audit_hook: bool
    temp_dir: Path
    sys_path_removed: tuple[str, ...] = field(default=())
    readable: tuple[str, ...] = field(default=())
    open_outside: tuple[str, ...] = field(default=())

    @property
    def layers(self) -> list[str]:
        """The active layers, named for a log line."""
        names = []
        if self.landlock_filesystem:
            names.append(f"landlock-v{self.landlock_abi} reads+writes+exec")
        if self.landlock_tcp:
            names.append("landlock tcp")
        if self.landlock_scoped:
            names.append("landlock signals+abstract-unix")
        if self.audit_hook:
            names.append("audit hook")
        return names

    def describe(self) -> str:
        threads = (
            "all threads"
            if self.landlock_all_threads
            else f"{self.threads_uncovered} earlier threads uncovered"
        )
        kernel = f" ({threads})" if self.landlock_filesystem else " (no Landlock: Python-level refusals only)"
        return f"locked down to {self.root}: {', '.join(self.layers)}{kernel}"


_locked_root: Path | None = None
_lock = threading.Lock()


def lock_down(root: Path, *, read_also: Iterable[Path | str] = ()) -> GuardReport:
    """Lock this process down to reading inside `root` (an existing folder), `read_also` and what Python and
    its libraries need (`readable_paths`), writing inside `root` only, with no network, no new programs and no
    ctypes; returns which layers hold. Call it once, after the heavy imports and before any untrusted code
    runs. Raises `LockDownError` when `root` is not a folder, a readable path holds `root` (its siblings, other
    racers' folders, would be readable) or the process is locked already."""
    global _locked_root
    with _lock:
        if _locked_root is not None:
            raise LockDownError(f"lock_down({root}): this process is already locked down to {_locked_root}")
        real_root = Path(os.path.realpath(root))
        if not real_root.is_dir():
            raise LockDownError(f"lock_down: {root} is not a folder; expected the job's existing run folder")
        readable = readable_paths(real_root, read_also)  # may refuse: before anything is locked
        open_outside = _descriptors_outside((str(real_root), *readable))
        temp_dir = _use_temp_dir(real_root)
        threads_before = _thread_count()
        landlock = restrict_with_landlock(real_root, readable)  # uses ctypes: before the hook forbids it
        removed = _drop_sys_path_inside(real_root)
        install_audit_hook(real_root, readable)
        _locked_root = real_root
    report = GuardReport(
        root=real_root,
        landlock_abi=landlock.abi,
        landlock_filesystem=landlock.filesystem,
        landlock_tcp=landlock.tcp,
        landlock_scoped=landlock.scoped,
        landlock_all_threads=landlock.all_threads,
        threads_uncovered=0 if landlock.all_threads or not landlock.filesystem else threads_before - 1,
        audit_hook=True,
        temp_dir=temp_dir,
        sys_path_removed=removed,
        readable=readable,
        open_outside=open_outside,
    )
    log.info("guard: %s", report.describe())
    if open_outside:
        log.warning("guard: still open, and usable after the lock: %s", "; ".join(open_outside))
    log.debug("guard: readable besides %s: %s", real_root, ", ".join(readable))
    return report


def readable_paths(root: Path, read_also: Iterable[Path | str] = ()) -> tuple[str, ...]:
    """What a process locked down to `root` may read besides `root`: real paths that exist, each once.

    The Python installation (`sys.prefix`, `sys.base_prefix`, their exec twins) and every site-packages or
    dist-packages folder on `sys.path`; each folder of `JOB_PACKAGES` (where the import system finds it, so
    an editable install gives the package's folder in the clone, not the clone); `SYSTEM_READABLE`; this
    process's own /proc/<pid> (/proc/self and /proc/thread-self lead there); then `read_also`. Other sys.path
    entries are left out on purpose: one may be a repository holding a data folder.

    Raises `LockDownError` when one of them is `root`'s folder or above it: the other jobs' folders beside
    `root` would be readable.
    """
    wanted: list[str] = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    wanted += [
        p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")
    ]
    wanted += _package_folders(JOB_PACKAGES)
    wanted += [*SYSTEM_READABLE, f"/proc/{os.getpid()}"]
    wanted += [os.fspath(p) for p in read_also]
    real_root = os.path.realpath(root)
    readable: dict[str, None] = {}
    for path in wanted:
        real = os.path.realpath(path)
        if not os.path.exists(real) or _inside(real, real_root):
            continue  # nothing to allow, or allowed already as part of root
        if _inside(real_root, real):
            raise LockDownError(
                f"lock_down: {path} would be readable and holds the run folder {real_root}; every folder "
                "beside it (other jobs') would be readable too. Keep the data folder out of it"
            )
        readable[real] = None
    # A path beneath another one adds nothing (site-packages beneath the prefix, /usr/lib beneath /usr).
    return tuple(p for p in readable if not any(_inside(p, q) and p != q for q in readable))


def _descriptors_outside(allowed: Sequence[str]) -> tuple[str, ...]:
    """This process's descriptors open on a file or folder outside every path of `allowed` ("fd path");
    not the standard streams (the job sandbox's output files) nor pipes, sockets and other objects without
    a path."""
    found = []
    try:
        descriptors = sorted(map(int, os.listdir("/proc/self/fd")))
    except OSError:
        return ()
    for fd in (d for d in descriptors if d > 2):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used, closed since
        if target.startswith(os.sep) and not any(_inside(target, path) for path in allowed):
            found.append(f"{fd} {target}")
    return tuple(found)


def _package_folders(names: Sequence[str]) -> list[str]:
    """The folders the import system finds each package of `names` in (none for a package it cannot find)."""
    folders: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            log.debug("guard: package %s not found; its folder is not made readable", name)
            continue
        folders += list(spec.submodule_search_locations)
    return folders


#: seconds between the alarms after a deadline's first (see RewardTimeoutAbort)
REARM_S = 1.0


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise `RewardTimeoutError` naming `what` in the block when it runs longer than `seconds` (real time).

    Main thread only (a POSIX signal, SIGALRM, interrupts it). The previous SIGALRM handler and any timer that
    was running are put back afterwards, the timer with the time it has left. Not nestable.
    """
    if not seconds > 0:
        raise GuardError(f"deadline for {what}: seconds must be positive, got {seconds!r}")
    if threading.current_thread() is not threading.main_thread():
        raise GuardError(f"deadline for {what}: only the main thread receives SIGALRM; call it there")

    fired = 0

    def overran(signum: int, frame: Any) -> None:
        nonlocal fired
        fired += 1
        message = f"{what} did not return within {seconds:g} s: stopped"
        if fired == 1:
            raise RewardTimeoutError(message)
        raise RewardTimeoutAbort(f"{message} (it caught the stop and ran on)")

    previous_handler = signal.signal(signal.SIGALRM, overran)
    # After the first alarm, again every REARM_S until the block ends: code that swallowed the first one
    # gets a RewardTimeoutAbort it cannot catch with `except Exception`.
    previous_delay_s, previous_interval_s = signal.setitimer(signal.ITIMER_REAL, seconds, REARM_S)
    started_s = time.monotonic()
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            # Also when the alarm landed just as the block ended (its exception is on its way out).
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_delay_s > 0:
                left_s = previous_delay_s - (time.monotonic() - started_s)
                # A timer that would have run out during the block fires at once rather than never.
                signal.setitimer(signal.ITIMER_REAL, max(left_s, 1e-6), previous_interval_s)


# --------------------------------------------------------------------------------------------- preparation


def _use_temp_dir(root: Path) -> Path:
    """Temporary files (tempfile, TMPDIR for native libraries) go to `root/tmp` from now on: /tmp is outside."""
    temp_dir = root / TEMP_DIR_NAME
    temp_dir.mkdir(exist_ok=True)
    tempfile.tempdir = str(temp_dir)
    os.environ["TMPDIR"] = str(temp_dir)
    return temp_dir


def _thread_count() -> int:
    """Threads of this process (native ones too: torch's and onnxruntime's pools), from /proc."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _drop_sys_path_inside(root: Path) -> tuple[str, ...]:
    """Take `sys.path` entries inside `root` out (`python -m` puts the working folder first), so a module the
    reward function writes into its folder (an extension module is native code) cannot be imported."""
    # Only entries that are folders or archives: others are path-hook markers (an editable install's finder).
    removed = tuple(
        p
        for p in sys.path
        if os.path.exists(p or os.curdir) and _inside(os.path.realpath(p or os.curdir), str(root))
    )
    sys.path[:] = [p for p in sys.path if p not in removed]
    return removed


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# -------------------------------------------------------------------------------------------------- Landlock
#
# Landlock is three system calls. They are made through ctypes by hand because no well-kept Python binding
# exists (PyPI's `landlock` is a 1.0.0.dev pre-release). Constants: <linux/landlock.h>; the syscall numbers
# are the same on every architecture (added after the syscall tables were unified).

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3  # ABI 8
PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# Every right of ABI 1 is handled, reading included: with no rule granting it, the kernel refuses it
# (EXECUTE everywhere; reading outside the folder and `readable_paths`; the rest outside the folder).
_FS_HANDLED_ABI1 = (
    FS_EXECUTE
    | FS_WRITE_FILE
    | FS_READ_FILE
    | FS_READ_DIR
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_CHAR
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_BLOCK
    | FS_MAKE_SYM
)
# Inside the folder: files and folders, not device nodes, pipes, sockets or execution.
_FS_ROOT_ALLOWED = (
    FS_READ_FILE
    | FS_READ_DIR
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE
)
_FS_DEVICE_ALLOWED = FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV
_FS_READ_ALLOWED = FS_READ_FILE | FS_READ_DIR
# The rights a rule on a file (not a folder) may grant; the kernel refuses a file rule with any other.
_FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


#: O_PATH descriptors of /proc rules, open for the life of the process (see `_allow`)
_pinned_fds: list[int] = []


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class LandlockStatus:
    """What `restrict_with_landlock` put in place; the fields are `GuardReport`'s landlock_* ones."""

    abi: int = 0
    filesystem: bool = False
    tcp: bool = False
    scoped: bool = False
    all_threads: bool = False


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none, it is disabled, or this is not Linux."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(version, 0)


def restrict_with_landlock(root: Path, readable: Sequence[str] | None = None) -> LandlockStatus:
    """The kernel layer alone: restrict this thread (and the threads it starts; every thread with TSYNC) to
    reading beneath `root` and `readable` (default `readable_paths(root)`), writing beneath `root` and
    /dev/null, no execve, no TCP, no signals out; `LandlockStatus()` (nothing enforced) when the kernel has no
    Landlock. `lock_down` calls it; tests call it to prove the layer alone."""
    abi = landlock_abi()
    if abi < 1:
        log.warning(
            "guard: this kernel has no Landlock; only the audit hook refuses reads, writes, network, programs"
        )
        return LandlockStatus()
    if readable is None:
        readable = readable_paths(root)
    handled_fs = _FS_HANDLED_ABI1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    handled_fs |= FS_IOCTL_DEV if abi >= 5 else 0
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    # Older kernels take the struct only up to the fields they know (and refuse a longer one).
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset_fd = _checked(
        _syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0), "create_ruleset"
    )
    try:
        _allow(ruleset_fd, str(root), _FS_ROOT_ALLOWED & handled_fs)
        for path in readable:
            extra = _FS_DEVICE_ALLOWED if path in WRITABLE_DEVICES else 0
            _allow(ruleset_fd, path, (_FS_READ_ALLOWED | extra) & handled_fs)
        # Required to restrict oneself without CAP_SYS_ADMIN; also stops setuid programs (none may run anyway).
        _checked(_no_new_privs(), "prctl(PR_SET_NO_NEW_PRIVS)")
        all_threads = abi >= 8
        flags = LANDLOCK_RESTRICT_SELF_TSYNC if all_threads else 0
        _checked(_syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, flags), "restrict_self")
    finally:
        os.close(ruleset_fd)
    return LandlockStatus(
        abi, filesystem=True, tcp=bool(handled_net), scoped=bool(scoped), all_threads=all_threads
    )


def _allow(ruleset_fd: int, path: str, access: int) -> None:
    """Grant `access` beneath `path` (on `path` itself when it is a file: only the file rights)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise LockDownError(f"landlock add_rule({path}): cannot open it ({exc})") from exc
    keep = _inside(path, "/proc")
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FS_FILE_RIGHTS
        rule = _PathBeneathAttr(access, fd)
        result = _syscall(
            SYS_LANDLOCK_ADD_RULE, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
        )
        _checked(result, f"add_rule({path})")
    finally:
        if keep:
            # A rule holds its inode, not its dentry. procfs makes a new inode when it looks a path up again
            # after the kernel dropped an unused dentry (memory pressure), and the rule would no longer
            # apply (reading /proc/self then fails); an open descriptor keeps the dentry.
            _pinned_fds.append(fd)
        else:
            os.close(fd)


def _libc() -> ctypes.CDLL:
    """A fresh handle on the C library. Not kept: a resolved ctypes function left in this module would be
    a native call any code could make later without an audit event."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _syscall(number: int, *args: Any) -> int:
    """syscall(2) through libc; returns the result, or -errno on failure."""
    c_args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    result = _libc().syscall(ctypes.c_long(number), *c_args)
    return -ctypes.get_errno() if result < 0 else result


def _no_new_privs() -> int:
    """prctl(PR_SET_NO_NEW_PRIVS, 1): 0, or -errno on failure."""
    one, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)  # prctl's arguments are unsigned longs
    result = _libc().prctl(PR_SET_NO_NEW_PRIVS, one, zero, zero, zero)
    return -ctypes.get_errno() if result < 0 else result


def _checked(result: int, what: str) -> int:
    """`result` (a value, or -errno) when it is no error; else `LockDownError` naming the call."""
    if result < 0:
        code = -result
        raise LockDownError(
            f"landlock {what} failed: {os.strerror(code)} (errno {errno.errorcode.get(code, code)})"
        )
    return result


# ----------------------------------------------------------------------------------------------- audit hook

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> ((what it does, index of a path argument, index of its dir_fd argument or None), ...): every path
# the event changes. os.link and os.rename change both ends: a hard link into the folder would make an outside file
# writable through it, a rename moves a file in or out.
_PATH_EVENTS: dict[str, tuple[tuple[str, int, int | None], ...]] = {
    "os.remove": (("delete", 0, 1),),
    "os.rmdir": (("delete", 0, 1),),
    "os.mkdir": (("create", 0, 2),),
    "os.rename": (("rename", 0, 2), ("rename to", 1, 3)),
    "os.link": (("link", 0, 2), ("link to", 1, 3)),
    "os.symlink": (("create a symlink at", 1, 2),),
    "os.truncate": (("truncate", 0, None),),
    "os.chmod": (("chmod", 0, 2),),
    "os.chown": (("chown", 0, 3),),
    "os.utime": (("change the times of", 0, 3),),
    "os.chflags": (("change the flags of", 0, None),),
    "os.setxattr": (("set an attribute of", 0, None),),
    "os.removexattr": (("remove an attribute of", 0, None),),
}
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
    }
)
_SOCKET_EVENTS = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
_DNS_EVENTS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    }
)
# Walking every object is how code would reach the hook's own state; training never needs it.
_INTROSPECTION_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_FOREIGN_MODULES = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend"})


def install_audit_hook(root: Path, readable: Sequence[str] | None = None) -> None:
    """The Python layer alone: add the audit hook refusing, for this whole process and for good, what the
    rules forbid (see `_audit_hook`); reads are allowed beneath `root` and `readable` (default
    `readable_paths(root)`). `lock_down` calls it; tests call it to prove the layer alone."""
    real_root = os.path.realpath(root)
    if readable is None:
        readable = readable_paths(Path(real_root))
    sys.addaudithook(_audit_hook(real_root, tuple(readable)))


def _audit_hook(root: str, readable: tuple[str, ...]) -> Callable[[str, tuple[Any, ...]], None]:
    """The hook for `root` and `readable` (real paths). What it consults is bound in this closure (tables
    copied, helpers captured), so rebinding this module's globals does not change what it refuses; patching
    the standard library it calls (os.path) would, which is why it is not the layer that holds."""
    readable_roots = (root, *readable)
    own_pid = os.getpid()
    own_pid_text = str(own_pid)
    devices = frozenset(WRITABLE_DEVICES)
    path_events = dict(_PATH_EVENTS)
    foreign_modules = _FOREIGN_MODULES
    inside, resolve, short, refused_error = _inside, _resolve, _short, GuardRefusedError
    af_unix = socket.AF_UNIX
    write_flags = _WRITE_FLAGS

    def refuse(what: str) -> None:
        raise refused_error(f"{ACTOR} tried to {what}: refused")

    def check_read(action: str, path: Any) -> str | None:
        """`path` resolved, when reading it is allowed."""
        resolved = resolve(path, None)
        if resolved is None or any(inside(resolved, allowed) for allowed in readable_roots):
            return resolved
        parts = resolved.split(os.sep, 3)  # "/proc/<pid>/environ" -> ["", "proc", "<pid>", "environ"]
        if len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and parts[2] != own_pid_text:
            # another process's environment, memory, open files: where the server's secrets are
            refuse(f"{action} {resolved}, another process's information")
        refuse(f"{action} {resolved} outside its run folder {root} and the libraries it runs on")

    def check_path(action: str, path: Any, dir_fd: Any, *, device_ok: bool = False) -> None:
        resolved = resolve(path, dir_fd)
        if resolved is None or inside(resolved, root) or (device_ok and resolved in devices):
            return
        refuse(f"{action} {resolved} outside its run folder {root}")

    def on_open(args: tuple[Any, ...]) -> None:
        path, mode, flags = args
        if isinstance(path, int):
            return  # an open descriptor: its access was checked when it was opened
        writes = (isinstance(flags, int) and flags & write_flags) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        if writes:
            check_path("write", path, None, device_ok=True)
            return
        resolved = check_read("read", path)
        if resolved is None:
            return
        if mode is None and not inside(resolved, root) and os.path.isdir(resolved):
            # os.open of a folder outside: its descriptor as dir_fd= would let a write escape the path check
            refuse(f"open the folder {resolved} outside its run folder {root} with os.open")

    def on_path_event(event: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            for action, path_at, dir_fd_at in path_events[event]:
                check_path(action, args[path_at], None if dir_fd_at is None else args[dir_fd_at])

        return check

    def on_list(args: tuple[Any, ...]) -> None:
        if not isinstance(args[0], int):  # a descriptor was checked when it was opened
            check_read("list", os.curdir if args[0] is None else args[0])

    def on_sqlite(args: tuple[Any, ...]) -> None:
        # SQLite opens its file in C (no "open" event); a URI's path is its "file:" part without the query.
        database = args[0]
        name = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else ""
        name = name.removeprefix("file:").split("?", 1)[0]
        if name not in ("", ":memory:"):
            check_read("open the database", name)

    def on_socket(args: tuple[Any, ...]) -> None:
        if args[1] != af_unix:
            refuse(f"open a network socket (address family {args[1]}); this job has no network")

    def on_network(event: str) -> Callable[[tuple[Any, ...]], None]:
        return lambda args: refuse(
            f"{event.removeprefix('socket.')} {short(args[1:])}; this job has no network"
        )

    def on_dns(event: str) -> Callable[[tuple[Any, ...]], None]:
        return lambda args: refuse(f"look up {args[0]!r} ({event}); this job has no network")

    def on_process(event: str) -> Callable[[tuple[Any, ...]], None]:
        return lambda args: refuse(f"start a process ({event} {short(args)})")

    def on_import(args: tuple[Any, ...]) -> None:
        if args[0] in foreign_modules:
            refuse(f"import {args[0]}; foreign code may not be loaded")

    def on_kill(event: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            if args[0] not in (own_pid, 0):
                refuse(f"signal process {args[0]} ({event})")

        return check

    def on_introspection(event: str) -> Callable[[tuple[Any, ...]], None]:
        return lambda args: refuse(f"walk the interpreter's objects ({event})")

    handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
        "open": on_open,
        "socket.__new__": on_socket,
        "import": on_import,
        "os.listdir": on_list,
        "os.scandir": on_list,
        "sqlite3.connect": on_sqlite,
        **{event: on_path_event(event) for event in path_events},
        **{event: on_network(event) for event in _SOCKET_EVENTS},
        **{event: on_dns(event) for event in _DNS_EVENTS},
        **{event: on_process(event) for event in _PROCESS_EVENTS},
        **{event: on_kill(event) for event in ("os.kill", "os.killpg")},
        **{event: on_introspection(event) for event in _INTROSPECTION_EVENTS},
    }
    handler_for = handlers.get

    def hook(event: str, args: tuple[Any, ...]) -> None:
        # Called for every audit event of the process (thousands a second): one dict look-up for the rest.
        handler = handler_for(event)
        if handler is not None:
            handler(args)
        elif event.startswith("ctypes."):
            refuse(f"use ctypes ({event} {short(args)}); foreign code may not be loaded")

    return hook


def _resolve(path: Any, dir_fd: Any) -> str | None:
    """The real path `path` names (symlinks resolved, relative to `dir_fd` or the working folder); for a
    descriptor, the file it is open on. None when it names no file (a pipe's descriptor, an argument the call
    itself will reject); a `dir_fd` that cannot be read back gives a path outside every folder (refused)."""
    try:
        if isinstance(path, int):
            target = os.readlink(f"/proc/self/fd/{path}")
            return target if target.startswith(os.sep) else None
        name = os.fsdecode(os.fspath(path))
    except (OSError, TypeError, ValueError):
        return None
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(name):
        try:
            name = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)
        except OSError:
            return f"<descriptor {dir_fd}>/{name}"
    return os.path.realpath(name)


def _short(args: tuple[Any, ...], max_chars: int = 120) -> str:
    text = " ".join(repr(a) for a in args if a is not None)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."
