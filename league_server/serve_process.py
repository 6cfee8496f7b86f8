"""`pitlane league serve` as a child process, the way the README runs it (embedded broker, a data directory):
for the ingest benchmark's crash run and for the tests that kill the server.

`start()` returns once the server's ingest is subscribed; `kill9()` kills the server alone, as a crash or the
OOM killer would (its broker and ranker must follow it by themselves); `stop()` is Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from league_server.broker.embedded import free_port
from league_server.errors import LeagueError

# The `pitlane` command line as a child process, whatever the working directory: `python -m pitlane` would put
# the working directory first on sys.path, and a folder there named `pitlane` (the clone, run from the folder
# that holds it) would shadow the installed package. `-c` puts it there too, so the code removes it first.
PITLANE_CLI = (sys.executable, "-c", "import sys; del sys.path[0]; from pitlane.cli import main; main()")


class ServeError(LeagueError, RuntimeError):
    """The server did not start (the message has the tail of its log)."""


def child_pids(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux /proc; empty elsewhere)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class ServeProcess:
    """One `pitlane league serve --db DB --data-dir DIR [extra_args]` on free 127.0.0.1 ports; log appended to
    `log_path`."""

    def __init__(
        self, db_url: str, data_dir: Path, log_path: Path, admin_token: str, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.db_url = db_url
        self.extra_args = extra_args
        self.data_dir = data_dir
        self.log_path = log_path
        self.admin_token = admin_token
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0, *, ingest: bool = True) -> ServeProcess:
        """Start it and wait until its ingest is subscribed (`ingest` False: until it answers); ServeError
        (with the log's tail) if it is not."""
        cmd = [*PITLANE_CLI, "league", "serve", "--db", self.db_url,
               "--port", str(self.http_port), "--broker-port", str(self.mqtt_port),
               "--data-dir", str(self.data_dir), *self.extra_args]  # fmt: skip
        env = {
            **os.environ,
            "PITLANE_ADMIN_TOKEN": self.admin_token,
            "PITLANE_PUBLIC_RATE_LIMIT_PER_MINUTE": "0",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            health = self.health()
            if health is not None and (health.get("ingest_connected") or not ingest):
                return self
            time.sleep(0.05)
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        what = "get its ingest subscribed" if ingest else "answer"
        raise ServeError(f"pitlane league serve did not {what} within {timeout_s:.0f} s: {tail}")

    def health(self) -> dict[str, Any] | None:
        """GET /api/health, or None while the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.base}/api/health", timeout=1) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def admin_get(self, path: str) -> Any:
        """GET an admin route's JSON with the admin token."""
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def kill9(self) -> set[int]:
        """SIGKILL the server alone; the pids of the children it had (broker, ranker, resource tracker)."""
        assert self.process is not None
        children = child_pids(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        return children

    def stop(self) -> None:
        """Ctrl-C, then SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
